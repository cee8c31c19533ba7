"""Are the forecast intervals honest?  Calibration of the structural-error model on real runs.

:func:`evaluate_dataset` reproduces, for one dataset, what a user's fit does — fit below a
compute cut, learn the structural error from the population and from back-tests *inside*
the training runs (refits below cuts of them), forecast the runs above the cut — and scores
every held-out run under each ``discrepancy`` mode: whether it falls inside the 50/80/90/95%
predictive intervals, the interval width, CRPS and the signed error, with its distance beyond
the data.  :func:`leave_one_dataset_out` does it for several datasets, each time learning the
population without the dataset scored (nor its copies), and :func:`coverage_table` sums up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.calibration.population import fit_population
from bayes_scaling.calibration.rolling import HeldOut, internal_errors, rolling_backtest
from bayes_scaling.calibration.update import update
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import equal_tailed
from bayes_scaling.options import DRIFT_RULES, LEARNING
from bayes_scaling.sampling.settings import backtest_sampler
from bayes_scaling.scoring import crps

__all__ = ['DISTANCE_BINS', 'DISTANCE_LABELS', 'LEVELS', 'coverage_table', 'crps_difference', 'evaluate_dataset', 'forecast_backtest', 'leave_one_dataset_out', 'nested_backtests', 'score_runs']

log = logging.getLogger(__name__)

LEVELS = (0.5, 0.8, 0.9, 0.95)
#: The modes scored by default: law only, and each structural error.
MODES = ("none", "scaled", "population", "calibrated")
#: Bins of distance beyond the data (decades) for tables by extrapolation distance, and their labels.
DISTANCE_BINS = (0.0, 0.5, 1.0, 2.0, np.inf)
DISTANCE_LABELS = ("0-0.5", "0.5-1", "1-2", ">2")


def score_runs(log_draws: np.ndarray, log_loss: np.ndarray, distance: np.ndarray) -> pd.DataFrame:
    """Per held-out run: inside each central interval, 90% width (% of loss), CRPS, signed log error.

    Parameters
    ----------
    log_draws
        Predictive draws of log loss, (draws, runs).
    log_loss
        Observed log loss per run.
    distance
        Decades beyond the data per run.

    Returns
    -------
    pandas.DataFrame
        One row per run.
    """
    out = {"d": distance}
    for level in LEVELS:
        lo, hi = equal_tailed(log_draws, level)
        out[f"inside_{int(level * 100)}"] = (log_loss >= lo) & (log_loss <= hi)
    lo, hi = equal_tailed(log_draws, 0.9)
    median = np.median(log_draws, axis=0)
    out["width_90_pct"] = 100 * (np.exp(hi) - np.exp(lo)) / np.exp(median)
    out["crps"] = crps(log_draws, log_loss)
    out["log_error"] = log_loss - median
    return pd.DataFrame(out)


def nested_backtests(runs: RunTable, *, law: str = "chinchilla", likelihood: str = "student-t",
                     settings: Mapping[str, Any] | None = None, inner: bool = True,
                     progress: Callable[[str], None] | None = None) -> list[tuple[HeldOut, pd.DataFrame | None]]:
    """Rolling-origin back-tests of ``runs`` and, with each, the errors of the back-tests *inside*
    its training runs, made as a user's fit makes them (:func:`~bayes_scaling.calibration.rolling.internal_errors`,
    sampled with :func:`~bayes_scaling.sampling.settings.backtest_sampler`); None where no inner cut is
    possible, or without ``inner``.  The pairs from which λ (inner errors / forecast errors) is
    learned (``datasets/build/extrapolation_errors.py``), and what :func:`evaluate_dataset` scores.

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
    inner
        Also run the back-tests inside each training set.
    progress
        Called with a line of progress text (None: quiet).

    Returns
    -------
    list of tuple
        One (HeldOut, inner errors or None) per cut.
    """
    settings = dict(settings or {})
    outer = rolling_backtest(runs, law=law, likelihood=likelihood, settings=settings, progress=progress)
    sampler = {**settings, **backtest_sampler(draws=settings.get("draws", 1000), tune=settings.get("tune", 1000),
                                              chains=settings.get("chains", 4))}
    pairs = []
    for held in outer:
        train = runs.subset(runs.C <= held.cut, label=f"C <= {held.cut:.3g}")
        pairs.append((held, internal_errors(train, law=law, likelihood=likelihood, settings=sampler)
                      if inner else None))
    return pairs


def forecast_backtest(held: HeldOut, internal: pd.DataFrame | None, population: pd.DataFrame | None, *,
                      mode: str, index: int, seed: int) -> np.ndarray:
    """Forecast draws of one back-test's held-out runs, as a user's fit makes them under ``mode``:
    the law-only draws (``"none"``, or no population), else with the structural error of the
    population updated by the back-tests inside its training runs (``internal``) as the mode says.

    Parameters
    ----------
    held
        The back-test (:class:`~bayes_scaling.calibration.rolling.HeldOut`).
    internal
        The errors of the back-tests inside its training runs, or None.
    population
        Population draws, or None (the law alone).
    mode
        The structural-error mode.
    index
        The back-test's position among the dataset's: with ``seed``, what its random numbers come from.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    numpy.ndarray
        Forecast draws of log loss, (draws, runs).
    """
    if mode == "none" or population is None:
        return held.log_draws
    structural = update(population, internal if mode in LEARNING else None, draws=held.log_draws.shape[0],
                        c_ref=held.c_ref, seed=seed + index, drift=DRIFT_RULES.get(mode, "updated"))
    return held.forecast(structural, np.random.default_rng([seed, index, 29]))


def evaluate_dataset(runs: RunTable, *, population: pd.DataFrame, law: str = "chinchilla",
                     likelihood: str = "student-t", settings: Mapping[str, Any] | None = None,
                     modes: Sequence[str] = MODES,
                     progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Rolling-origin evaluation of the forecasts of one dataset; one row per held-out run and mode.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    population
        Population draws (:func:`~bayes_scaling.calibration.population.load_population`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    settings
        Options of the (re)fits: sampler settings, priors, window …
    modes
        Structural-error modes to score.
    progress
        Called with a line of progress text (None: quiet).

    Returns
    -------
    pandas.DataFrame
        One row per held-out run and mode.
    """
    settings = dict(settings or {})
    seed = int(settings.get("seed", 0))
    rows = []
    learning = any(mode in LEARNING for mode in modes)
    for i, (held, internal) in enumerate(nested_backtests(runs, law=law, likelihood=likelihood, settings=settings,
                                                          inner=learning, progress=progress)):
        for mode in modes:
            draws = forecast_backtest(held, internal, population, mode=mode, index=i, seed=seed)
            scored = score_runs(draws, held.log_loss, held.distance)
            rows.append(scored.assign(dataset=runs.source, mode=mode, cut=held.cut, n_train=held.n_train,
                                      internal_backtests=0 if internal is None or mode not in LEARNING
                                      else internal["cut"].nunique()))
    return pd.concat(rows, ignore_index=True)


def leave_one_dataset_out(datasets: Mapping[str, RunTable], errors: pd.DataFrame, *, law: str = "chinchilla",
                          likelihood: str = "student-t", settings: Mapping[str, Any] | None = None,
                          copies: Mapping[str, str] | None = None,
                          modes: Sequence[str] = MODES,
                          progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """:func:`evaluate_dataset` for each dataset, with the population learned from the back-test
    ``errors`` of the *other* datasets (``copies`` maps a dataset to the one it duplicates, e.g.
    ``{"epoch-chinchilla": "chinchilla"}``: neither informs the other's population).  The sampling
    diagnostics of each population are in ``attrs["populations"]``, by dataset left out.

    Parameters
    ----------
    datasets
        The run tables to score, by name.
    errors
        Back-test errors of every calibration dataset (the ``extrapolation-errors`` dataset's rows).
    law, likelihood
        The law and likelihood fitted below each cut.
    settings
        Sampler settings of the refits.
    copies
        Datasets that duplicate another, by name.
    modes
        The structural-error modes to score (``"none"`` is the law alone).
    progress
        Called with a line per population and refit.

    Returns
    -------
    pandas.DataFrame
        One row per held-out run and mode: dataset, cut, distance, observed log loss, predictive median,
        interval ends, CRPS; score it with :func:`coverage_table` and :func:`by_distance`.
    """
    copies = dict(copies or {})
    family = {name: copies.get(name, name) for name in set(datasets) | set(errors["dataset"])}
    frames, populations = [], {}
    for name, runs in datasets.items():
        others = errors[errors["dataset"].map(family) != family[name]]
        population = fit_population(others, seed=int((settings or {}).get("seed", 0)))
        populations[name] = population.attrs["diagnostics"] | {"datasets": population.attrs["datasets"]}
        if progress:
            progress(f"{name}: population from {', '.join(population.attrs['datasets'])}")
        frames.append(evaluate_dataset(runs, population=population, law=law, likelihood=likelihood,
                                       settings=settings, modes=modes, progress=progress))
    scored = pd.concat(frames, ignore_index=True)
    scored.attrs["populations"] = populations  # each left-out dataset's population: its sampling diagnostics
    return scored


def coverage_table(scored: pd.DataFrame, *, by: Sequence[str] = ("dataset", "mode")) -> pd.DataFrame:
    """Coverage at each level, median 90% width, mean CRPS and mean signed error, per group.

    Parameters
    ----------
    scored
        Held-out runs as scored by :func:`evaluate_dataset`.
    by
        Columns to group by.

    Returns
    -------
    pandas.DataFrame
        One row per group.
    """
    agg = {f"coverage_{int(level * 100)}": (f"inside_{int(level * 100)}", "mean") for level in LEVELS}
    agg |= {"runs": ("crps", "size"), "width_90_pct": ("width_90_pct", "median"), "crps": ("crps", "mean"),
            "bias_pct": ("log_error", "mean")}
    table = scored.groupby(list(by), observed=True).agg(**agg)
    table["bias_pct"] *= 100
    return table


def by_distance(scored: pd.DataFrame) -> pd.DataFrame:
    """:func:`coverage_table` by mode and bin of distance beyond the data."""
    bins = pd.cut(scored["d"], DISTANCE_BINS, labels=list(DISTANCE_LABELS))
    return coverage_table(scored.assign(decades=bins), by=("mode", "decades"))


def crps_difference(scored: pd.DataFrame, *, mode: str = "scaled", baseline: str = "none", by: str = "dataset",
                    level: float = 0.9, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean CRPS of ``mode`` minus that of ``baseline`` on the same held-out runs, per ``by`` group
    and pooled, with a bootstrap interval that resamples whole back-tests (cuts).

    The runs of one back-test share a fitted law and so err together: resampling runs as if they
    were independent would give intervals far too narrow.  A difference whose interval holds 0
    is one these back-tests cannot tell from none.  Columns: ``runs``, ``backtests``,
    ``difference`` and its interval ``lo``/``hi``, ``relative`` (difference / baseline's CRPS).

    Parameters
    ----------
    scored
        Held-out runs as scored by :func:`evaluate_dataset`.
    mode
        The mode scored.
    baseline
        The mode it is compared with.
    by
        The column to group by.
    level
        Probability of the credible intervals.
    resamples
        Bootstrap resamples of whole back-tests.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    pandas.DataFrame
        One row per group and pooled: difference, its interval, relative difference.
    """
    keys = [by, "cut"]
    paired = scored[scored["mode"].isin([mode, baseline])]
    sums = paired.groupby([*keys, "mode"], observed=True)["crps"].agg(["sum", "size"]).unstack("mode")
    if mode not in sums["sum"] or baseline not in sums["sum"]:
        raise InputError(f"crps_difference needs scores of both {mode!r} and {baseline!r}")
    if not (sums["size"][mode] == sums["size"][baseline]).all():
        raise InputError(f"{mode!r} and {baseline!r} were not scored on the same held-out runs")
    cuts = pd.DataFrame({"diff": sums["sum"][mode] - sums["sum"][baseline], "base": sums["sum"][baseline],
                         "runs": sums["size"][baseline]}).reset_index()
    rng = np.random.default_rng([seed, 61])
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    rows = {}
    for name, group in [*cuts.groupby(by, observed=True, sort=True), ("pooled", cuts)]:
        diff, base, runs = (group[c].to_numpy(float) for c in ("diff", "base", "runs"))
        pick = rng.integers(0, len(group), size=(resamples, len(group)))
        boot = diff[pick].sum(axis=1) / runs[pick].sum(axis=1)
        rows[name] = {"runs": int(runs.sum()), "backtests": len(group), "difference": diff.sum() / runs.sum(),
                      "lo": float(np.quantile(boot, lo_q)), "hi": float(np.quantile(boot, hi_q)),
                      "relative": diff.sum() / base.sum()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)
