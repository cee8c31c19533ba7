"""Benchmark: does fitting only the largest runs below a cut forecast better?  (``fit(window=)``)

    BAYES_SCALING_DATA_DIR=../shared/data/remote python benchmarks/bench_window.py

A law that is not exactly true is bent by its smallest runs where the form misses them, and
its forecast beyond the data inherits the bend.  For each bundled real dataset and each
rolling-origin cut (the cuts of ``bench_calibration``), the Chinchilla law (Student-t, law
only) is fitted to every run below the cut, and to the runs within 1.5 and 1.0 decades of the
cut (at least the 18 largest); the runs above the cut are scored: mean signed log error
(bias, %), mean CRPS of log loss, 90% coverage and median 90% width (% of loss).
epoch-chinchilla is left out: it is a second extraction of the chinchilla runs.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings

import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling.calibration.evaluate import score_runs
from bayes_scaling.calibration.rolling import extrapolation_cuts
from bayes_scaling.posterior.law_only import min_train_runs, training_window

DATASETS = ("chinchilla", "misfitting-final", "gadre-c4", "gadre-rpj", "gadre-rw")
WINDOWS = (None, 1.5, 1.0)
SETTINGS = {"draws": 500, "tune": 1000, "chains": 4, "seed": 0, "discrepancy": "none"}


def main() -> int:
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    start = time.perf_counter()
    rows = []
    min_runs = min_train_runs("chinchilla")
    for name in DATASETS:
        runs = bs.load_dataset(name)
        for cut in extrapolation_cuts(runs, min_train=min_runs):
            below = runs.subset(runs.C <= cut, label=f"C <= {cut:.3g}")
            test = runs.subset(runs.C > cut, label=f"C > {cut:.3g}")
            for window in WINDOWS:
                train = training_window(below, window, min_runs=min_runs)
                result = bs.fit(train, **SETTINGS)
                draws = result.predictive_log_draws(test, seed=[0, 11])
                scored = score_runs(draws, np.log(test.loss), np.log10(test.C / train.C.max()))
                rows.append(scored.assign(dataset=name, cut=cut, window="all runs" if window is None else
                                          f"{window:g} decades", n_train=len(train)))
    scores = pd.concat(rows, ignore_index=True)
    table = scores.groupby(["dataset", "window"], sort=False).agg(
        runs=("crps", "size"), fitted=("n_train", "mean"), bias_pct=("log_error", "mean"), crps=("crps", "mean"),
        coverage_90=("inside_90", "mean"), width_90_pct=("width_90_pct", "median"))
    table["bias_pct"] *= 100
    print("law only, rolling-origin cuts; one row per dataset and training window")
    print(table.round({"fitted": 0, "bias_pct": 2, "crps": 4, "coverage_90": 2, "width_90_pct": 1}).to_string())
    print(f"\n{len(scores) // len(WINDOWS)} held-out runs, {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
