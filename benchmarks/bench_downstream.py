"""Back-tests of the downstream forecast on the Gadre et al. 2024 runs: fit below a compute cut,
forecast each larger run's task accuracies, pooled over the three training sets and the cuts.

    python benchmarks/bench_downstream.py [--cuts 1e20 3e20 1e21] [--through loss] [--draws 500]

Prints coverage (50%, 90%), median width and errors in accuracy points, beside the two-step point
method, pooled and by task.
"""

from __future__ import annotations

import argparse
import logging
import time

import pandas as pd

import bayes_scaling as bs
from bayes_scaling.downstream.checks import backtest_summary, downstream_backtest

DATASETS = ("gadre-c4-tasks", "gadre-rpj-tasks", "gadre-rw-tasks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=float, nargs="+", default=[1e20, 3e20, 1e21])
    parser.add_argument("--through", default="loss", choices=["loss", "compute"])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tables = []
    for name in DATASETS:
        runs = bs.load_dataset(name)
        for cut in args.cuts:
            start = time.perf_counter()
            table = downstream_backtest(runs, cut=cut, through=args.through, draws=args.draws, tune=args.draws,
                                        chains=args.chains, seed=args.seed)
            table["dataset"], table["cut"] = name, cut
            tables.append(table)
            print(f"{name} cut {cut:.0e}: {table['C'].nunique()} runs held out, {table['task'].nunique()} tasks, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    pooled = pd.concat(tables, ignore_index=True)
    pooled.attrs["levels"] = [0.5, 0.9]
    pd.set_option("display.width", 200)
    print("\npooled\n", backtest_summary(pooled).round(3).to_string(index=False))
    print("\nby dataset\n", backtest_summary(pooled, by="dataset").round(3).to_string(index=False))
    print("\nby cut\n", backtest_summary(pooled, by="cut").round(3).to_string(index=False))
    print("\nby task\n", backtest_summary(pooled, by="task").round(3).to_string(index=False))


if __name__ == "__main__":
    main()
