"""Fitting a scaling law: :func:`fit` samples the law's posterior (:func:`~bayes_scaling.posterior.law_only.sample_law`)
and adds its structural error beyond the data, learned from the population of published back-tests
and from back-tests of the same runs (:mod:`bayes_scaling.calibration`); :func:`cached_fit` reuses
a fit kept in the cache folder.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayes_scaling.calibration.population import load_population
from bayes_scaling.calibration.rolling import internal_errors
from bayes_scaling.calibration.update import kept_backtests, update
from bayes_scaling.data.runs import RunTable
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.model.likelihoods import Likelihood
from bayes_scaling.options import DEFAULT_WINDOW, DISCREPANCIES, DRIFT_RULES, LEARNING
from bayes_scaling.posterior.structural import StructuralError
from bayes_scaling.sampling.settings import backtest_sampler

if TYPE_CHECKING:
    from bayes_scaling.data.runs import RunTable
    from bayes_scaling.posterior.fit_result import Fit
from bayes_scaling.errors import InputError
from bayes_scaling.io.cache import DISPLAY_ONLY, UNWRITABLE
from bayes_scaling.posterior.fit_result import Fit, structural_groups
from bayes_scaling.posterior.fitfile import ALLOCATION_GROUP
from bayes_scaling.posterior.law_only import (
    LAW_ONLY_DEFAULTS,
    law_and_likelihood,
    result_key,
    sample_law,
)
from bayes_scaling.posterior.load import load_fit
from bayes_scaling.sampling.settings import SAMPLER_DEFAULTS

log = logging.getLogger(__name__)


def fit(runs: Any, *, law: str | ScalingLaw = "chinchilla", likelihood: str | Likelihood = "student-t",
        priors: Mapping[str, Any] | None = None, prior_set: str = "default", pooling: str = "shared",
        draws: int = SAMPLER_DEFAULTS.draws, tune: int = SAMPLER_DEFAULTS.tune, chains: int = SAMPLER_DEFAULTS.chains,
        seed: int = SAMPLER_DEFAULTS.seed, sampler: str = SAMPLER_DEFAULTS.sampler,
        target_accept: float = SAMPLER_DEFAULTS.target_accept, strict: bool = False, progress: bool = False,
        huber_delta: float = 1e-3, discrepancy: str = "shared", backtests: bool = True,
        window: float | str | None = DEFAULT_WINDOW, cache_dir: str | os.PathLike | None = None) -> Fit:
    """Fit a scaling law to training runs by NUTS.

    Parameters
    ----------
    runs
        A :class:`RunTable`, a DataFrame, a file path or a dataset name (e.g. ``"chinchilla"``).
    law
        A law name (``bayes_scaling.laws.registry.LAWS``) or a :class:`ScalingLaw`.
    likelihood
        ``"student-t"`` (default), ``"normal"`` or ``"huber"``, on log loss.
    priors
        Overrides by sampled-parameter name, e.g. ``{"alpha": "LogNormal(mu=-1.08, sigma=0.2)"}``.
    prior_set
        ``"default"`` (weakly informative, scaled to the data) or ``"literature"`` (centred
        on the published fit in the ``published-fits`` dataset).
    pooling
        With a ``group`` column: ``"shared"``, ``"partial"`` or ``"separate"`` exponents.
    draws, tune, chains, seed, sampler, target_accept
        Sampler settings (defaults: :data:`~bayes_scaling.sampling.settings.SAMPLER_DEFAULTS`);
        an integer ``seed`` reproduces the draws exactly.
    strict
        Raise :class:`SamplingError` instead of warning when diagnostics fail.
    huber_delta
        Threshold of the Huber likelihood (Hoffmann et al. use 1e-3).
    discrepancy
        The law's structural error beyond the data (:mod:`bayes_scaling.posterior.structural`), drawn
        from the population learned from rolling back-tests of published datasets:
        ``"shared"`` (default) with its size of drift and scatter updated by the back-tests of
        these runs and the drift's direction the one the published datasets share (without
        back-tests, the population alone); ``"scaled"`` the same with either direction of the
        drift alike; ``"population"`` as for a new dataset, as is; ``"calibrated"`` updated by
        these runs' back-tests, direction included; ``"none"`` takes the law as exact.
        Every forecast from the fit includes it (why ``"shared"``: ``docs/design/structural-error.md``).
    backtests
        Refit the law below compute cuts of the runs (a few more fits) and keep how it forecast
        the runs beyond: they weight laws by their forecasts (:func:`~bayes_scaling.compare.lfo.lfo_weights`,
        law averages) and are what ``"scaled"`` and ``"calibrated"`` learn from.  Not for
        ``"none"`` or grouped runs.
    window
        ``"frontier"`` (default): the runs within 1.5 decades of compute below the largest budget
        when at least 50 runs lie there (a design with many runs per budget), else every run; a
        number: the runs within that many decades (and at least the law's minimum number of
        runs, the largest); None: every run.  The law is not exactly true, and its smallest runs
        bend the fit where the form misses them: leaving one dataset out, the frontier forecast
        real runs beyond the data better (``docs/design/structural-error.md``).  The parameters then
        describe the runs near the frontier, not the law over every run (``window=None`` for
        that); the compute-optimal allocation is that of the law fitted to every run, kept in the
        ``allocation_posterior`` group (:meth:`Fit.allocation_params`).  Back-tests of the fit use
        the same window.
    cache_dir
        Keep the back-tests' errors in this folder for later fits of the same runs, law, priors
        and settings (:mod:`bayes_scaling.io.cache`; the command line's default).  None: refit.

    Returns
    -------
    Fit
        The posterior (``fit.idata``, an ArviZ 1 DataTree), the configuration, the diagnostics and,
        unless ``discrepancy="none"``, the structural error (``fit.structural``).

    Raises
    ------
    InputError
        For runs, options or priors that cannot be fitted, before any sampling.
    SamplingError
        With ``strict``, when the diagnostics fail (otherwise a :class:`SamplingWarning`).

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> fit = bs.fit("chinchilla", draws=200, tune=300, chains=2, seed=3)
    >>> fit.config["law"], fit.idata["posterior"].sizes["chain"], fit.structural is not None
    ('chinchilla', 2, True)
    >>> fit.config["window"], len(fit.runs), fit.config["runs_given"]  # the runs near the frontier
    ('frontier', 57, 245)
    >>> 0.4 < float(fit.draws("alpha").mean()) < 0.9  # their α; over every run (window=None) about 0.34
    True
    """
    import time

    start = time.perf_counter()
    if discrepancy not in DISCREPANCIES:
        raise InputError(f"discrepancy must be one of {', '.join(DISCREPANCIES)}, not {discrepancy!r}")
    if discrepancy == "calibrated" and not backtests:
        raise InputError("discrepancy='calibrated' learns from back-tests of the runs: leave backtests on")
    from bayes_scaling.data.datasets import runs_from

    runs = runs_from(runs)
    if runs.provenance.get("curves"):
        log.warning("%s holds learning curves: %d checkpoints of fewer runs, which a law fitted to every row reads as "
                    "independent runs (its intervals too narrow); fit each run's last checkpoint "
                    "(bayes_scaling.isoflop.envelope.final_checkpoints) or read the curves' envelope "
                    "(bayes-scaling isoflop %s)", runs.source, len(runs), runs.source)
    result = sample_law(runs, law=law, likelihood=likelihood, priors=priors, prior_set=prior_set, pooling=pooling,
                        draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                        target_accept=target_accept, strict=strict, progress=progress, huber_delta=huber_delta,
                        window=window)
    config, timing = result.config, result.timing
    if len(result.runs) < config["runs_given"] and not result.grouped and {"N", "D"} <= set(result.law.inputs):
        _attach_allocation(result, sample_law(
            runs, law=law, likelihood=likelihood, priors=priors, prior_set=prior_set, pooling=pooling, draws=draws,
            tune=tune, chains=chains, seed=seed, sampler=sampler, target_accept=target_accept, strict=strict,
            huber_delta=huber_delta, window=None, derived=False))
    config["discrepancy"] = discrepancy
    config["backtests"] = bool(backtests) and discrepancy != "none"
    if discrepancy != "none":
        start_se = time.perf_counter()
        internal = {**backtest_sampler(draws=draws, tune=tune, chains=chains), "seed": seed, "sampler": sampler,
                    "target_accept": target_accept, "priors": priors, "prior_set": prior_set,
                    "huber_delta": huber_delta, "window": window}
        law_obj, lik = law_and_likelihood(law, likelihood, huber_delta=huber_delta)
        _attach_structural(result, structural_error_for(
            result.runs, law_obj, lik, mode=discrepancy, settings=internal, n_draws=chains * draws,
            grouped=result.grouped, backtests=config["backtests"], cache_dir=cache_dir))
        timing["structural_error_s"] = time.perf_counter() - start_se
    timing["total_s"] = time.perf_counter() - start
    return result


def _attach_allocation(result: Fit, every_run: Fit) -> None:
    """Keep the law's parameters fitted to every run (``allocation_posterior``): a fit near the frontier
    forecasts loss from the runs there, but its exponents describe only those runs, and the allocation
    of compute between N and D is read from the whole design (on the Chinchilla runs: α 0.67 near
    the frontier, 0.34 over every run; N* ∝ C^0.35 against C^0.51)."""
    import xarray as xr

    post = every_run.idata["posterior"]
    kept = post.to_dataset()[[name for name in result.law.param_names if name in post.data_vars]]
    groups = {name: result.idata[name].to_dataset() for name in result.idata.children}
    result.idata = xr.DataTree.from_dict(groups | {ALLOCATION_GROUP: kept})
    result.__dict__.pop("structural", None)
    result.config["allocation"] = {"runs": len(every_run.runs), "window": None,
                                   "diagnostics_ok": bool(every_run.diagnostics.ok)}
    result.timing["allocation_s"] = every_run.timing.get("total_s", 0.0)


def structural_error_for(runs: RunTable, law: ScalingLaw, likelihood: Likelihood, *, mode: str,
                         settings: dict[str, Any], n_draws: int, grouped: bool = False,
                         backtests: bool = True, cache_dir: str | os.PathLike | None = None) -> StructuralError:
    """The structural error of a fit to ``runs``: the population's predictive for a new dataset
    (``mode="population"``), or that population updated by rolling back-tests of the same law
    on the runs themselves — their size only (``"scaled"``) or direction too (``"calibrated"``).
    With ``backtests`` those refits run in every mode and are kept (they weight laws by how they
    forecast); ``"scaled"`` without them is the population alone.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    mode
        The structural-error mode.
    settings
        Options of the (re)fits: sampler settings, priors, window …
    n_draws
        Draws to make.
    grouped
        The runs have groups.
    backtests
        Run the back-tests.
    cache_dir
        The cache folder (None: no cache).

    Returns
    -------
    StructuralError
    """
    population = load_population(law.name, likelihood.name, window=settings.get("window"))
    errors = None
    learns = mode in LEARNING
    if grouped and (backtests or learns):
        # only "calibrated" loses something the user asked for; otherwise the fit just keeps no back-tests
        (log.warning if mode == "calibrated" else log.info)(
            "structural error of a grouped fit: the population alone, no back-tests (back-tests of groups are "
            "not pooled yet)")
    elif backtests or mode == "calibrated":
        errors = internal_errors(runs, law=law.name, likelihood=likelihood.name,
                                 settings={k: v for k, v in settings.items() if v is not None}, cache_dir=cache_dir)
    elif learns:
        log.info("structural error: no back-tests of these runs (backtests=False); the population alone")
    structural = update(population, errors if learns else None, draws=n_draws,
                        c_ref=float(runs.C.max()), seed=int(settings.get("seed", 0)),
                        source=population.attrs.get("source", ""), drift=DRIFT_RULES.get(mode, "updated"))
    if errors is not None and len(errors):
        structural.backtests = kept_backtests(errors)
        structural.info["backtest_runs"] = len(errors)
        structural.info["backtest_cuts"] = int(errors["cut"].nunique())
    structural.info["mode"] = mode
    return structural


def _attach_structural(result: Fit, structural: StructuralError) -> None:
    import xarray as xr

    post = result.idata["posterior"]
    groups = {name: result.idata[name].to_dataset() for name in result.idata.children}
    groups |= structural_groups(structural, post.sizes["chain"], post.sizes["draw"])
    result.idata = xr.DataTree.from_dict(groups)
    result.__dict__.pop("structural", None)


#: fit()'s keyword defaults that change its result (what cache keys fill in).
FIT_DEFAULTS: dict[str, Any] = {**LAW_ONLY_DEFAULTS, "discrepancy": "shared", "backtests": True}


def cached_fit(runs: RunTable, *, law: str, likelihood: str, cache_dir: str | os.PathLike | None,
               settings: dict[str, Any]) -> tuple[Fit, bool]:
    """``fit(runs, …)``, or the same fit loaded from ``cache_dir``; returns (fit, was_cached).

    The key (:func:`~bayes_scaling.posterior.law_only.result_key`) holds the data, law, likelihood, settings, resolved priors,
    package versions and source: a fit is not reused after an upgrade or a change of default
    priors.  The fit's own internal back-tests are cached in the same folder.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name.
    likelihood
        A likelihood name.
    cache_dir
        The cache folder (None: no cache).
    settings
        Options of the (re)fits: sampler settings, priors, window …

    Returns
    -------
    tuple
        (Fit, whether it came from the cache).
    """
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    path = None
    if cache_dir is not None:
        key = result_key(runs, law=law, likelihood=likelihood, settings=settings, defaults=FIT_DEFAULTS, what="fit")
        path = Path(cache_dir) / f"{law}-{likelihood}-{key}.nc"
        if path.is_file():
            cached = _cached_entry(path, runs, law=law, likelihood=likelihood, settings=settings)
            if cached is not None:
                return cached, True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # diagnostics are reported in the table
        result = fit(runs, law=law, likelihood=likelihood, cache_dir=cache_dir, **settings)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            result.save(path, overwrite=True)
        except (OSError, InputError) as exc:  # the cache is optional: never worth the result
            log.warning(UNWRITABLE.format(path=path, error=f"{type(exc).__name__}: {exc}"))
    return result, False


def _cached_entry(path: Path, runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any]) -> Fit | None:
    """The fit in a cache entry if it is the one asked for: a readable fit file (its hashes checked by
    load_fit) of these runs, law and likelihood, made with these settings.  Anything else is a warning
    and None: the caller fits again and replaces the entry."""
    try:
        cached = load_fit(path, law=law, likelihood=likelihood, fingerprint=runs.fingerprint())
    except InputError as exc:
        log.warning("the cached fit %s cannot be used (%s); fitting again", path, exc)
        return None
    wanted = {**FIT_DEFAULTS, **{k: v for k, v in settings.items() if k not in DISPLAY_ONLY}}
    config = cached.config
    made = {**{k: config["sampler"][k] for k in ("draws", "tune", "chains", "seed", "target_accept")},
            "discrepancy": config["discrepancy"], "prior_set": config["prior_set"], "pooling": config["pooling"],
            "window": config.get("window"), "backtests": config["backtests"]}
    expected = {k: wanted[k] for k in made}
    expected["backtests"] = bool(wanted["backtests"]) and wanted["discrepancy"] != "none"
    if made != expected:
        differ = ", ".join(f"{k} {made[k]!r} (asked {expected[k]!r})" for k in made if made[k] != expected[k])
        log.warning("the cached fit %s was made with other settings (%s): it was filed under another key; "
                    "fitting again", path, differ)
        return None
    return cached

