"""Rolling-origin back-tests: fit below a compute cut, forecast the runs above it.

This is how a forecast's honesty is measured here: a law fitted to the runs with
C ≤ cut predicts the runs beyond it, whose distance from the data is
d = log10(C_run / C_ref) decades, C_ref being the largest training budget.  The cuts are
chosen by extrapolation distance (:func:`extrapolation_cuts`), so that every split leaves
runs to fit and runs to score on any design (isoFLOP ladders included).

:func:`rolling_backtest` returns, for every held-out run, the law-only predictive draws of
its log loss (the fit's parameters and noise) and the summary the structural-error model
learns from: the error of the predictive median and the predictive spread.

"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import atomic_file
from bayes_scaling.sampling.diagnostics import SamplingWarning

if TYPE_CHECKING:
    from bayes_scaling.data.runs import RunTable
from bayes_scaling.io.cache import UNWRITABLE, content_digest
from bayes_scaling.posterior.law_only import (
    LAW_ONLY_DEFAULTS,
    min_train_runs,
    result_key,
    sample_law,
)

__all__ = ['DISTANCES', 'HeldOut', 'extrapolation_cuts', 'internal_errors', 'robust_sd', 'rolling_backtest']


log = logging.getLogger(__name__)


#: Where the cuts go: C_max / 10^d for these d (decades); the held-out runs of a cut lie
#: between 0 and about d decades beyond its training data.
DISTANCES = (2.0, 1.5, 1.0, 0.75, 0.5, 0.25)


def robust_sd(draws: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half the central 68% range: the sd of a normal, and finite for heavy-tailed draws.

    Parameters
    ----------
    draws
        Draws.
    axis
        The axis of the draws.

    Returns
    -------
    numpy.ndarray
    """
    lo, hi = np.quantile(draws, [0.15865, 0.84135], axis=axis)
    return (hi - lo) / 2


def extrapolation_cuts(runs: RunTable, *, distances: Sequence[float] = DISTANCES, min_train: int = 10,
                       min_test: int = 2) -> list[float]:
    """Compute cuts whose held-out runs reach about ``distances`` decades beyond the training data.

    A cut at C_max / 10^d keeps the runs with C ≤ cut for fitting; splits that repeat another's
    training set, or leave fewer than ``min_train`` runs to fit or ``min_test`` to score, are
    skipped.  Raises :class:`InputError` when no split is possible.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    distances
        Target distances in decades.
    min_train
        Fewest runs to fit.
    min_test
        Fewest runs to score.

    Returns
    -------
    list of float
        Cuts in FLOP, ascending.
    """
    compute = np.asarray(runs.C, dtype=float)
    log_c = np.log10(compute)
    top = log_c.max()
    cuts, seen = [], set()
    for d in sorted(distances, reverse=True):
        train = log_c <= top - d + 1e-12
        key = int(train.sum())
        if key in seen or key < min_train or (~train).sum() < min_test:
            continue
        seen.add(key)
        # the largest training budget itself, not 10 ** its log: that can come out an ulp below it
        # (9.720290944999975e18 for 9.720290945e18), and C <= cut then left its runs out of training
        cuts.append(float(compute[train].max()))
    if not cuts:
        raise InputError(f"{runs.source}: no compute cut leaves ≥ {min_train} runs to fit and ≥ {min_test} to "
                         f"score within {max(distances):g} decades (compute spans {np.ptp(log_c):.2f} decades)")
    return sorted(cuts)


@dataclass
class HeldOut:
    """One split of a rolling back-test: the runs beyond the cut and the law-only forecast of them.

    Parameters
    ----------
    cut
        The cut in FLOP.
    c_ref
        The largest training budget in FLOP: distances are measured from it.
    n_train
        Runs fitted.
    runs
        The held-out runs.
    log_draws
        Law-only predictive draws of their log loss.
    diagnostics_ok
        Whether the fit's diagnostics passed.
    extra
        Other results.
    run_index
        Positions of the held-out runs.
    centre
        The central draw's law at the held-out runs.
    """

    cut: float
    c_ref: float
    n_train: int
    runs: RunTable
    log_draws: np.ndarray  # (draws, runs): law-only predictive draws of log loss
    diagnostics_ok: bool
    extra: dict[str, Any] = field(default_factory=dict)
    run_index: np.ndarray | None = None  # positions of the held-out runs in the back-tested table
    centre: np.ndarray | None = None  # (1, runs): the law of the fit's central draw (what ρ rescales about)

    def forecast(self, structural, rng: np.random.Generator) -> np.ndarray:
        """The law-only draws with a :class:`~bayes_scaling.posterior.structural.StructuralError` of as many
        draws: rescaled by its ρ, shifted by its drift and scatter (as a fit's forecasts are).

        Parameters
        ----------
        structural
            A :class:`~bayes_scaling.posterior.structural.StructuralError`.
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
            Forecast draws of log loss, (draws, runs).
        """
        centre = self.centre if self.centre is not None else np.median(self.log_draws, axis=0, keepdims=True)
        return structural.forecast(self.log_draws, centre, self.runs.C, rng)

    @property
    def distance(self) -> np.ndarray:
        """Decades of compute beyond the training data, per held-out run."""
        return np.log10(self.runs.C / self.c_ref)

    @property
    def log_loss(self) -> np.ndarray:
        return np.log(self.runs.loss)

    def errors(self) -> pd.DataFrame:
        """Per held-out run: its position ``run`` in the back-tested table, distance d, error of the
        predictive median e = y − median, spread s.

        Returns
        -------
        pandas.DataFrame
            One row per held-out run.
        """
        median = np.median(self.log_draws, axis=0)
        run = self.run_index if self.run_index is not None else np.full(len(self.runs), -1)
        return pd.DataFrame({"cut": self.cut, "c_ref": self.c_ref, "n_train": self.n_train, "run": run, "C": self.runs.C,
                             "d": self.distance, "log_loss": self.log_loss, "median": median,
                             "error": self.log_loss - median, "spread": robust_sd(self.log_draws)})


#: Law-only refits kept in this process, by training runs, law, likelihood and settings.  Nested
#: back-tests refit the same training sets: each back-test fit of ``compare --backtest`` (and of
#: the calibration benchmark) runs back-tests of its own below its cut, and on chinchilla those
#: are 27 refits of 18 distinct training sets.  A fit is deterministic given its seed, so
#: reusing one changes no result.
_REFITS: OrderedDict[str, Any] = OrderedDict()


_MAX_REFITS = 32


def _law_only_fit(train: RunTable, *, law: str, likelihood: str, settings: dict[str, Any]):
    """``sample_law(train, law, likelihood, **settings)``, reused within this process when repeated."""
    key = hashlib.sha256(json.dumps([train.fingerprint(), law, likelihood, settings], sort_keys=True,
                                    default=repr).encode()).hexdigest()
    if key in _REFITS:
        _REFITS.move_to_end(key)
        return _REFITS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # reported per split instead
        result = sample_law(train, law=law, likelihood=likelihood, derived=False, **settings)
    _REFITS[key] = result
    if len(_REFITS) > _MAX_REFITS:
        _REFITS.popitem(last=False)
    return result


def rolling_backtest(runs: RunTable, *, law: str = "chinchilla", likelihood: str = "student-t",
                     cuts: Sequence[float] | None = None, settings: dict[str, Any] | None = None,
                     max_draws: int = 1000, progress: Callable[[str], None] | None = None) -> list[HeldOut]:
    """Fit ``law`` below each cut and forecast the runs above it (law only, no structural error).

    ``settings`` go to :func:`~bayes_scaling.fitting.fit` (draws, tune, chains, seed …); the
    compiled model is reused across cuts, and a refit of training runs already fitted with the
    same settings in this process is reused.  Returns one :class:`HeldOut` per cut.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    cuts
        Cuts in FLOP (default: :func:`extrapolation_cuts`).
    settings
        Options of the (re)fits: sampler settings, priors, window …
    max_draws
        Keep at most this many draws per forecast.
    progress
        Called with a line of progress text (None: quiet).

    Returns
    -------
    list of HeldOut
        One per cut.
    """
    settings = dict(settings or {})
    cuts = list(cuts) if cuts is not None else extrapolation_cuts(runs, min_train=min_train_runs(law))
    out = []
    for i, cut in enumerate(sorted(cuts)):
        train_mask = runs.C <= cut
        train = runs.subset(train_mask, label=f"C <= {cut:.3g}")
        test = runs.subset(~train_mask, label=f"C > {cut:.3g}")
        if len(test) == 0 or len(train) < min_train_runs(law):
            raise InputError(f"{runs.source}: the cut C <= {cut:.3g} leaves {len(train)} runs to fit and "
                             f"{len(test)} to score")
        result = _law_only_fit(train, law=law, likelihood=likelihood, settings=settings)
        draws = result.predictive_log_draws(test, seed=[int(settings.get("seed", 0)), i, 11])
        if draws.shape[0] > max_draws:
            draws = draws[np.linspace(0, draws.shape[0] - 1, max_draws).astype(int)]
        out.append(HeldOut(cut=float(cut), c_ref=float(train.C.max()), n_train=len(train), runs=test,
                           log_draws=draws, diagnostics_ok=result.diagnostics.ok, centre=result.central_log_mu(test),
                           run_index=np.flatnonzero(~train_mask)))
        if progress:
            progress(f"[{i + 1}/{len(cuts)}] {runs.source}: {law} below C = {cut:.3g} ({len(train)} runs), "
                     f"{len(test)} held out")
    return out


def internal_errors(runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any] | None = None,
                    cache_dir: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Errors of the law's back-tests *inside* ``runs`` (refits below its own cuts), one row per
    held-out run; None when the runs allow no cut (logged).  With ``cache_dir``, a table made
    earlier for the same runs, law, priors and settings is loaded instead (:mod:`bayes_scaling.io.cache`).

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    settings
        Options of the (re)fits: sampler settings, priors, window …
    cache_dir
        The cache folder (None: no cache).

    Returns
    -------
    pandas.DataFrame or None
        One row per held-out run; None when the runs allow no cut.
    """

    settings = dict(settings or {})

    def compute() -> pd.DataFrame | None:
        try:
            cuts = extrapolation_cuts(runs, min_train=min_train_runs(law))
        except InputError as exc:
            log.warning("structural error: no internal back-test possible (%s); using the population alone", exc)
            return None
        held = rolling_backtest(runs, law=law, likelihood=likelihood, cuts=cuts, settings=settings)
        return pd.concat([h.errors() for h in held], ignore_index=True)

    return cached_backtest_errors(runs, law=law, likelihood=likelihood, settings=settings, cache_dir=cache_dir,
                                  compute=compute)


def cached_backtest_errors(runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any],
                           cache_dir: str | os.PathLike | None,
                           compute: Callable[[], pd.DataFrame | None]) -> pd.DataFrame | None:
    """``compute()``, the errors of the law-only back-tests of ``runs`` refitted with ``settings``, or
    the same table loaded from ``cache_dir`` (bit for bit: numeric columns in a ``.npz``)."""
    if cache_dir is None:
        return compute()
    key = result_key(runs, law=law, likelihood=likelihood, settings=settings, defaults=LAW_ONLY_DEFAULTS,
                     what="internal back-tests")
    path = Path(cache_dir) / f"{law}-{likelihood}-backtests-{key}.npz"
    if path.is_file():
        table = _read_backtest_entry(path, key)
        if table is not None:
            log.info("internal back-tests of %s loaded from %s", runs.source, path)
            return table
    errors = compute()
    if errors is not None:  # None (no cut possible) is cheap to find again, and logged each time
        _write_backtest_entry(path, key, {name: errors[name].to_numpy() for name in errors.columns})
    return errors


#: The name under which a back-test entry stores its key and the SHA-256 of its arrays.
_ENTRY = "__entry__"
#: The columns of :meth:`HeldOut.errors`, what an entry holds.
_BACKTEST_TABLE_COLUMNS = ("cut", "c_ref", "n_train", "run", "C", "d", "log_loss", "median", "error", "spread")


def _read_backtest_entry(path: Path, key: str) -> pd.DataFrame | None:
    """A back-test cache entry, if it proves what it is: readable, made for ``key``, its arrays those it
    was written with (SHA-256).  Anything else is a warning and None: the caller computes it again."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except Exception as exc:  # noqa: BLE001 - a damaged zip raises BadZipFile, EOFError, KeyError, OSError …
        log.warning("the cached back-tests %s cannot be read (%s: %s); computing them again", path,
                    type(exc).__name__, exc)
        return None
    entry = arrays.pop(_ENTRY, None)
    try:
        proof = json.loads(str(entry)) if entry is not None else {}
    except ValueError:
        proof = {}
    if proof != {"key": key, "sha256": content_digest(arrays)} or set(arrays) != set(_BACKTEST_TABLE_COLUMNS):
        log.warning("the cached back-tests %s do not prove what they are (made for another key, changed since "
                    "they were written, or in an earlier format); computing them again", path)
        return None
    return pd.DataFrame(arrays)[list(_BACKTEST_TABLE_COLUMNS)]


def _write_backtest_entry(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write an entry with its key and content hash; a cache that cannot be written costs a warning."""
    proof = json.dumps({"key": key, "sha256": content_digest(arrays)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays, **{_ENTRY: np.array(proof)})
    except OSError as exc:
        log.warning(UNWRITABLE.format(path=path, error=f"{type(exc).__name__}: {exc}"))

