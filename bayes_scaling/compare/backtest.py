"""Back-tests of the default intervals: fit below compute cuts and score the runs above, for
Bayesian fits and the classical baseline; the report's extrapolation check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.calibration.rolling import extrapolation_cuts
from bayes_scaling.compare.classical import huber_fit
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.fitting import cached_fit
from bayes_scaling.posterior.fit_result import Fit
from bayes_scaling.posterior.law_only import min_train_runs
from bayes_scaling.posterior.structural import DISCREPANCIES, LEARNING
from bayes_scaling.scoring import score


def backtest(runs: RunTable, *, laws: Sequence[str], likelihoods: Sequence[str] = ("student-t",),
             cuts: Sequence[float] | None = None, split_column: str | None = None, classical: bool = True,
             bootstrap: int = 50, cache_dir: str | os.PathLike | None = None, settings: dict[str, Any] | None = None,
             progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Fit on runs with C ≤ cut, score the runs above; one row per (model, cut).

    The default cuts (:func:`~bayes_scaling.calibration.rolling.extrapolation_cuts`) sit 0.25–2 decades of
    compute below the largest run and always leave runs to fit and to score.  Bayesian
    forecasts include each fit's structural error; ``lpd`` is the law-only predictive density.

    With ``split_column`` (a boolean-like column, true = held out) that split is used instead
    of compute cuts.  ``extrapolation`` is log10 of the held-out runs' median C over the
    largest training C: how far beyond the data the predictions go.

    Parameters
    ----------
    runs
        The runs to split.
    laws, likelihoods
        The Bayesian models to back-test (every combination).
    cuts
        Compute cuts in FLOP (default: :func:`~bayes_scaling.calibration.rolling.extrapolation_cuts`).
    split_column
        A boolean-like column of ``runs`` that marks the runs to hold out, instead of cuts.
    classical
        Also back-test the classical Huber fit with bootstrap intervals.
    bootstrap
        Bootstrap refits of the classical fit.
    cache_dir
        The fit cache (None refits).
    settings
        :func:`~bayes_scaling.fit` options of the Bayesian fits.
    progress
        Called with a line per fit.

    Returns
    -------
    pandas.DataFrame
        One row per model and split: runs fitted and held out, ``extrapolation_decades``, coverage of
        the 50%, 80% and 95% intervals, ``crps``, ``lpd``, ``mae_pct`` and whether the fit was cached.
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


def backtest_check(fits: Mapping[str, Fit], *, draws: int = 2000, seed: int = 0) -> pd.DataFrame:
    """How each law's forecasts held up on these runs: the back-tests its fit kept (refits below
    compute cuts, forecasts of the runs above), scored with the population's structural error,
    as for a new dataset (the default rescales it by these same back-tests: scored on them, it
    would be judged on what it learned from).  The law-only predictive of each held-out run
    is taken as normal (median, robust sd); one row per law: held-out runs and cuts, the farthest
    distance, coverage of the 50% and 90% intervals, median 90% width and mean signed error (% of
    loss), mean CRPS.  Fits without kept back-tests are left out.

    Parameters
    ----------
    fits
        Fits by label (each with the back-tests a default fit keeps).
    draws
        Predictive draws per held-out run.
    seed
        Seed of those draws.

    Returns
    -------
    pandas.DataFrame
        One row per fit: ``held_out``, ``cuts``, ``max_decades``, ``coverage_50``, ``coverage_90``,
        ``width_90_pct``, ``bias_pct``, ``crps``; ``attrs["method"]`` says how it was scored.
    """
    from bayes_scaling.calibration.population import load_population
    from bayes_scaling.calibration.update import predictive_error_draws
    from bayes_scaling.scoring import coverage, crps

    rows = []
    for name, result in fits.items():
        structural = result.structural
        kept = None if structural is None else structural.backtests
        if kept is None or not len(kept):
            continue
        population = load_population(result.law.name, result.likelihood.name, window=result.config.get("window"))
        sim = predictive_error_draws(population, kept, draws=draws,
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

