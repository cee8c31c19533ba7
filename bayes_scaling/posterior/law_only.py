"""Sampling a law's posterior from runs, the law taken as exact: what a fit starts from and what
each of its back-tests is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_scaling._provenance import package_versions
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.io.cache import DISPLAY_ONLY, cache_key
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.registry import get_law
from bayes_scaling.model.likelihoods import Likelihood, get_likelihood
from bayes_scaling.model.pymc_model import (
    POOLING,
    build_model,
    log_inputs,
    model_data,
    raw_initial_points,
    structure_key,
)
from bayes_scaling.model.spec import model_spec
from bayes_scaling.options import DEFAULT_WINDOW, FRONTIER_DECADES, FRONTIER_MIN_RUNS
from bayes_scaling.posterior.fit_result import Fit, _derive_groups, _diagnosed
from bayes_scaling.sampling.diagnostics import check_sampling
from bayes_scaling.sampling.nuts import run_sampler
from bayes_scaling.sampling.settings import (
    BACKTEST_DRAWS,
    BACKTEST_TUNE,
    SAMPLER_DEFAULTS,
    SamplerSettings,
    backtest_sampler,
)

log = logging.getLogger(__name__)


def _initial_points(spec, table: RunTable, seed: int):
    """Where chains start: at the multi-start optimum for a multimodal law (one group), else NUTS's default."""
    if not spec.law.multimodal or len(spec.groups) > 1:
        return None
    from bayes_scaling.model.optimize import sampled_optimum

    optimum = sampled_optimum(table, spec.law, spec.priors, spec.stats.centre, seed=seed)
    log.info("%s is multimodal: chains start at the multi-start optimum %s", spec.law.name, optimum)
    return raw_initial_points(spec, optimum)


def _fit_config(spec, table: RunTable, settings: SamplerSettings, *, prior_set: str,
                window: float | str | None = None, given: int | None = None) -> dict[str, Any]:
    """What a fit file records of how the fit was made (hashed; checked on loading)."""
    return {
        "law": spec.law.name,
        "formula": spec.law.formula,
        "likelihood": {"name": spec.likelihood.name, **spec.likelihood.options()},
        "priors": {k: v.to_dict() for k, v in spec.priors.items()},
        "prior_set": prior_set,
        "pooling": spec.pooling,
        "groups": list(spec.groups),
        "stats": spec.stats.to_dict(),
        "data": {"source": table.source, "fingerprint": table.fingerprint(), "rows": len(table),
                 "derived": dict(table.derived)},
        "sampler": settings.to_dict(),
        "versions": package_versions(),
        "discrepancy": "none",  # fitting.fit records its structural error here
        "backtests": False,
        "backtest_sampler": backtest_sampler(draws=settings.draws, tune=settings.tune, chains=settings.chains),
        "window": window,
        "runs_given": len(table) if given is None else given,  # before the window
    }


def _checked_inputs(table: RunTable, law_obj: ScalingLaw, *, pooling: str) -> tuple[str, ...]:
    """Refuse what cannot be fitted, before any work; returns the groups."""
    if pooling not in POOLING:
        raise InputError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
    log_inputs(law_obj, table)  # clear error for a missing column, before anything else
    table.require(law_obj.n_params + 1, why=f"law {law_obj.name} has {law_obj.n_params} parameters plus noise")
    for column in ("loss", *(c for c in law_obj.inputs if c in ("N", "D", "C"))):
        values = table.column(column)
        if np.ptp(np.log(values)) == 0:
            what = "loss" if column == "loss" else f"{column}, an input of the {law_obj.name} law,"
            raise InputError(f"{table.source}: every run has the same {what} ({values[0]:.6g}): a scaling law "
                             f"cannot be fitted to runs that do not vary in it")
    groups = tuple(table.groups) if table.has_groups else ()
    if len(groups) > 1:
        counts = table.data["group"].value_counts()
        small = counts[counts < 2]
        if len(small):
            raise InputError(f"{table.source}: group(s) {', '.join(map(str, small.index))} have fewer than 2 runs")
    return groups


def check_fittable(runs: RunTable, law: str | ScalingLaw, *, pooling: str = "shared") -> None:
    """Raise :class:`InputError` now if :func:`sample_law` would refuse ``runs`` for ``law`` (too few
    runs, no variation in loss, N or D, a group of one run): checks a batch makes before any fit.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    pooling
        How exponents of groups are shared.

    Returns
    -------
    None
    """
    _checked_inputs(runs, get_law(law) if isinstance(law, str) else law, pooling=pooling)


def _complete_idata(result: Fit, runs: RunTable, seed: int, *, derived: bool = True) -> None:
    """Drop transformed variables; add observed and constant data and (``derived``) the log-likelihood,
    posterior-predictive and prior groups."""
    import xarray as xr

    idata = result.idata
    post = idata["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if v.endswith("__")])
    if "group" in post.dims:  # the model indexes groups 0…G−1: give them their names
        post = post.assign_coords(group=result.groups)
    obs = np.arange(len(runs))
    result.idata = xr.DataTree.from_dict({
        "posterior": post,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"log_loss": ("obs", np.log(runs.loss))}, coords={"obs": obs}),
        "constant_data": _constant_data(runs, obs),
    })
    if derived:
        _derive_groups(result, runs, seed)


def _constant_data(runs: RunTable, obs: np.ndarray):
    import xarray as xr

    data = {k: ("obs", runs.column(k)) for k in ("N", "D", "C", "loss")}
    if "unique_tokens" in runs.data.columns:
        data["unique_tokens"] = ("obs", runs.column("unique_tokens"))
    if runs.has_groups:
        data["group"] = ("obs", runs.data["group"].astype(str).to_numpy())
    return xr.Dataset(data, coords={"obs": obs})


def min_train_runs(law_name: str) -> int:
    """Runs a training split needs: enough to identify the law (3 per parameter, at least 10).

    Parameters
    ----------
    law_name
        A law name.

    Returns
    -------
    int
    """
    return max(10, 3 * (get_law(law_name).n_params + 1))




def training_window(runs: RunTable, decades: float | str | None, *, min_runs: int) -> RunTable:
    """The runs within ``decades`` of compute below the largest budget, and at least the ``min_runs``
    largest (all runs when ``decades`` is None).  ``"frontier"``: :data:`FRONTIER_DECADES` where at
    least :data:`FRONTIER_MIN_RUNS` runs lie within them, else every run.

    A law that is not exactly true is bent by its smallest runs where the form misses them, and
    the forecast beyond the data inherits the bend.  Whether fitting near the frontier helps
    depends on the design: on the isoFLOP ladders (chinchilla, misfitting-final) it cut the
    back-tests' CRPS by 14-21%; on the Gadre over-training grids it doubled it
    (``benchmarks/bench_window.py``), hence an option, off by default.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    decades
        The window in decades, ``"frontier"``, or None (every run).
    min_runs
        Fewest runs kept.

    Returns
    -------
    RunTable
    """
    if decades is None:
        return runs
    if decades == "frontier":
        log_c = np.log10(runs.C)
        near = int((log_c >= log_c.max() - FRONTIER_DECADES - 1e-12).sum())
        if near < FRONTIER_MIN_RUNS:
            log.info("%s: %d runs within %.3g decades of the largest budget (fewer than %d): fitting every run",
                     runs.source, near, FRONTIER_DECADES, FRONTIER_MIN_RUNS)
            return runs
        decades = FRONTIER_DECADES
    given = decades
    try:
        decades = float(decades)
    except (TypeError, ValueError):
        decades = float("nan")
    if not 0 < decades < float("inf"):
        raise InputError(f"the training window must be a positive number of decades, not {given!r}")
    log_c = np.log10(runs.C)
    keep = log_c >= log_c.max() - decades - 1e-12
    if keep.sum() < min_runs:
        keep = np.zeros(len(runs), dtype=bool)
        keep[np.argsort(-log_c, kind="stable")[:min_runs]] = True
    if keep.all():
        return runs
    log.info("%s: fitting the %d runs within %.3g decades of the largest budget (of %d; at least %d kept)",
             runs.source, keep.sum(), decades, len(runs), min_runs)
    return runs.subset(keep, label=f"largest {decades:g} decades")


def law_and_likelihood(law: str | ScalingLaw, likelihood: str | Likelihood, *,
                       huber_delta: float = 1e-3) -> tuple[ScalingLaw, Likelihood]:
    """The law and the likelihood objects a fit uses (``huber_delta`` is the Huber likelihood's threshold).

    Parameters
    ----------
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    huber_delta
        Huber threshold.

    Returns
    -------
    tuple
    """
    return get_law(law), get_likelihood(likelihood, **({"delta": huber_delta} if str(likelihood) == "huber" else {}))


def sample_law(runs: Any, *, law: str | ScalingLaw = "chinchilla", likelihood: str | Likelihood = "student-t",
               priors: Mapping[str, Any] | None = None, prior_set: str = "default", pooling: str = "shared",
               draws: int = SAMPLER_DEFAULTS.draws, tune: int = SAMPLER_DEFAULTS.tune,
               chains: int = SAMPLER_DEFAULTS.chains, seed: int = SAMPLER_DEFAULTS.seed,
               sampler: str = SAMPLER_DEFAULTS.sampler, target_accept: float = SAMPLER_DEFAULTS.target_accept,
               strict: bool = False, progress: bool = False, huber_delta: float = 1e-3,
               window: float | str | None = DEFAULT_WINDOW, derived: bool = True) -> Fit:
    """Sample the posterior of ``law`` fitted to ``runs``, the law taken as exact (no structural error).

    This is what :func:`bayes_scaling.fitting` starts from, and what each of its back-tests is
    (:mod:`bayes_scaling.calibration.rolling`).  The options are :func:`bayes_scaling.fitting`'s;
    ``derived=False`` leaves out the log-likelihood, posterior-predictive and prior groups (a
    back-test or an allocation fit reads only the posterior).

    Parameters
    ----------
    runs
        A :class:`~bayes_scaling.data.runs.RunTable`, a DataFrame, a file path or a dataset name.
    law, likelihood, priors, prior_set, pooling, draws, tune, chains, seed, sampler, target_accept, strict, progress, huber_delta, window
        As for :func:`bayes_scaling.fitting`.
    derived
        Add the groups derived from the draws (``log_likelihood``, ``posterior_predictive``,
        ``prior``, ``prior_predictive``).

    Returns
    -------
    Fit
        With ``config["discrepancy"] == "none"``: its forecasts are the law's alone.

    Raises
    ------
    InputError
        For runs, options or priors that cannot be fitted, before any sampling.
    SamplingError
        With ``strict``, when the diagnostics fail.
    """
    import time

    from bayes_scaling.data.datasets import runs_from

    start = time.perf_counter()
    law_obj, lik = law_and_likelihood(law, likelihood, huber_delta=huber_delta)
    given = runs_from(runs)
    table = training_window(given, window, min_runs=min_train_runs(law_obj.name))
    groups = _checked_inputs(table, law_obj, pooling=pooling)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                               target_accept=target_accept, progress=progress)
    spec = model_spec(table, law_obj, lik, priors=priors, prior_set=prior_set, pooling=pooling, groups=groups)
    idata, timing = run_sampler(lambda: build_model(spec, table), settings, key=structure_key(spec),
                                data=model_data(spec, table), initial_points=_initial_points(spec, table, seed))
    config = _fit_config(spec, table, settings, prior_set=prior_set, window=window, given=len(given))
    result = Fit(idata=idata, config=config, diagnostics=None, timing=timing)
    result.runs = table  # the validated table itself (Fit.runs would rebuild it from the stored data)
    _complete_idata(result, table, seed, derived=derived)
    result.diagnostics = check_sampling(result.idata, _diagnosed(result.idata, config), strict=strict,
                                        label=f"{law_obj.name} fit to {table.source}")
    timing["total_s"] = time.perf_counter() - start
    return result


#: :func:`sample_law`'s keyword defaults that change its result (what cache keys fill in).
LAW_ONLY_DEFAULTS: dict[str, Any] = {
    "priors": None, "prior_set": "default", "pooling": "shared", "huber_delta": 1e-3, "window": DEFAULT_WINDOW,
    **{k: getattr(SAMPLER_DEFAULTS, k) for k in ("draws", "tune", "chains", "seed", "sampler", "target_accept")},
}


def result_key(runs: RunTable, *, law: str, likelihood: str, settings: Mapping[str, Any],
               defaults: Mapping[str, Any], what: str) -> str:
    """The cache key of a result computed from ``runs`` with ``settings`` (``defaults`` filled in, so
    a change of a default is a new key): the data fingerprint, law, likelihood, the resolved priors,
    how a fit's own back-tests are sampled, package versions and source (:func:`~bayes_scaling.io.cache.cache_key`).

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name.
    likelihood
        A likelihood name.
    settings
        Options of the (re)fits: sampler settings, priors, window …
    defaults
        Defaults filled in.
    what
        What is cached.

    Returns
    -------
    str
    """
    law_obj, lik = law_and_likelihood(law, likelihood, huber_delta=settings.get("huber_delta", 1e-3))
    spec = model_spec(runs, law_obj, lik, priors=settings.get("priors"),
                      prior_set=settings.get("prior_set", "default"))
    priors = {k: v.to_dict() for k, v in spec.priors.items()}
    resolved = {**defaults, **{k: v for k, v in settings.items() if k not in DISPLAY_ONLY}}
    backtests = {"draws": BACKTEST_DRAWS, "tune": BACKTEST_TUNE}
    return cache_key(what, runs.fingerprint(), law, likelihood, resolved, priors, backtests)
