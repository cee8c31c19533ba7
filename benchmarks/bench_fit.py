"""Benchmark: fitting the Chinchilla law (Student-t) to the chinchilla dataset.

    python benchmarks/bench_fit.py [--repeats 3] [--baseline-repeats 1]

Runs, in one process:

* ours — ``bayes_scaling.fitting`` (centred parametrization, nutpie with low-rank mass
  matrix adaptation), ``--repeats`` times; the first run may pay numba's per-process
  start-up, later runs have a warm compile cache;
* the baseline — the same law, likelihood and priors on E, α, β written the
  straightforward way in PyMC (amplitudes sampled directly against raw log N and log D)
  and sampled with PyMC's NUTS.

Both use 4 chains × (1000 tune + 1000 draws) on the machine's cores (2 here).  Prints
compile and sampling wall times, the minimum bulk ESS over E, A, B, α, β, ESS per
second, and the ratios of ours to the baseline (medians over repeats).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np

PARAMS = ["E", "A", "B", "alpha", "beta"]
SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4}


def min_ess(tree) -> float:
    from arviz_stats import ess as effective_sample_size

    ess = effective_sample_size(tree["posterior"].to_dataset(), var_names=PARAMS, method="bulk")
    return float(min(float(ess[p]) for p in PARAMS))


def run_ours(seed: int, discrepancy: str = "none") -> dict:
    from bayes_scaling.fitting import fit

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit("chinchilla", law="chinchilla", likelihood="student-t", seed=seed, discrepancy=discrepancy,
                     **SETTINGS)
    wall = time.perf_counter() - start
    return {"compile_s": result.timing["compile_s"], "sample_s": result.timing["sample_s"], "wall_s": wall,
            "min_ess_bulk": min_ess(result.idata), "divergences": result.diagnostics.divergences}


def run_baseline(seed: int) -> dict:
    import pymc as pm
    import pytensor.tensor as pt

    from bayes_scaling import load_dataset

    runs = load_dataset("chinchilla")
    log_n, log_d, y = np.log(runs.N), np.log(runs.D), np.log(runs.loss)
    start = time.perf_counter()
    with pm.Model():
        E = pm.LogNormal("E", mu=np.log(0.6 * runs.loss.min()), sigma=0.5)
        A = pm.LogNormal("A", mu=np.log(100.0), sigma=3.0)
        B = pm.LogNormal("B", mu=np.log(100.0), sigma=3.0)
        alpha = pm.LogNormal("alpha", mu=np.log(0.3), sigma=1.0)
        beta = pm.LogNormal("beta", mu=np.log(0.3), sigma=1.0)
        mu = pt.logaddexp(pt.logaddexp(pt.log(E), pt.log(A) - alpha * log_n), pt.log(B) - beta * log_d)
        sigma = pm.HalfNormal("sigma", 0.1)
        nu = pm.Gamma("nu", 2.0, 0.1)
        pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(random_seed=seed, progressbar=False, compute_convergence_checks=False,
                              cores=2, nuts_sampler="pymc", **SETTINGS)
    wall = time.perf_counter() - start
    return {"compile_s": float("nan"), "sample_s": wall, "wall_s": wall, "min_ess_bulk": min_ess(idata),
            "divergences": int(idata["sample_stats"]["diverging"].values.sum())}


def describe(label: str, rows: list[dict]) -> dict:
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["ess_per_s"] = med["min_ess_bulk"] / med["wall_s"]
    print(f"{label}: {len(rows)} runs")
    for i, r in enumerate(rows):
        print(f"  run {i + 1}: compile {r['compile_s']:.1f} s, sampling {r['sample_s']:.1f} s, wall {r['wall_s']:.1f} s, "
              f"min ESS_bulk {r['min_ess_bulk']:.0f}, divergences {r['divergences']}")
    print(f"  median: compile {med['compile_s']:.1f} s, sampling {med['sample_s']:.1f} s, wall {med['wall_s']:.1f} s, "
          f"min ESS_bulk {med['min_ess_bulk']:.0f}, ESS/s {med['ess_per_s']:.0f}")
    return med


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (default 3)")
    parser.add_argument("--baseline-repeats", type=int, default=1,
                        help="runs of the baseline (default 1; about 5 minutes each; 0 skips it)")
    parser.add_argument("--discrepancy", default="none", choices=("none", "population", "calibrated"),
                        help="structural error of our fits (default none: the sampler alone; calibrated adds "
                             "the internal back-test refits)")
    args = parser.parse_args(argv)

    ours = [run_ours(seed, args.discrepancy) for seed in range(args.repeats)]
    warm = ours[1:] or ours
    base = [run_baseline(seed) for seed in range(args.baseline_repeats)]
    m_all = describe("ours (all runs)", ours)
    m_warm = describe("ours (warm compile cache: runs after the first)", warm)
    if not base:
        print("baseline skipped (--baseline-repeats 0): no ratios")
        return 0
    m_base = describe("baseline (raw log N, log D; PyMC NUTS)", base)
    print("ratios (baseline / ours, medians):")
    for label, m in (("all runs", m_all), ("warm", m_warm)):
        print(f"  {label}: wall time {m_base['wall_s'] / m['wall_s']:.1f}x faster, "
              f"ESS/s {m['ess_per_s'] / m_base['ess_per_s']:.1f}x higher")
    targets = {"min ESS_bulk >= 1000": m_warm["min_ess_bulk"] >= 1000, "warm wall <= 15 s": m_warm["wall_s"] <= 15,
               ">= 25x faster than baseline": m_base["wall_s"] / m_warm["wall_s"] >= 25}
    for name, ok in targets.items():
        print(f"  target {name}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
