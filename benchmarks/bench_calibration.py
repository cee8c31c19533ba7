"""Benchmark: are forecast intervals honest when they extrapolate?

    BAYES_SCALING_DATA_DIR=../shared/data/remote python benchmarks/bench_calibration.py [--quick]

Part 1, real runs, leave one dataset out, for every candidate way of forecasting
(:data:`bayes_scaling.calibration.candidates.CANDIDATES`: which runs the law is fitted to, whether
the population learns a drift direction shared by its datasets, what the fit's own back-tests do
to it).  For each dataset (chinchilla, its independent extraction epoch-chinchilla,
misfitting-final, gadre-c4, gadre-rpj, gadre-rw, gemstones): rolling-origin back-tests of the
Chinchilla law (Student-t) below compute cuts, each with back-tests inside its own training
runs, made once per training window; the structural-error population (λ and ρ included) is
learned from the *other* datasets' back-tests made the same way (a dataset's copy is left out
with it, and never enters a population); then every held-out run is forecast by each candidate
and scored.  Printed: coverage of the 50/80/90/95% intervals (with a Wilson interval of the
90% coverage), median 90% width in % of loss, CRPS (log loss) and mean signed error (observed −
median, %), pooled, at 0.5–1 decade, per dataset and by distance beyond the data; and the mean
CRPS of the default (``frontier, shared``) and of the law alone minus the default before it
(``scaled``) on the same runs, with a bootstrap interval that resamples whole back-tests.

Part 2, simulated runs (nothing misspecified): the law itself generates runs with 2% and with
0.5% noise on a grid over four decades of compute; the same rolling evaluation with the shipped
population and the default window. A structural-error model must not wreck forecasts where the
law is true.

``--candidates NAME …`` scores only those (and the default, the default before it and the law
alone); ``--quick`` draws less.

Writes the per-run scores to benchmarks/output/calibration_scores.csv (analyses/04 reads it).
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
from bayes_scaling.calibration.candidates import (
    CANDIDATES,
    DEFAULT,
    LAW_ONLY,
    PREVIOUS_DEFAULT,
    score_candidates,
    with_modes,
)
from bayes_scaling.calibration.evaluate import (
    by_distance,
    coverage_table,
    crps_difference,
    evaluate_dataset,
)
from bayes_scaling.calibration.population import load_population
from bayes_scaling.laws.registry import get_law

DATASETS = ("chinchilla", "epoch-chinchilla", "misfitting-final", "gadre-c4", "gadre-rpj", "gadre-rw", "gemstones")
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
    parser.add_argument("--quick", action="store_true", help="fewer draws (2 chains × 300; populations 2 × 500)")
    parser.add_argument("--simulations", type=int, default=4, help="simulated datasets (default 4)")
    parser.add_argument("--candidates", nargs="+", metavar="NAME", choices=[c.name for c in CANDIDATES],
                        help="score only these candidates (default: all)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    settings = {"draws": 300, "tune": 500, "chains": 2, "seed": 0} if args.quick else \
        {"draws": 500, "tune": 1000, "chains": 4, "seed": 0}
    population_settings = {"draws": 500, "tune": 1000, "chains": 2} if args.quick else None
    candidates = [c for c in CANDIDATES if args.candidates is None or c.name in args.candidates
                  or c in (DEFAULT, PREVIOUS_DEFAULT, LAW_ONLY)]
    start = time.perf_counter()
    datasets = {name: bs.load_dataset(name) for name in DATASETS}
    real = score_candidates(datasets, candidates=candidates, settings=settings, copies=COPIES,
                            population_settings=population_settings,
                            progress=lambda line: print(f"  [{time.perf_counter() - start:5.0f} s] {line}", flush=True))
    print(f"part 1: {real.groupby(['dataset', 'cut']).ngroups} back-tests of {len(DATASETS)} datasets, "
          f"{(real['candidate'] == LAW_ONLY.name).sum()} held-out runs, {len(candidates)} candidates, "
          f"{time.perf_counter() - start:.0f} s")
    OUT.mkdir(exist_ok=True)
    real.assign(kind="real").to_csv(OUT / "calibration_scores.csv", index=False)  # part 2 adds to it
    show("pooled over datasets (each run once), every candidate", coverage_table(real, by=("candidate",)))
    show("at 0.5-1 decade beyond the data, every candidate",
         coverage_table(real[(real["d"] > 0.5) & (real["d"] <= 1.0)], by=("candidate",)))
    show("by dataset, every candidate", coverage_table(real, by=("dataset", "candidate")))
    chosen = with_modes(real)
    show(f"by distance beyond the data (decades): shared = {DEFAULT.name!r} (the default), scaled = "
         f"{PREVIOUS_DEFAULT.name!r} (the default before), none = the law alone", by_distance(chosen))
    for mode in (DEFAULT.name, LAW_ONLY.name):
        diff = crps_difference(real.rename(columns={"candidate": "mode"}), mode=mode, baseline=PREVIOUS_DEFAULT.name)
        diff[["difference", "lo", "hi"]] *= 100
        print(f"\nCRPS x100 of {mode!r} minus {PREVIOUS_DEFAULT.name!r}, same runs (90% interval: back-tests resampled)")
        print(diff.round({"difference": 3, "lo": 3, "hi": 3, "relative": 3}).to_string())

    sims = []
    for noise in SIMULATION_NOISE:
        sim = pd.concat([evaluate_dataset(simulated_runs(seed, noise), population=load_population(
            "chinchilla", "student-t", window="frontier"), settings=settings | {"window": "frontier"},
            modes=("none", "shared", "scaled")) for seed in range(args.simulations)], ignore_index=True)
        show(f"part 2: simulated from the law, {noise:.1%} noise ({args.simulations} datasets, pooled; "
             "the shipped population, window='frontier')", coverage_table(sim, by=("mode",)))
        widths = sim.groupby("mode")["width_90_pct"].median()
        print("  90% width / law only: " + ", ".join(f"{mode} {widths[mode] / widths['none']:.2f}x"
                                                    for mode in ("shared", "scaled")))
        sims.append(sim)
    sim = pd.concat(sims, ignore_index=True)
    out = OUT / "calibration_scores.csv"
    pd.concat([real.assign(kind="real"), sim.assign(kind="simulated")]).to_csv(out, index=False)
    print(f"\nwrote {out}; total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
