"""Benchmark: isoFLOP analyses on ladders simulated from a known law (issue 35).

    python benchmarks/bench_isoflop.py [--replicates 10] [--jobs 2]

For grids as labs lay them out — centred on every optimum; centred on a guess that scales as C^0.6
while the truth is C^0.45 (the grid drifts off the optimum); shifted 0.3 decades towards larger
models, with 5 and 9 sizes — it fits the Bayesian model (parabola and asymmetric profiles) and the
classical per-budget parabola fit, and prints per design and method: the mean error of the exponent
a and its spread over replicates, how often the 90% interval of a holds the truth, and the same for
N* and L* at 10²³ FLOP (two decades beyond the largest budget).  The oracle is the true law's own
form (the Chinchilla law, fitted by ``bs.fit`` to every run without a structural error): unbiased
by construction, its interval widths are what the isoFLOP model's are compared with.  A sizes × tokens
grid is read as compute slices; learning curves (8 sizes × 5 run lengths) by Approach 1, the envelope
(:mod:`bayes_scaling.isoflop.envelope`; the classical method is then the envelope's minima, and the
oracle reads each run's last checkpoint).  Writes the replicates to ``benchmarks/output/isoflop.csv``.
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
#: Forecast budgets: one and two decades beyond the largest simulated budget (10²¹ FLOP).
TARGETS = (1e22, 1e23)
ORACLE = "oracle: the true law's form"
DESIGNS = {
    "centred, 7 sizes": {"sizes": 7},
    "drifting (guess C^0.6), 7 sizes": {"sizes": 7, "guess_exponent": 0.6},
    "shifted +0.3 dec, 5 sizes": {"sizes": 5, "offset": 0.3},
    "shifted +0.3 dec, 9 sizes": {"sizes": 9, "offset": 0.3},
    "wide (±1 dec), drifting, 7 sizes": {"sizes": 7, "half_width": 1.0, "guess_exponent": 0.6},
    "wide (±1 dec), shifted +0.3 dec, noise 0.01": {"sizes": 7, "half_width": 1.0, "offset": 0.3, "noise": 0.01},
    # no two runs at one compute: 8 sizes × 10 token counts, read as compute slices
    "grid, 8 sizes × 10 token counts": {"grid": True},
    # learning curves (Approach 1): 8 sizes × 5 run lengths, a checkpoint every 10% of a run
    "learning curves, 8 sizes × 5 lengths": {"curves": True},
}


def _interval_row(draws: np.ndarray, truth: float) -> dict:
    """Median's log10 error, coverage and width (decades) of a 90% interval of positive draws."""
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    return {"log_error": float(np.log10(med / truth)), "covered": bool(lo < truth < hi),
            "width_decades": float(np.log10(hi / lo))}


def replicate(design: str, seed: int) -> list[dict]:
    from bayes_scaling.isoflop.classical import naive_isoflop
    from bayes_scaling.isoflop.envelope import classical_envelope, final_checkpoints, fit_envelope
    from bayes_scaling.isoflop.model import design_of, fit_isoflop
    from bayes_scaling.isoflop.simulate import HOFFMANN, simulate_curves, simulate_grid, simulate_ladder

    warnings.simplefilter("ignore")
    law = HOFFMANN
    options = dict(DESIGNS[design])
    checkpoints = simulate_curves(law, seed=seed) if options.pop("curves", False) else None
    if checkpoints is not None:  # the oracle and the distances read each run's last checkpoint
        runs = final_checkpoints(checkpoints, by=["run"])
    elif options.pop("grid", False):
        runs = simulate_grid(law, seed=seed)
    else:
        runs = simulate_ladder(law, seed=seed, **options)
    decades = np.log10(np.asarray(TARGETS) / runs["C"].max())
    truth_n = law.n_star(np.asarray(TARGETS))
    truth_l = law.loss_star(np.asarray(TARGETS))
    rows = []

    def add(method: str, a: np.ndarray | float, n: np.ndarray | None, loss: np.ndarray | None, **extra):
        """One row per target: the exponent a and, per target, N* (and L*) against the truth."""
        a = np.atleast_1d(a)
        lo_a, hi_a = np.quantile(a, [0.05, 0.95])
        for j, target in enumerate(TARGETS):
            row = {"design": design, "seed": seed, "method": method, "target": target,
                   "decades_beyond": float(decades[j]), "a": float(np.median(a)),
                   "a_error": float(np.median(a)) - law.a} | extra
            if a.size > 1:
                row |= {"a_covered": bool(lo_a < law.a < hi_a), "a_width": float(hi_a - lo_a)}
            if n is not None and n.shape[0] == 1:  # a point estimate: its error alone
                row["N_log_error"] = float(np.log10(n[0, j] / truth_n[j]))
            elif n is not None:
                row |= {f"N_{k}": v for k, v in _interval_row(n[:, j], truth_n[j]).items()}
            if loss is not None:
                lo_l, med_l, hi_l = np.quantile(loss[:, j], [0.05, 0.5, 0.95])
                row |= {"loss_error": float(med_l - truth_l[j]), "loss_covered": bool(lo_l < truth_l[j] < hi_l),
                        "loss_width": float(hi_l - lo_l)}
            rows.append(row)

    if checkpoints is not None:
        naive = classical_envelope(checkpoints, by=["run"])
    else:
        frame, labels, budgets, _ = design_of(runs)  # the budgets (or compute slices) the model reads
        naive = naive_isoflop(frame.assign(budget=labels), budgets)
    n_naive = 10 ** (naive["intercept"] + naive["a"] * np.log10(np.asarray(TARGETS)))
    add("classical envelope" if checkpoints is not None else "classical parabolas", naive["a"], n_naive[None, :], None)
    import bayes_scaling as bs
    from bayes_scaling.data.reading import read_runs
    from bayes_scaling.forecast.forecaster import Forecaster

    start = time.perf_counter()
    oracle = Forecaster(bs.fit(read_runs(runs), window=None, discrepancy="none", draws=500, tune=500, chains=2,
                               seed=seed))
    loss, allocation = oracle.loss_at_compute(np.asarray(TARGETS))
    add(ORACLE, oracle.allocation_exponents()["a"], allocation["N"], loss,
        seconds=time.perf_counter() - start)
    for shape in ("parabola", "asymmetric"):
        start = time.perf_counter()
        sampler = {"shape": shape, "draws": 500, "tune": 500, "chains": 2, "seed": seed}
        iso = (fit_envelope(checkpoints, by=["run"], **sampler) if checkpoints is not None
               else fit_isoflop(runs, **sampler))
        seconds = time.perf_counter() - start
        for scatter, what in ((True, "a budget's optimum"), (False, "the law's line")):
            opt = iso.optimum(np.asarray(TARGETS), seed=seed, scatter=scatter)
            add(f"Bayesian, {shape}: {what}", iso.exponents["a"], opt["N"], opt["loss"], seconds=seconds,
                rhat_max=float(iso.diagnostics.rhat_max))
    return rows


COLUMNS = ("a_covered", "a_width", "N_log_error", "N_covered", "N_width_decades", "loss_covered", "loss_width",
           "seconds")


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
    table = table.reindex(columns=[*table.columns, *(c for c in COLUMNS if c not in table.columns)])
    summary = table.groupby(["design", "decades_beyond", "method"], sort=False).agg(
        a_mean_error=("a_error", "mean"), a_error_sd=("a_error", "std"), a_covered=("a_covered", "mean"),
        a_width=("a_width", "median"), N_mean_log_error=("N_log_error", "mean"), N_covered=("N_covered", "mean"),
        N_width=("N_width_decades", "median"), loss_covered=("loss_covered", "mean"),
        loss_width=("loss_width", "median"), seconds=("seconds", "median"))
    oracle = summary.xs(ORACLE, level="method")
    for name in ("N_width", "loss_width"):  # each method's width over the oracle's, same design and distance
        summary[f"{name}_vs_oracle"] = summary[name] / oracle[name].reindex(summary.index.droplevel("method")).to_numpy()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string())
    print(f"{len(tasks)} replicates in {time.perf_counter() - start:.0f} s; true a = 0.4516; N* and L* at "
          f"{', '.join(f'{t:.0e}' for t in TARGETS)} FLOP (widths: 90% intervals, N*'s in decades)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
