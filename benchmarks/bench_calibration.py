"""Benchmark: are forecast intervals honest when they extrapolate?

    BAYES_SCALING_DATA_DIR=../shared/data/remote python benchmarks/bench_calibration.py [--quick]

Part 1, real runs, leave one dataset out: for each dataset (chinchilla, its independent
extraction epoch-chinchilla, misfitting-final, gadre-c4, gadre-rpj, gadre-rw), the
structural-error population — λ, how much more a fit's inner back-tests err than its forecasts,
included — is learned from the back-tests of the *other* datasets
(datasets/build/extrapolation_errors.py made them; a dataset's copy is left out with it);
then rolling-origin back-tests: fit the Chinchilla law (Student-t) below each compute cut,
learn the structural error from the population and from refits below cuts *of the training
runs*, forecast the runs above.  Four forecasts of each held-out run are scored: law only
(``none``, what bayes_scaling did before), the population rescaled by those inner back-tests
(``scaled``, the default: the size of the drift learned, not its direction), the population
alone (``population``), and the population updated by the inner back-tests, direction
included (``calibrated``).  Printed: coverage of the 50/80/90/95% intervals (with a Wilson
interval of the 90% coverage), median 90% width in % of loss, CRPS (log loss) and mean signed
error, per dataset, pooled, and by distance beyond the data; and the mean CRPS of the default
and of the population alone minus law only's on the same runs, with a bootstrap interval that
resamples whole back-tests.

Part 2, simulated runs (nothing misspecified): the law itself generates runs with 2% and with
0.5% noise on a grid over four decades of compute; the same rolling evaluation with the full
population. A structural-error model must not wreck forecasts where the law is true.

``--window DECADES``: every fit — each back-test's and each of its inner back-tests' — uses only
the runs within DECADES below its own cut (``fit(window=)``); the populations stay those learned
from fits to every run.  Does fitting near the frontier help once the structural error is added?

Writes the per-run scores to benchmarks/output/calibration_scores.csv (analyses/04 reads it;
with ``--window``, calibration_scores_window.csv).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling.calibration.evaluate import (
    by_distance,
    coverage_table,
    crps_difference,
    evaluate_dataset,
    leave_one_dataset_out,
)
from bayes_scaling.calibration.population import load_population
from bayes_scaling.laws.registry import get_law

DATASETS = ("chinchilla", "epoch-chinchilla", "misfitting-final", "gadre-c4", "gadre-rpj", "gadre-rw")
COPIES = {"epoch-chinchilla": "chinchilla"}
OUT = Path(__file__).resolve().parent / "output"
#: Noise of the simulated runs: 2%, and 0.5% (about the law-only predictive sd of chinchilla's fits,
#: where a structural error's width counts most against the law's own).
SIMULATION_NOISE = (0.02, 0.005)


def simulated_runs(seed: int, noise: float = 0.02) -> bs.RunTable:
    """Hoffmann et al.'s Approach-3 law, log-normal noise of sd ``noise``, 10 sizes × 5 tokens per parameter."""
    truth = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    rng = np.random.default_rng(seed)
    n = np.geomspace(3e7, 1e10, 10)
    tpp = np.geomspace(5, 80, 5)
    nn, kk = np.meshgrid(n, tpp)
    frame = pd.DataFrame({"N": nn.ravel(), "D": (nn * kk).ravel()})
    mean = get_law("chinchilla").loss({"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()}, truth)
    frame["loss"] = mean * np.exp(rng.normal(0, noise, len(frame)))
    return bs.read_runs(frame, name=f"simulated chinchilla law ({noise:.1%} noise, seed {seed})")


def wilson(coverage: pd.Series, runs: pd.Series, z: float = 1.96) -> pd.Series:
    """A 95% Wilson interval of each coverage from its number of held-out runs (as if independent:
    runs of one cut share a fitted law, so the true uncertainty is larger)."""
    centre = (coverage + z * z / (2 * runs)) / (1 + z * z / runs)
    half = z * np.sqrt(coverage * (1 - coverage) / runs + z * z / (4 * runs * runs)) / (1 + z * z / runs)
    return (centre - half).map("[{:.2f}, ".format) + (centre + half).map("{:.2f}]".format)


def show(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    table = table.assign(coverage_90_ci=wilson(table["coverage_90"], table["runs"]))
    print(table.round({"coverage_50": 2, "coverage_80": 2, "coverage_90": 2, "coverage_95": 2, "width_90_pct": 1,
                       "crps": 4, "bias_pct": 2}).to_string())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer draws (2 chains × 300)")
    parser.add_argument("--simulations", type=int, default=4, help="simulated datasets (default 4)")
    parser.add_argument("--window", type=float, default=None, metavar="DECADES",
                        help="fit only the runs within DECADES below each cut (default: every run)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    settings = {"draws": 300, "tune": 500, "chains": 2, "seed": 0} if args.quick else \
        {"draws": 500, "tune": 1000, "chains": 4, "seed": 0}
    if args.window is not None:
        settings["window"] = args.window
    start = time.perf_counter()
    errors = bs.load_dataset("extrapolation-errors")
    errors = errors[(errors["law"] == "chinchilla") & (errors["likelihood"] == "student-t")]
    datasets = {name: bs.load_dataset(name) for name in DATASETS}
    real = leave_one_dataset_out(datasets, errors, settings=settings, copies=COPIES, progress=None)
    print(f"part 1: {real.groupby(['dataset', 'cut']).ngroups} back-tests of {len(DATASETS)} datasets, "
          f"{(real['mode'] == 'none').sum()} held-out runs, {time.perf_counter() - start:.0f} s")
    for name, diag in real.attrs["populations"].items():
        print(f"  population without {name}: {diag['summary']}")
    show("coverage by dataset (leave one dataset out)", coverage_table(real))
    show("pooled over datasets (each run once)", coverage_table(real, by=("mode",)))
    show("by distance beyond the data (decades)", by_distance(real))
    for mode in ("scaled", "population"):
        diff = crps_difference(real, mode=mode)
        diff[["difference", "lo", "hi"]] *= 100
        print(f"\nCRPS x100 of {mode} minus law only, same runs (90% interval: back-tests resampled)")
        print(diff.round({"difference": 3, "lo": 3, "hi": 3, "relative": 3}).to_string())

    population = load_population("chinchilla", "student-t")
    sims = []
    for noise in SIMULATION_NOISE:
        sim = pd.concat([evaluate_dataset(simulated_runs(seed, noise), population=population, settings=settings)
                         for seed in range(args.simulations)], ignore_index=True)
        show(f"part 2: simulated from the law, {noise:.1%} noise ({args.simulations} datasets, pooled)",
             coverage_table(sim, by=("mode",)))
        widths = sim.groupby("mode")["width_90_pct"].median()
        print("  90% width / law only: " + ", ".join(f"{mode} {widths[mode] / widths['none']:.2f}x"
                                                    for mode in ("scaled", "population", "calibrated")))
        sims.append(sim)
    sim = pd.concat(sims, ignore_index=True)
    OUT.mkdir(exist_ok=True)
    out = OUT / ("calibration_scores.csv" if args.window is None else "calibration_scores_window.csv")
    pd.concat([real.assign(kind="real"), sim.assign(kind="simulated")]).to_csv(out, index=False)
    print(f"\nwrote {out}; total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
