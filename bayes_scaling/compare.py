"""Comparing competing scaling fits: LOO with stacking weights, and extrapolation back-tests.

In-sample fit is not the question; extrapolation is.  :func:`loo_table` ranks fits of the
same runs by PSIS-LOO expected log predictive density (ArviZ), with stacking weights and
the Pareto-k diagnostics that say when LOO itself is unreliable.  :func:`backtest` fits
every model on the runs below a compute cut and scores its predictions of the runs above
it — interval coverage, CRPS, log predictive density, median absolute error — for several
cuts, so skill can be read against extrapolation distance.  The classical Huber baseline
goes through the same scoring.

Fits are cached (``cache_dir``, :mod:`bayes_scaling.cache`): a re-run loads fits already
computed for the same law, likelihood, data, priors and settings instead of sampling again.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .classical import huber_fit
from .discrepancy import DISCREPANCIES, LEARNING
from .errors import InputError
from .cache import cached_fit
from .fit import Fit
from .rolling import extrapolation_cuts, min_train_runs
from .runs import RunTable
from .scoring import score

__all__ = ["loo_table", "lfo_table", "lfo_weights", "backtest_check", "stacking_weights", "kde_log_density", "backtest", "PARETO_K_BAD"]

log = logging.getLogger(__name__)

#: Pareto k above this makes the PSIS estimate for that run unreliable (Vehtari et al. 2024).
PARETO_K_BAD = 0.7


def loo_table(fits: dict[str, Fit]) -> pd.DataFrame:
    """PSIS-LOO comparison with stacking weights and Pareto-k counts, best model first.

    PSIS-LOO (ArviZ 1, ``arviz_stats``) estimates how well each fit predicts a run left out
    of the data it was fitted to: interpolation, not extrapolation.
    """
    from arviz_stats import compare, loo

    if len(fits) < 2:
        raise InputError("LOO comparison needs at least two fits")
    fingerprints = {f.runs.fingerprint() for f in fits.values()}
    if len(fingerprints) > 1:
        raise InputError("LOO compares fits of the same runs; these fits were made on different data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Pareto-k warning is reported as columns below
        elpd = {name: loo(f.idata, pointwise=True) for name, f in fits.items()}
        table = compare(elpd, method="stacking", round_to="none")
    ks = {name: np.asarray(e.pareto_k) for name, e in elpd.items()}
    out = pd.DataFrame({
        "rank": table["rank"].astype(int), "elpd_loo": table["elpd"], "se": table["se"],
        "elpd_diff": table["elpd_diff"], "dse": table["dse"], "p_loo": table["p"],
        "stacking_weight": table["weight"],
        "pareto_k_max": [float(ks[name].max()) for name in table.index],
        "n_pareto_k_bad": [int(np.sum(ks[name] > PARETO_K_BAD)) for name in table.index],
        "diagnostics_ok": [fits[name].diagnostics.ok for name in table.index],
    }, index=table.index)
    out.index.name = "model"
    bad = out[out["n_pareto_k_bad"] > 0]
    if len(bad):
        message = (f"Pareto k > {PARETO_K_BAD} for some runs in {', '.join(bad.index)}: PSIS-LOO is unreliable "
                   f"there (influential runs, often outliers or the edges of the data). Trust the back-tests, "
                   f"or refit with those runs left out.")
        log.warning(message)
        out.attrs["warning"] = message
    return out


def backtest(runs: RunTable, *, laws: Sequence[str], likelihoods: Sequence[str] = ("student-t",),
             cuts: Sequence[float] | None = None, split_column: str | None = None, classical: bool = True,
             bootstrap: int = 50, cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None,
             progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Fit on runs with C ≤ cut, score the runs above; one row per (model, cut).

    The default cuts (:func:`~bayes_scaling.rolling.extrapolation_cuts`) sit 0.25–2 decades of
    compute below the largest run and always leave runs to fit and to score.  Bayesian
    forecasts include each fit's structural error; ``lpd`` is the law-only predictive density.

    With ``split_column`` (a boolean-like column, true = held out) that split is used instead
    of compute cuts.  ``extrapolation`` is log10 of the held-out runs' median C over the
    largest training C: how far beyond the data the predictions go.
    """
    settings = dict(settings or {})
    if settings.get("discrepancy", DISCREPANCIES[0]) not in LEARNING:
        # A back-test fit is scored with its structural error; only the learning modes need
        # back-tests of its own for that, so the others skip those refits (5 per fit).
        settings.setdefault("backtests", False)
    if split_column is not None:
        if split_column not in runs.data.columns:
            raise InputError(f"{runs.source} has no column {split_column!r} to split on")
        held = runs.data[split_column].astype(bool).to_numpy()
        splits = [(f"column {split_column}", ~held)]
    else:
        cuts = list(cuts) if cuts is not None else extrapolation_cuts(
            runs, min_train=max(min_train_runs(law) for law in laws))
        splits = [(f"C <= {c:.3g}", runs.C <= c) for c in sorted(cuts)]
    models = [(law, lik) for law in laws for lik in likelihoods]
    rows = []
    total = len(splits) * (len(models) + int(classical))
    done = 0
    for label, train_mask in splits:
        train, test = runs.subset(train_mask, label="train"), runs.subset(~train_mask, label="test")
        if len(test) == 0 or len(train) < 8:
            raise InputError(f"split {label} leaves {len(train)} runs to fit and {len(test)} to score")
        extrapolation = float(np.log10(np.median(test.C) / train.C.max()))
        y = np.log(test.loss)
        base = {"split": label, "n_train": len(train), "n_test": len(test), "extrapolation_decades": extrapolation}
        for law, lik in models:
            result, cached = cached_fit(train, law=law, likelihood=lik, cache_dir=cache_dir, settings=settings)
            draws = result.predictive_log_draws(test, seed=settings.get("seed", 0))
            rows.append({"model": f"{law} / {lik}", "kind": "Bayesian", **base,
                         **score(draws, y, result.pointwise_log_likelihood(test)),
                         "diagnostics_ok": result.diagnostics.ok, "cached": cached})
            done += 1
            if progress:
                progress(f"[{done}/{total}] {label}: {law} / {lik}{' (cached)' if cached else ''}")
        if classical:
            for law in laws:
                baseline = huber_fit(train, law=law, bootstrap=bootstrap, seed=settings.get("seed", 0))
                draws = baseline.predictive_log_draws(test, seed=settings.get("seed", 0))
                rows.append({"model": f"{law} / Huber point fit + bootstrap", "kind": "classical", **base,
                             **score(draws, y, baseline.pointwise_log_likelihood(test)),
                             "diagnostics_ok": True, "cached": False})
            done += 1
            if progress:
                progress(f"[{done}/{total}] {label}: classical Huber baseline")
    return pd.DataFrame(rows)


def kde_log_density(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """log predictive density of each observation from its draws (Gaussian kernel, Silverman's bandwidth).

    ``draws`` (S, n) of log loss, ``observed`` (n,); works for predictive draws of any form
    (a law's noise plus a structural error has no closed-form density).
    """
    from scipy.special import logsumexp

    spread = np.minimum(draws.std(axis=0), (np.quantile(draws, 0.75, axis=0) - np.quantile(draws, 0.25, axis=0)) / 1.34)
    bandwidth = np.maximum(0.9 * spread * draws.shape[0] ** -0.2, 1e-6)
    z = (observed[None, :] - draws) / bandwidth[None, :]
    return logsumexp(-0.5 * z * z, axis=0) - np.log(draws.shape[0] * bandwidth * np.sqrt(2 * np.pi))


def stacking_weights(log_density: np.ndarray) -> np.ndarray:
    """Weights on the simplex maximising Σ_i log Σ_k w_k p_k(y_i) (Yao et al. 2018); ``log_density`` (runs, models)."""
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

    Exact LFO (refits below each cut, :func:`~bayes_scaling.rolling.rolling_backtest`), every law on
    the same cuts; each held-out run is scored by the density of its forecast — the law plus the
    population's structural error — and stacking weights are computed from those densities.
    Unlike PSIS-LOO (which measures interpolation), this ranks laws by extrapolation.
    """
    from .discrepancy import load_population, update
    from .rolling import rolling_backtest
    from .scoring import crps

    cuts = extrapolation_cuts(runs, min_train=max(min_train_runs(law) for law in laws))
    densities, rows = {}, []
    for law in laws:
        held = rolling_backtest(runs, law=law, likelihood=likelihood, cuts=cuts, settings=settings, progress=progress)
        population = load_population(law, likelihood)
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
    (:func:`~bayes_scaling.discrepancy.predictive_log_density`) — on the runs and cuts that every
    law was back-tested on; stacking weights (Yao et al. 2018) follow from those densities.
    Approximate (one normal per law-only forecast) but free: no refit.  :func:`lfo_table` is the
    exact version with new refits.  Best law first.
    """
    from .discrepancy import load_population, predictive_log_density

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
        density = predictive_log_density(load_population(result.law.name, result.likelihood.name), errors)
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


def backtest_check(fits: Mapping[str, Fit], *, draws: int = 2000, seed: int = 0) -> pd.DataFrame:
    """How each law's forecasts held up on these runs: the back-tests its fit kept (refits below
    compute cuts, forecasts of the runs above), scored with the population's structural error,
    as for a new dataset (the default rescales it by these same back-tests: scored on them, it
    would be judged on what it learned from).  The law-only predictive of each held-out run
    is taken as normal (median, robust sd); one row per law: held-out runs and cuts, the farthest
    distance, coverage of the 50% and 90% intervals, median 90% width and mean signed error (% of
    loss), mean CRPS.  Fits without kept back-tests are left out."""
    from .discrepancy import load_population, predictive_error_draws
    from .scoring import coverage, crps

    rows = []
    for name, result in fits.items():
        structural = result.structural
        kept = None if structural is None else structural.backtests
        if kept is None or not len(kept):
            continue
        sim = predictive_error_draws(load_population(result.law.name, result.likelihood.name), kept, draws=draws,
                                     seed=seed)
        observed = kept["error"].to_numpy(float)
        lo, hi = np.quantile(sim, [0.05, 0.95], axis=0)
        rows.append({"model": name, "held_out": int(kept.shape[0]), "cuts": int(kept["cut"].nunique()),
                     "max_decades": float(kept["d"].max()),
                     "coverage_50": coverage(sim, observed, 0.5), "coverage_90": coverage(sim, observed, 0.9),
                     "width_90_pct": 100 * float(np.median(np.exp(hi) - np.exp(lo))),
                     "bias_pct": 100 * float(np.mean(observed)), "crps": float(np.mean(crps(sim, observed)))})
    table = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()
    table.attrs["method"] = ("each fit's own back-tests (fit below compute cuts of these runs, forecast the runs "
                             "above), scored with the population's structural error, as for a new dataset")
    return table
