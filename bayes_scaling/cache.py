"""The on-disk cache of fits and of a fit's internal back-tests: where it lives, what its keys hold.

A fit is a deterministic function of its runs, law, likelihood, resolved priors, settings
(seed included), the installed packages and this package's source; the cache keys hold all
of these, so a cached result is reused only where a new computation would give the same one.
Two things are cached:

* whole fits (:func:`cached_fit`), by ``compare``, ``report`` and the analyses;
* the errors of a fit's internal back-tests (:func:`cached_backtest_errors`), the refits below
  compute cuts of its runs that the default structural error learns from.  They cost a
  command-line fit about as much as the fit itself, and ``fit``, ``compare`` and ``report``
  of the same runs and seed make the same ones.

Files are written atomically, so concurrent or interrupted runs leave either a whole entry
or none; an entry that cannot be read is computed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .outputs import atomic_file

if TYPE_CHECKING:
    from .fit import Fit
    from .runs import RunTable

__all__ = ["FIT_CACHE_ENV", "default_fit_cache", "cache_key", "cached_fit", "cached_backtest_errors"]

log = logging.getLogger(__name__)

#: Environment variable naming the folder of cached fits (default: the user cache directory).
FIT_CACHE_ENV = "BAYES_SCALING_FIT_CACHE"

#: fit() options that change nothing in its result (left out of cache keys).
_DISPLAY_ONLY = ("progress", "strict", "cache_dir")


def default_fit_cache() -> Path:
    """Where cached fits live unless a command is told otherwise: ``$BAYES_SCALING_FIT_CACHE``, or
    ``fits/`` in the user cache directory (keys hold data, settings, priors and versions, so one
    cache serves every report and comparison safely)."""
    env = os.environ.get(FIT_CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("bayes_scaling")) / "fits"


#: Bundled data a fit's result depends on (the structural error starts from this population):
#: rebuilt by ``datasets/build/``, they change a development install without a version.
_FIT_DATA = ("extrapolation-population.csv",)


@cache
def source_digest() -> str:
    """SHA-256 of this package's Python source and of the bundled data fits depend on
    (:data:`_FIT_DATA`): a development install changes them without a version."""
    from ._paths import data_dir

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        digest.update(path.read_bytes())
    for name in _FIT_DATA:
        digest.update(name.encode())
        digest.update((data_dir() / name).read_bytes())
    return digest.hexdigest()


def _fit_defaults() -> dict[str, Any]:
    """fit()'s keyword defaults (structural error, back-tests, sampler …) except the display-only ones."""
    import inspect

    from .fit import fit

    return {k: p.default for k, p in inspect.signature(fit).parameters.items()
            if p.default is not inspect.Parameter.empty and k not in _DISPLAY_ONLY}


def cache_key(runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any], what: str = "fit") -> str:
    """The key of ``fit(runs, law=law, likelihood=likelihood, **settings)``'s result (or of ``what``
    else is made from it): the data fingerprint, law, likelihood, settings with fit()'s defaults
    filled in (a change of a default is a new key), the resolved priors, package versions and source."""
    from .fit import model_spec, package_versions
    from .laws import get_law
    from .likelihoods import get_likelihood
    from .rolling import BACKTEST_DRAWS, BACKTEST_TUNE

    lik = get_likelihood(likelihood, **({"delta": settings["huber_delta"]}
                                        if likelihood == "huber" and "huber_delta" in settings else {}))
    spec = model_spec(runs, get_law(law), lik, priors=settings.get("priors"),
                      prior_set=settings.get("prior_set", "default"))
    priors = {k: v.to_dict() for k, v in spec.priors.items()}
    resolved = {**_fit_defaults(), **{k: v for k, v in settings.items() if k not in _DISPLAY_ONLY}}
    backtests = {"draws": BACKTEST_DRAWS, "tune": BACKTEST_TUNE}  # how a fit's own back-tests are sampled
    parts = [what, runs.fingerprint(), law, likelihood, resolved, priors, package_versions(), source_digest(),
             backtests]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_fit(runs: RunTable, *, law: str, likelihood: str, cache_dir: str | os.PathLike | None,
               settings: dict[str, Any]) -> tuple[Fit, bool]:
    """``fit(runs, …)``, or the same fit loaded from ``cache_dir``; returns (fit, was_cached).

    The key (:func:`cache_key`) holds the data, law, likelihood, settings, resolved priors,
    package versions and source: a fit is not reused after an upgrade or a change of default
    priors.  The fit's own internal back-tests are cached in the same folder.
    """
    from .diagnostics import SamplingWarning
    from .fit import fit, load_fit

    path = None
    if cache_dir is not None:
        key = cache_key(runs, law=law, likelihood=likelihood, settings=settings)
        path = Path(cache_dir) / f"{law}-{likelihood}-{key}.nc"
        if path.is_file():
            return load_fit(path, law=law, likelihood=likelihood, fingerprint=runs.fingerprint()), True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # diagnostics are reported in the table
        result = fit(runs, law=law, likelihood=likelihood, cache_dir=cache_dir, **settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        result.save(path, overwrite=True)
    return result, False


def cached_backtest_errors(runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any],
                           cache_dir: str | os.PathLike | None,
                           compute: Callable[[], pd.DataFrame | None]) -> pd.DataFrame | None:
    """``compute()``, the errors of the law-only back-tests of ``runs`` refitted with ``settings``, or
    the same table loaded from ``cache_dir`` (bit for bit: numeric columns in a ``.npz``)."""
    if cache_dir is None:
        return compute()
    key = cache_key(runs, law=law, likelihood=likelihood, settings=settings, what="internal back-tests")
    path = Path(cache_dir) / f"{law}-{likelihood}-backtests-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                table = pd.DataFrame({name: stored[name] for name in stored.files})
            log.info("internal back-tests of %s loaded from %s", runs.source, path)
            return table
        except (OSError, ValueError) as exc:  # unreadable: compute it again
            log.warning("ignoring the unreadable cached back-tests %s (%s)", path, exc)
    errors = compute()
    if errors is not None:  # None (no cut possible) is cheap to find again, and logged each time
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **{name: errors[name].to_numpy() for name in errors.columns})
    return errors
