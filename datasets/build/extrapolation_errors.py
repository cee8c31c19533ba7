"""Rebuild the meta-analysis of extrapolation errors that bayes_scaling's structural-error
model learns from (datasets ``extrapolation-errors`` and ``extrapolation-population``).

Usage (remote datasets read from the dataset cache; offline, point it at shared/data/remote)::

    BAYES_SCALING_DATA_DIR=../shared/data/remote python datasets/build/extrapolation_errors.py

For every calibration dataset and law: rolling-origin back-tests (fit the law, law only, below
compute cuts at C_max/10^d, d in bayes_scaling.calibration.rolling.DISTANCES; forecast the runs above), one
row per held-out run with its distance d, the error of the predictive median and the predictive
spread, ``kind = "outer"``, once for fits to every run (``window = "all"``) and once for
``fit(window="frontier")`` (``window = "frontier"``); and for each such cut, the back-tests *inside* its training runs,
made as a user's fit makes them (``kind = "inner"``, ``origin`` = the outer cut;
bayes_scaling.calibration.evaluate.nested_backtests) (datasets/extrapolation-errors.csv). Then the
hierarchical population of (b, τ, ω) across datasets, and of λ, how much larger the inner
back-tests' errors are than the forecasts' (bayes_scaling.calibration.population.fit_population), its
mean drift learned, 4,000 posterior draws per law and window, every other one kept (datasets/extrapolation-population.csv).

``epoch-chinchilla`` is another extraction of the ``chinchilla`` runs: only ``chinchilla``
enters the population (two copies of one dataset would count its evidence twice).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

import bayes_scaling as bs
from bayes_scaling.calibration.candidates import backtest_errors as dataset_errors
from bayes_scaling.calibration.evaluate import nested_backtests
from bayes_scaling.calibration.population import fit_population

DATASETS = ("chinchilla", "misfitting-final", "gadre-c4", "gadre-rpj", "gadre-rw", "gemstones")
LAWS = (("chinchilla", "student-t"),)
#: The training windows of the fits: every run ("all"), and ``window="frontier"`` (the default).
WINDOWS = {"all": None, "frontier": "frontier"}
SETTINGS = {"draws": 500, "tune": 1000, "chains": 4, "seed": 0}
HERE = Path(__file__).resolve().parent.parent


def backtest_errors(datasets=DATASETS, laws=LAWS, settings=SETTINGS, progress=print) -> pd.DataFrame:
    frames = []
    for law, likelihood in laws:
        for window_name, window in WINDOWS.items():
            fit_settings = settings | {"window": window}
            for name in datasets:
                pairs = nested_backtests(bs.load_dataset(name), law=law, likelihood=likelihood,
                                         settings=fit_settings, progress=progress)
                frames.append(dataset_errors(pairs, dataset=name).assign(law=law, likelihood=likelihood,
                                                                         window=window_name))
    columns = ["law", "likelihood", "window", "dataset", "kind", "origin", "cut", "c_ref", "n_train", "C", "d",
               "log_loss", "median", "error", "spread", "diagnostics_ok"]
    return pd.concat(frames, ignore_index=True)[columns]


def population_table(errors: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    frames = []
    for (law, likelihood, window), rows in errors.groupby(["law", "likelihood", "window"]):
        # the drift's direction is learned (μ_b): docs/design/structural-error.md says why
        pop = fit_population(rows, draws=1000, tune=2000, chains=4, seed=seed, shared_direction=True)
        print(f"population {law} / {likelihood} / {window}: {pop.attrs['diagnostics']['summary']}")
        # every other draw: a fit's update costs time in proportion to the rows, and neighbouring
        # draws are correlated (bulk ESS ~800 of 4,000), so 2,000 rows keep nearly all the information
        kept = pop.iloc[::2].reset_index(drop=True)
        frames.append(kept.assign(law=law, likelihood=likelihood, window=window,
                                  datasets=" ".join(pop.attrs["datasets"]), draw=range(len(kept))))
    return pd.concat(frames, ignore_index=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the two CSV files (default datasets/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)  # before the 80 s of fits, not after
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    errors = backtest_errors()
    population = population_table(errors)
    for frame, name in ((errors, "extrapolation-errors.csv"), (population, "extrapolation-population.csv")):
        tmp = args.out / f".{name}.tmp"
        frame.to_csv(tmp, index=False, float_format="%.6g")
        tmp.replace(args.out / name)
    print(f"{len(errors)} held-out runs from {errors.groupby(['dataset', 'kind', 'origin', 'cut']).ngroups} "
          f"back-tests ({(errors['kind'] == 'inner').sum()} runs of inner ones); "
          f"{len(population)} population draws; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
