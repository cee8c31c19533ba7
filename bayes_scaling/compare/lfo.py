"""Extrapolation: leave-future-out densities of forecasts beyond rolling cuts, and the laws'
stacking weights from them (refitted, or from the back-tests each fit keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.calibration.rolling import extrapolation_cuts
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.options import DEFAULT_WINDOW
from bayes_scaling.posterior.fit_result import Fit
from bayes_scaling.posterior.law_only import min_train_runs


def kde_log_density(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """log predictive density of each observation from its draws (Gaussian kernel, Silverman's bandwidth).

    ``draws`` (S, n) of log loss, ``observed`` (n,); works for predictive draws of any form
    (a law's noise plus a structural error has no closed-form density).

    Parameters
    ----------
    draws
        Draws, (draws, observations).
    observed
        One observation per column.

    Returns
    -------
    numpy.ndarray
    """
    from scipy.special import logsumexp

    spread = np.minimum(draws.std(axis=0), (np.quantile(draws, 0.75, axis=0) - np.quantile(draws, 0.25, axis=0)) / 1.34)
    bandwidth = np.maximum(0.9 * spread * draws.shape[0] ** -0.2, 1e-6)
    z = (observed[None, :] - draws) / bandwidth[None, :]
    return logsumexp(-0.5 * z * z, axis=0) - np.log(draws.shape[0] * bandwidth * np.sqrt(2 * np.pi))


def stacking_weights(log_density: np.ndarray) -> np.ndarray:
    """Weights on the simplex maximising Σ_i log Σ_k w_k p_k(y_i) (Yao et al. 2018); ``log_density`` (runs, models).

    Parameters
    ----------
    log_density
        log p_k(y_i), (runs, models).

    Returns
    -------
    numpy.ndarray
        Weights summing to 1.
    """
    from scipy import optimize
    from scipy.special import logsumexp, softmax

    k = log_density.shape[1]

    def objective(theta):
        w = softmax(np.append(theta, 0.0))
        return -float(np.sum(logsumexp(log_density + np.log(np.maximum(w, 1e-300))[None, :], axis=1)))

    best = optimize.minimize(objective, np.zeros(k - 1), method="Nelder-Mead" if k <= 3 else "L-BFGS-B")
    return softmax(np.append(best.x, 0.0))


def lfo_table(runs: RunTable, *, laws: Sequence[str], likelihood: str = "student-t",
              settings: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Leave-future-out comparison: how well each law *forecasts* the runs beyond rolling compute cuts.

    Exact LFO (refits below each cut, :func:`~bayes_scaling.calibration.rolling.rolling_backtest`), every law on
    the same cuts; each held-out run is scored by the density of its forecast — the law plus the
    population's structural error — and stacking weights are computed from those densities.
    Unlike PSIS-LOO (which measures interpolation), this ranks laws by extrapolation.

    Parameters
    ----------
    runs
        The runs every law is back-tested on.
    laws
        Names of the laws to compare (two or more).
    likelihood
        The likelihood of every fit.
    settings
        :func:`~bayes_scaling.posterior.law_only.sample_law` options of the refits (draws, seed …).
    progress
        Called with a line per refit.

    Returns
    -------
    pandas.DataFrame
        One row per law, best first: ``elpd_lfo`` and its ``se``, the difference to the best, mean
        ``crps``, the stacking weight, the runs held out and the cuts.
    """
    from bayes_scaling.calibration.population import load_population
    from bayes_scaling.calibration.rolling import rolling_backtest
    from bayes_scaling.calibration.update import update
    from bayes_scaling.scoring import crps

    cuts = extrapolation_cuts(runs, min_train=max(min_train_runs(law) for law in laws))
    densities, rows = {}, []
    for law in laws:
        held = rolling_backtest(runs, law=law, likelihood=likelihood, cuts=cuts, settings=settings, progress=progress)
        population = load_population(law, likelihood, window=(settings or {}).get("window", DEFAULT_WINDOW))
        lpd, scores = [], []
        for i, h in enumerate(held):
            structural = update(population, None, draws=h.log_draws.shape[0], c_ref=h.c_ref, seed=i)
            draws = h.forecast(structural, np.random.default_rng([i, 31]))
            lpd.append(kde_log_density(draws, h.log_loss))
            scores.append(crps(draws, h.log_loss))
        densities[law] = np.concatenate(lpd)
        rows.append({"model": f"{law} / {likelihood}", "elpd_lfo": float(densities[law].sum()),
                     "se": float(densities[law].std(ddof=1) * np.sqrt(densities[law].size)),
                     "crps": float(np.mean(np.concatenate(scores))), "held_out": int(densities[law].size),
                     "cuts": len(cuts)})
    table = pd.DataFrame(rows).set_index("model")
    matrix = np.column_stack([densities[law] for law in laws])
    table["stacking_weight"] = stacking_weights(matrix)
    best = int(np.argmax(matrix.sum(axis=0)))
    diff = matrix - matrix[:, [best]]
    table["elpd_diff"] = diff.sum(axis=0)
    table["dse"] = diff.std(axis=0, ddof=1) * np.sqrt(diff.shape[0])
    return table.sort_values("elpd_lfo", ascending=False)


def lfo_weights(fits: Mapping[str, Fit]) -> pd.DataFrame:
    """Leave-future-out stacking weights of several laws from the back-tests their fits already ran.

    A fit with a structural error (the default) refits its law below compute cuts of its own
    runs and keeps those back-tests.  Each run beyond a
    cut is scored by the density of its forecast — the law-only predictive (as a normal: median,
    robust sd) plus the population's structural error, *not* updated by these errors
    (:func:`~bayes_scaling.calibration.update.predictive_log_density`) — on the runs and cuts that every
    law was back-tested on; stacking weights (Yao et al. 2018) follow from those densities.
    Approximate (one normal per law-only forecast) but free: no refit.  :func:`lfo_table` is the
    exact version with new refits.  Best law first.

    Parameters
    ----------
    fits
        Fits of the same runs, one law each, by label; each with the back-tests a default fit keeps.

    Returns
    -------
    pandas.DataFrame
        One row per law, best first: ``elpd_lfo``, ``se``, ``elpd_diff``, ``dse``, ``stacking_weight``,
        the runs held out and the cuts; ``attrs["method"]`` says how it was scored.

    Raises
    ------
    InputError
        For fewer than two fits, fits of different runs, or a fit that kept no back-tests.
    """
    from bayes_scaling.calibration.population import load_population
    from bayes_scaling.calibration.update import predictive_log_density

    if len(fits) < 2:
        raise InputError("weights of laws need at least two fits")
    if len({f.runs.fingerprint() for f in fits.values()}) > 1:
        raise InputError("law weights compare fits of the same runs; these fits were made on different data")
    scored = {}
    for name, result in fits.items():
        structural = result.structural
        if structural is None or structural.backtests is None or not len(structural.backtests):
            raise InputError(f"fit {name!r} kept no back-tests of its own (fitted with discrepancy="
                             f"{result.config.get('discrepancy', 'none')!r}, without back-tests, with groups, or on "
                             f"runs too few to cut): refit it with back-tests (the default) to weight laws by their "
                             f"forecasts")
        errors = structural.backtests
        population = load_population(result.law.name, result.likelihood.name, window=result.config.get("window"))
        density = predictive_log_density(population, errors)
        scored[name] = pd.Series(density, index=pd.MultiIndex.from_arrays([errors["cut"], errors["run"]]))
    matrix = pd.concat(scored, axis=1, join="inner")
    if matrix.empty:
        raise InputError("the fits' back-tests share no held-out run: their laws were cut at different budgets")
    values = matrix.to_numpy()
    names = list(matrix.columns)
    best = int(np.argmax(values.sum(axis=0)))
    diff = values - values[:, [best]]
    table = pd.DataFrame({"elpd_lfo": values.sum(axis=0),
                          "se": values.std(axis=0, ddof=1) * np.sqrt(values.shape[0]),
                          "elpd_diff": diff.sum(axis=0), "dse": diff.std(axis=0, ddof=1) * np.sqrt(values.shape[0]),
                          "stacking_weight": stacking_weights(values),
                          "held_out": values.shape[0],
                          "cuts": matrix.index.get_level_values(0).nunique()}, index=pd.Index(names, name="model"))
    table.attrs["method"] = ("approximate leave-future-out: the fits' own back-tests below compute cuts, scored "
                             "with the population's structural error")
    return table.sort_values("elpd_lfo", ascending=False)

