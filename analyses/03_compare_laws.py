"""Compare the scaling laws across the embedded and remote datasets, with back-tests.

    python analyses/03_compare_laws.py [--out DIR] [--force]

For chinchilla, epoch-chinchilla and misfitting-final (remote: downloaded once, or read
from $BAYES_SCALING_DATA_DIR), fits chinchilla, kaplan-nd and compute with a Student-t
likelihood, ranks them by PSIS-LOO with stacking weights, and back-tests them at three
compute cuts next to the classical Huber fit.  Fits are cached in OUT/cache, so a re-run
after an interruption continues where it stopped.
"""

from __future__ import annotations

import pandas as pd
from _common import output_folder

from bayes_scaling.compare.backtest import backtest
from bayes_scaling.compare.grid import fit_grid
from bayes_scaling.compare.loo import loo_table
from bayes_scaling.data.datasets import load_dataset
from bayes_scaling.io.tables import write_table

out, args = output_folder("03_compare_laws", __doc__.splitlines()[0])
laws = ["chinchilla", "kaplan-nd", "compute"]
settings = {"draws": args.draws, "tune": 1000, "chains": 4, "seed": 0}
loos, tests = [], []
for name in ("chinchilla", "epoch-chinchilla", "misfitting-final"):
    runs = load_dataset(name)
    fits = fit_grid(runs, laws, ["student-t"], cache_dir=out / "cache", settings=settings)
    loo = loo_table(fits).reset_index().assign(dataset=name)
    bt = backtest(runs, laws=laws, likelihoods=["student-t"], cache_dir=out / "cache", settings=settings,
                  bootstrap=50, progress=print).assign(dataset=name)
    loos.append(loo)
    tests.append(bt)
loo_all, bt_all = pd.concat(loos, ignore_index=True), pd.concat(tests, ignore_index=True)
write_table(loo_all, out / "loo", index=False, caption="PSIS-LOO comparison per dataset")
write_table(bt_all.drop(columns=["cached"]), out / "backtest", index=False, caption="Back-tests per dataset")
print(loo_all[["dataset", "model", "rank", "elpd_loo", "stacking_weight", "n_pareto_k_bad"]].to_string(index=False))
print(f"wrote {out}")
