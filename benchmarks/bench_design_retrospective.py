"""The experiment design on real runs, in hindsight: start from a dataset's small runs, let the
design choose among the runs that exist (up to a compute budget), refit, and forecast the largest
budget, which none of the choices may touch.  Compared at equal compute with an isoFLOP row (five
runs of one existing budget, spread over its sizes) and with random choices (five orders).

Scored at the largest budget: the 90% width of the loss at its compute-optimal allocation (% of the
median), that median's error against the budget's best observed run, and the predictive
intervals of the budget's runs at their own N and D (50% and 90% coverage, mean signed log error).

    python benchmarks/bench_design_retrospective.py [--datasets chinchilla misfitting-final] [--random 5]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd

#: Per dataset: the start (runs at most this compute), the isoFLOP row a lab would add next (the
#: existing budget nearest this), and its runs (the budget is their cost).
SETTINGS = {"chinchilla": {"start": 1.5e19, "row": 2.9e20, "row_runs": 5},
            "misfitting-final": {"start": 2.5e18, "row": 1.33e19, "row_runs": 5}}


def _row_runs(frame: pd.DataFrame, labels: np.ndarray, budgets: np.ndarray, near: float, k: int) -> pd.DataFrame:
    j = int(np.argmin(np.abs(np.log(budgets / near))))
    row = frame[labels == j].sort_values("N")
    picks = np.unique(np.round(np.linspace(0, len(row) - 1, k)).astype(int))
    return row.iloc[picks]


def _score(fit, held: pd.DataFrame, target: float, seed: int) -> dict:
    from bayes_scaling.forecast.forecaster import Forecaster

    fc = Forecaster(fit, seed=seed)
    star, _ = fc.loss_at_compute(target)
    q = np.quantile(star[:, 0], [0.05, 0.5, 0.95])
    pred = fc.loss(N=held["N"].to_numpy(), D=held["D"].to_numpy(), predictive=True)
    lo90, lo50, med, hi50, hi90 = np.quantile(pred, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    y = held["loss"].to_numpy()
    return {"width": (q[2] - q[0]) / q[1], "best_error": float(np.log(y.min() / q[1])),
            "coverage_90": float(np.mean((y >= lo90) & (y <= hi90))),
            "coverage_50": float(np.mean((y >= lo50) & (y <= hi50))),
            "mean_error": float(np.mean(np.log(y / med)))}


def evaluate(name: str, *, random_orders: int, band: float | None, seed: int = 1) -> list[dict]:
    from bayes_scaling.data.budgets import budget_labels
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.design.candidates import random_runs
    from bayes_scaling.design.choose import design_runs
    from bayes_scaling.fitting import fit
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    warnings.simplefilter("ignore", SamplingWarning)
    settings = SETTINGS[name]
    runs = runs_from(name)
    frame = runs.data[["N", "D", "C", "loss"]].reset_index(drop=True)
    labels, budgets = budget_labels(frame["C"].to_numpy())
    top = int(np.argmax(budgets))
    target = float(budgets[top])
    held = frame[labels == top]
    low_edge = held["C"].min() / 1.2
    start = frame[frame["C"] <= settings["start"]]
    pool = frame[(frame["C"] > settings["start"]) & (frame["C"] < low_edge) & (labels != top)]
    row = _row_runs(frame, labels, budgets, settings["row"], settings["row_runs"])
    budget = float(row["C"].sum())
    base = fit(start[["N", "D", "loss"]], seed=seed)
    t0 = time.perf_counter()
    design = design_runs(base, target_compute=target, budget=budget, candidates=pool[["N", "D"]], band=band,
                         seed=seed)
    seconds = time.perf_counter() - t0
    chosen = pool.iloc[[int(i) for i in design.candidates.index[design.candidates["chosen"] > 0]]]
    plans = {"start only": start.iloc[:0], "design": chosen, "isoflop row": row}
    for k in range(random_orders):
        taken = random_runs(pool.reset_index(drop=True), budget=budget, seed=k)
        plans[f"random {k}"] = taken
    rows = []
    for label, plan in plans.items():
        data = pd.concat([start, plan], ignore_index=True)[["N", "D", "loss"]]
        refit = base if label == "start only" else fit(data, seed=seed)
        rows.append({"dataset": name, "strategy": "random" if label.startswith("random") else label,
                     "runs": len(plan), "spent": float(plan["C"].sum()), "budget": budget, "target": target,
                     "held_out": len(held), "expected": design.width_after if label == "design" else np.nan,
                     "design_seconds": seconds, **_score(refit, held, target, seed)})
    rows[0]["chosen"] = chosen.assign(tokens_per_param=chosen["D"] / chosen["N"]).to_string(index=False)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS))
    parser.add_argument("--random", type=int, default=5, help="random orders per dataset")
    parser.add_argument("--band", default="default", help="the design's band (decades of N), 'none' or 'default'")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    from bayes_scaling.options import DESIGN_BAND

    band = DESIGN_BAND if args.band == "default" else None if args.band == "none" else float(args.band)
    table = pd.DataFrame([r for name in args.datasets for r in evaluate(name, random_orders=args.random, band=band)])
    print(f"design band: {band}")
    pd.set_option("display.width", 200)
    print(f"{time.perf_counter() - start:.0f} s")
    for name, rows in table.groupby("dataset", sort=False):
        first = rows.iloc[0]
        print(f"\n{name}: target {first['target']:.3g} FLOP ({first['held_out']} runs held out), budget "
              f"{first['budget']:.3g} FLOP; design {first['design_seconds']:.1f} s")
        summary = rows.groupby("strategy", sort=False).agg(
            runs=("runs", "mean"), spent=("spent", "mean"), width=("width", "mean"), expected=("expected", "mean"),
            best_error=("best_error", "mean"), coverage_90=("coverage_90", "mean"),
            coverage_50=("coverage_50", "mean"), mean_error=("mean_error", "mean"))
        for c in ("width", "expected", "best_error", "mean_error"):
            summary[c] = 100 * summary[c]
        print(summary.round(3).to_string())
        print("the design's runs:\n" + first["chosen"])
    print("\n(width: 90% width of the loss at the target's optimum, % of the median; best_error: log(best observed "
          "run / that median) in %; coverage and mean_error: the target budget's runs, predictive; random: mean "
          "of the orders)")


if __name__ == "__main__":
    main()
