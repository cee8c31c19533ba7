"""Coverage of the downstream forecast on task ladders simulated from step 2's own model: each
replicate draws six tasks (:func:`bayes_scaling.downstream.simulate.draw_tasks`), simulates 24 runs,
fits the 18 smallest (one step, through compute) and scores the forecasts of the 6 largest.

    python benchmarks/bench_downstream_simulation.py [--replicates 20] [--jobs 2] [--draws 500]

Prints coverage of the 50% and 90% intervals, pooled and its spread over replicates, the width and
the error in accuracy points, and σ (step 2's structural error, which should be near zero here).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed


def replicate(seed: int, draws: int) -> pd.DataFrame:
    from bayes_scaling.data.reading import read_runs
    from bayes_scaling.downstream.checks import downstream_backtest
    from bayes_scaling.downstream.model import fit_downstream
    from bayes_scaling.downstream.simulate import draw_tasks, simulate_task_ladder
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    tasks = draw_tasks(6, seed=seed)
    runs = read_runs(simulate_task_ladder(tasks, seed=seed), name=f"simulated {seed}")
    cut = float(np.sort(runs.C)[-6])
    chance = {task: spec[0] for task, spec in tasks.items()}
    items = {task: spec[4] for task, spec in tasks.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplingWarning)
        fit = fit_downstream(runs, chance=chance, items=items, through="compute", cut=cut, draws=draws, tune=draws,
                             chains=2, seed=seed)
    table = downstream_backtest(runs, cut=cut, fit=fit, seed=seed)
    table["replicate"] = seed
    table["sigma"] = (fit.config.get("structural") or {}).get("sigma_median", np.nan)
    table["rhat"] = fit.diagnostics.rhat_max
    table["warnings"] = len(caught)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    tables = Parallel(n_jobs=args.jobs)(delayed(replicate)(seed, args.draws) for seed in range(args.replicates))
    table = pd.concat(tables, ignore_index=True)
    table.attrs["levels"] = [0.5, 0.9]
    from bayes_scaling.downstream.checks import backtest_summary

    pd.set_option("display.width", 200)
    print(f"{args.replicates} replicates, {len(table)} forecasts, {time.perf_counter() - start:.0f} s")
    print("\npooled\n", backtest_summary(table).round(3).to_string(index=False))
    per = table.groupby("replicate").agg(coverage_90=("inside_0.9", "mean"), coverage_50=("inside_0.5", "mean"),
                                         sigma=("sigma", "first"), rhat=("rhat", "first"))
    print("\nover replicates (mean, 10%–90% quantiles)")
    for column in per.columns:
        lo, hi = np.quantile(per[column], [0.1, 0.9])
        print(f"  {column}: {per[column].mean():.3f} [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main()
