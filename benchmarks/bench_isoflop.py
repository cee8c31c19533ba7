"""Benchmark: isoFLOP analyses on ladders simulated from a known law (issue 35).

    python benchmarks/bench_isoflop.py [--replicates 10] [--jobs 2]

For grids as labs lay them out — centred on every optimum; centred on a guess that scales as C^0.6
while the truth is C^0.45 (the grid drifts off the optimum); shifted 0.3 decades towards larger
models, with 5 and 9 sizes — it fits the Bayesian model (parabola and asymmetric profiles) and the
classical per-budget parabola fit, and prints per design and method: the mean error of the exponent
a and its spread over replicates, how often the 90% interval of a holds the truth, and the same for
N* and L* at 10²³ FLOP (two decades beyond the largest budget).  The oracle is the true law's own
form (the Chinchilla law, fitted by ``bs.fit`` to every run without a structural error): unbiased
by construction, its interval widths are what the isoFLOP model's are compared with.  Writes the replicates to
``benchmarks/output/isoflop.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

HERE = Path(__file__).resolve().parent
TARGET = 1e23
DESIGNS = {
    "centred, 7 sizes": {"sizes": 7},
    "drifting (guess C^0.6), 7 sizes": {"sizes": 7, "guess_exponent": 0.6},
    "shifted +0.3 dec, 5 sizes": {"sizes": 5, "offset": 0.3},
    "shifted +0.3 dec, 9 sizes": {"sizes": 9, "offset": 0.3},
    "wide (±1 dec), drifting, 7 sizes": {"sizes": 7, "half_width": 1.0, "guess_exponent": 0.6},
    "wide (±1 dec), shifted +0.3 dec, noise 0.01": {"sizes": 7, "half_width": 1.0, "offset": 0.3, "noise": 0.01},
}


def replicate(design: str, seed: int) -> list[dict]:
    from bayes_scaling.data.budgets import budget_labels
    from bayes_scaling.isoflop.classical import naive_isoflop
    from bayes_scaling.isoflop.model import fit_isoflop
    from bayes_scaling.isoflop.simulate import HOFFMANN, simulate_ladder

    warnings.simplefilter("ignore")
    law = HOFFMANN
    runs = simulate_ladder(law, seed=seed, **DESIGNS[design])
    truth = {"a": law.a, "N": float(law.n_star(TARGET)), "loss": float(law.loss_star(TARGET))}
    rows = []
    labels, budgets = budget_labels(runs["C"])
    naive = naive_isoflop(runs.assign(budget=labels), budgets)
    rows.append({"design": design, "seed": seed, "method": "classical parabolas", "a": naive["a"],
                 "a_error": naive["a"] - truth["a"],
                 "N_log_error": naive["intercept"] + naive["a"] * np.log10(TARGET) - np.log10(truth["N"])})
    import bayes_scaling as bs
    from bayes_scaling.data.reading import read_runs
    from bayes_scaling.forecast.forecaster import Forecaster

    start = time.perf_counter()
    oracle = Forecaster(bs.fit(read_runs(runs), window=None, discrepancy="none", draws=500, tune=500, chains=2,
                               seed=seed))
    a = oracle.allocation_exponents()["a"]
    n = oracle.allocation(TARGET)["N"][:, 0]
    lo_a, hi_a = np.quantile(a, [0.05, 0.95])
    lo_n, med_n, hi_n = np.quantile(n, [0.05, 0.5, 0.95])
    rows.append({"design": design, "seed": seed, "method": "oracle: the true law's form", "a": float(np.median(a)),
                 "a_error": float(np.median(a)) - truth["a"], "a_covered": bool(lo_a < truth["a"] < hi_a),
                 "a_width": hi_a - lo_a, "N_log_error": float(np.log10(med_n / truth["N"])),
                 "N_covered": bool(lo_n < truth["N"] < hi_n), "N_width_decades": float(np.log10(hi_n / lo_n)),
                 "seconds": time.perf_counter() - start})
    for shape in ("parabola", "asymmetric"):
        start = time.perf_counter()
        iso = fit_isoflop(runs, shape=shape, draws=500, tune=500, chains=2, seed=seed)
        a = iso.exponents["a"]
        opt = iso.optimum(TARGET, seed=seed)
        lo_a, hi_a = np.quantile(a, [0.05, 0.95])
        lo_n, med_n, hi_n = np.quantile(opt["N"][:, 0], [0.05, 0.5, 0.95])
        lo_l, med_l, hi_l = np.quantile(opt["loss"][:, 0], [0.05, 0.5, 0.95])
        rows.append({"design": design, "seed": seed, "method": f"Bayesian, {shape}", "a": float(np.median(a)),
                     "a_error": float(np.median(a)) - truth["a"], "a_covered": bool(lo_a < truth["a"] < hi_a),
                     "a_width": hi_a - lo_a, "N_log_error": float(np.log10(med_n / truth["N"])),
                     "N_covered": bool(lo_n < truth["N"] < hi_n), "N_width_decades": float(np.log10(hi_n / lo_n)),
                     "loss_error": med_l - truth["loss"],
                     "loss_covered": bool(lo_l < truth["loss"] < hi_l), "seconds": time.perf_counter() - start,
                     "rhat_max": float(iso.diagnostics.rhat_max)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=10)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS), metavar="DESIGN",
                   help="the grids to simulate (default: all)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    tasks = [(d, s) for d in args.designs for s in range(args.replicates)]
    results = Parallel(n_jobs=args.jobs, verbose=5)(delayed(replicate)(d, s) for d, s in tasks)
    table = pd.DataFrame([row for rows in results for row in rows])
    out = HERE / "output"
    out.mkdir(exist_ok=True)
    table.to_csv(out / "isoflop.csv", index=False)
    summary = table.groupby(["design", "method"], sort=False).agg(
        a_mean_error=("a_error", "mean"), a_error_sd=("a_error", "std"), a_covered=("a_covered", "mean"),
        a_width=("a_width", "median"), N_mean_log_error=("N_log_error", "mean"), N_covered=("N_covered", "mean"),
        N_width=("N_width_decades", "median"), loss_covered=("loss_covered", "mean"), seconds=("seconds", "median"))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"{len(tasks)} replicates in {time.perf_counter() - start:.0f} s; true a = 0.4516; N* and L* at {TARGET:.0e} FLOP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
