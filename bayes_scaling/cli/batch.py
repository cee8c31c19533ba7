"""``bayes-scaling batch``: many fits on one executor."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_grid_options,
    _add_output_options,
    _add_run_table_options,
    _grid_of,
    _moved,
    _run_table_kwargs,
    log,
    positive_int,
    positive_number,
    scheduler_address,
    seed_number,
)
from bayes_scaling.io.outputs import check_output_folder, output_folder
from bayes_scaling.options import DISCREPANCIES


def _cmd_batch(args: argparse.Namespace) -> dict[str, Any]:
    from bayes_scaling.batch import run_batch, tasks_for
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.io.tables import to_markdown, write_table

    laws, likelihoods = _grid_of(args)
    datasets = {}
    for spec in args.data:
        runs = runs_from(spec, **_run_table_kwargs(args))
        datasets[Path(spec).stem if Path(spec).is_file() else spec] = runs
    out = Path(args.out)
    check_output_folder(out, force=args.force, inputs=args.data)
    executor = args.dask or args.executor
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "discrepancy": args.discrepancy}
    tasks = tasks_for(datasets, laws=laws, likelihoods=likelihoods, cuts=[None, *(args.cut or [])],
                      seeds=args.seeds, settings=settings)
    where = f"the Dask scheduler at {args.dask}" if args.dask else f"{args.executor} ({args.jobs} jobs)" \
        if args.executor == "joblib" else "this process"
    log.info("%d fits (%d datasets x %d laws x %d likelihoods x %d cuts x %d seeds) on %s", len(tasks),
             len(datasets), len(laws), len(likelihoods), 1 + len(args.cut or []), len(args.seeds), where)
    table = run_batch(tasks, executor=executor, jobs=args.jobs)
    with output_folder(out, force=args.force, command="bayes-scaling batch", inputs=args.data) as stage:
        written = _moved(write_table(table, stage / "batch", index=False,
                                     caption="Batch of fits: posterior medians and diagnostics"), stage, out)
    if not args.json:
        columns = ["task", "runs", "rhat_max", "ess_bulk_min", "divergences", "wall_s"]
        print(to_markdown(table[columns], digits=3, index=False))
        bad = int((~table["diagnostics_ok"]).sum())
        print(f"{len(table)} fits, {bad} with sampling problems; wrote {len(written)} files to {out}")
    return {"batch": table.to_dict(orient="records"), "files": [str(p) for p in written]}


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("batch", help="many fits (datasets x laws x cuts x seeds) here, on joblib workers or on Dask",
                       description="Fit every combination of datasets, laws, likelihoods, compute cuts and seeds "
                                   "and write one table of posterior medians, sds and sampling diagnostics "
                                   "(OUT/batch.csv, .md, .tex). Fits run in this process (the fastest on a small "
                                   "machine: one compiled model per structure), on local worker processes "
                                   "(--executor joblib) or on a Dask cluster (--dask tcp://HOST:8786; needs "
                                   "pip install 'bayes-scaling[dask]'). The results are the same wherever they run.")
    _add_grid_options(p, laws="chinchilla")
    p.add_argument("--cut", type=positive_number, nargs="+", metavar="FLOP",
                   help="also fit the runs with C <= each cut (back-test fits)")
    p.add_argument("--seeds", type=seed_number, nargs="+", default=[0], help="seeds (default 0)")
    p.add_argument("--discrepancy", default=DISCREPANCIES[0], choices=DISCREPANCIES,
                   help=f"structural error of each fit (default {DISCREPANCIES[0]})")
    p.add_argument("--executor", choices=("local", "joblib"), default="local",
                   help="where the fits run without --dask (default: this process)")
    p.add_argument("--jobs", type=positive_int, default=2, help="worker processes for --executor joblib")
    p.add_argument("--dask", metavar="SCHEDULER", type=scheduler_address, help="run on the Dask cluster at this address, e.g. tcp://10.0.0.5:8786")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_batch)
