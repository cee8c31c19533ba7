"""Proof by simulation of the experiment design (``bayes_scaling.design``): at equal compute, do
the runs it chooses narrow the forecast at a target budget more than a standard isoFLOP row or
random runs, with intervals that still cover the truth?

Each replicate draws a true law near Hoffmann et al.'s with a structural bend the Chinchilla form
cannot follow: beyond 10^19 FLOP (the ladder's top) log loss drifts by κ per decade, with an extra
run-to-run scatter ω per decade, κ and ω drawn from the structural-error population of the published
datasets (``--bend-sd S``: κ ~ N(0, S), no extra scatter); run-to-run noise 0.8% in loss.  It fits the default model to a small isoFLOP ladder (5 budgets,
10^17–10^19 FLOP, 7 sizes each), then spends the same compute four ways:

* ``design``: :func:`bayes_scaling.design.choose.design_runs` from the isoFLOP-row candidates;
* ``isoflop``: one new isoFLOP row of 7 models at a seventh of the budget each;
* ``random``: the same candidates in a random order while they fit;
* ``design_60``: the design with 60% of the budget.

Each set of runs is simulated from the truth and the model refitted with the ladder and the new
runs; the forecast of the loss at the compute-optimal allocation of the target budget is scored
against the true optimal loss there: 90% width (% of the median), coverage of the 50% and 90%
intervals, signed log error; and the design's expected width beside the refit's.

    python benchmarks/bench_design_simulation.py [--replicates 40] [--jobs 2] [--target 1e22] [--budget 1e20]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

LADDER = tuple(np.geomspace(1e17, 1e19, 5))
NOISE = 0.008
BEND_FROM = 1e19


def truth(seed: int, *, bend_sd: float | None):
    """A true law: Chinchilla parameters near Hoffmann's, bent beyond the ladder's top by κ per decade
    (a smooth hinge at 10^19 FLOP) with an extra run-to-run scatter ω per decade there.  κ = b + τ·z
    and ω are drawn from the structural-error population of the published datasets (what real
    ladders did beyond their data); with ``bend_sd``, κ ~ N(0, bend_sd) and no extra scatter."""
    from bayes_scaling.calibration.population import load_population, population_draws
    from bayes_scaling.isoflop.simulate import HOFFMANN, ChinchillaLaw

    rng = np.random.default_rng([seed, 1])
    law = ChinchillaLaw(E=HOFFMANN.E + rng.normal(0, 0.05), A=HOFFMANN.A, B=HOFFMANN.B,
                        alpha=HOFFMANN.alpha * np.exp(rng.normal(0, 0.05)),
                        beta=HOFFMANN.beta * np.exp(rng.normal(0, 0.05)))
    if bend_sd is None:
        error = population_draws(load_population("chinchilla", "student-t"), 1, rng)
        kappa = float(error["b"][0] + error["tau"][0] * rng.standard_normal())
        omega = float(error["omega"][0])
    else:
        kappa, omega = float(rng.normal(0, bend_sd)), 0.0

    def beyond(n, d):
        x = np.log10(6.0 * np.asarray(n) * np.asarray(d) / BEND_FROM)
        return np.logaddexp(0.0, 4.0 * x) / 4.0  # decades beyond 10^19, smoothed over a quarter decade

    def log_loss(n, d):
        return np.log(law.loss(n, d)) + kappa * beyond(n, d)

    def optimal_loss(c):
        n = np.geomspace(1e5, 1e14, 20001)
        return float(np.exp(np.min(log_loss(n, c / (6.0 * n)))))

    def run_scatter(n, d, rng):
        return omega * beyond(n, d) * rng.standard_normal(len(np.atleast_1d(n)))

    return law, log_loss, optimal_loss, run_scatter


def runs_at(log_loss, run_scatter, n, d, rng) -> pd.DataFrame:
    n, d = np.asarray(n, float), np.asarray(d, float)
    noise = rng.normal(0, NOISE, len(n)) + run_scatter(n, d, rng)
    return pd.DataFrame({"N": n, "D": d, "loss": np.exp(log_loss(n, d) + noise)})


def score(fit, *, target: float, true_loss: float, seed: int) -> dict:
    from bayes_scaling.forecast.forecaster import Forecaster

    loss, _ = Forecaster(fit, seed=seed).loss_at_compute(target)
    q = np.quantile(loss[:, 0], [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"width": (q[4] - q[0]) / q[2], "inside_90": q[0] <= true_loss <= q[4],
            "inside_50": q[1] <= true_loss <= q[3], "error": np.log(true_loss / q[2]), "rhat": fit.diagnostics.rhat_max}


def replicate(seed: int, *, target: float, budget: float, bend_sd: float | None) -> list[dict]:
    from bayes_scaling.design.candidates import candidate_grid, isoflop_row, random_runs
    from bayes_scaling.design.choose import design_runs
    from bayes_scaling.fitting import fit
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.isoflop.simulate import simulate_ladder
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    warnings.simplefilter("ignore", SamplingWarning)
    law, log_loss, optimal_loss, run_scatter = truth(seed, bend_sd=bend_sd)
    rng = np.random.default_rng([seed, 2])
    grid = simulate_ladder(law, LADDER, sizes=7, noise=0.0, seed=seed)
    ladder = runs_at(log_loss, run_scatter, grid["N"], grid["D"], rng)
    start = time.perf_counter()
    base = fit(ladder, seed=seed)
    fc = Forecaster(base, max_draws=2000, seed=seed)
    true_loss = optimal_loss(target)
    plans = {}
    t0 = time.perf_counter()
    full = design_runs(fc, target_compute=target, budget=budget, seed=seed)
    design_seconds = time.perf_counter() - t0
    plans["design"] = (full.chosen[["N", "D"]], full.width_after)
    sixty = design_runs(fc, target_compute=target, budget=0.6 * budget, seed=seed)
    plans["design_60"] = (sixty.chosen[["N", "D"]], sixty.width_after)
    row = isoflop_row(fc, budget=budget)
    plans["isoflop"] = (row[["N", "D"]], full.info["isoflop_row"]["after"])
    plans["random"] = (random_runs(candidate_grid(fc, budget=budget, target_compute=target), budget=budget,
                                   seed=seed)[["N", "D"]], np.nan)
    rows = [{"replicate": seed, "strategy": "ladder only", "runs": 0, "spent": 0.0, "expected": full.before["width"],
             **score(base, target=target, true_loss=true_loss, seed=seed)}]
    for name, (plan, expected) in plans.items():
        new = runs_at(log_loss, run_scatter, plan["N"], plan["D"], rng)
        refit = fit(pd.concat([ladder, new], ignore_index=True), seed=seed)
        rows.append({"replicate": seed, "strategy": name, "runs": len(plan),
                     "spent": float((6.0 * plan["N"] * plan["D"]).sum()), "expected": expected,
                     **score(refit, target=target, true_loss=true_loss, seed=seed)})
    for r in rows:
        r["design_seconds"] = design_seconds
        r["seconds"] = time.perf_counter() - start
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--target", type=float, default=1e22)
    parser.add_argument("--budget", type=float, default=1e20)
    parser.add_argument("--bend-sd", type=float, help="instead of the population's structural error: a bend "
                        "κ ~ N(0, BEND_SD) per decade and no extra scatter")
    parser.add_argument("--csv", help="also write every replicate's rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    results = Parallel(n_jobs=args.jobs)(delayed(replicate)(seed, target=args.target, budget=args.budget, bend_sd=args.bend_sd)
                                         for seed in range(args.replicates))
    table = pd.DataFrame([r for rows in results for r in rows])
    if args.csv:
        table.to_csv(args.csv, index=False)
    pd.set_option("display.width", 200)
    print(f"{args.replicates} replicates, target {args.target:.3g} FLOP, budget {args.budget:.3g} FLOP, "
          f"{time.perf_counter() - start:.0f} s; design {table['design_seconds'].median():.1f} s per call (median)")
    order = ["ladder only", "design", "design_60", "isoflop", "random"]
    summary = table.groupby("strategy").agg(
        runs=("runs", "median"), spent=("spent", "median"), width=("width", "median"),
        width_q10=("width", lambda w: np.quantile(w, 0.1)), width_q90=("width", lambda w: np.quantile(w, 0.9)),
        expected=("expected", "median"), coverage_90=("inside_90", "mean"), coverage_50=("inside_50", "mean"),
        mean_error=("error", "mean"), abs_error=("error", lambda e: np.mean(np.abs(e))),
        rhat_max=("rhat", "max")).reindex(order)
    print("\n(widths are 90% widths in % of the median; errors log(true / median) in %)")
    shown = summary.copy()
    for c in ("width", "width_q10", "width_q90", "expected", "mean_error", "abs_error"):
        shown[c] = 100 * shown[c]
    print(shown.round(3).to_string())
    wide = table.pivot(index="replicate", columns="strategy", values="width")
    for other in ("isoflop", "random"):
        ratio = wide["design"] / wide[other]
        lo, hi = np.quantile(ratio, [0.1, 0.9])
        print(f"design / {other} width: median {ratio.median():.3f} [10%–90% over replicates {lo:.3f}, {hi:.3f}]; "
              f"design narrower in {np.mean(ratio < 1):.0%} of replicates")
    ratio = wide["design_60"] / wide["isoflop"]
    print(f"design with 60% of the compute / isoflop width: median {ratio.median():.3f}; "
          f"at most as wide in {np.mean(ratio <= 1):.0%} of replicates")
    print(f"expected / refitted width of the design: median {np.median(table.query('strategy == \"design\"')['expected'] / wide['design'].to_numpy()):.3f}")


if __name__ == "__main__":
    main()
