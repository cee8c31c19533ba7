"""``bayes-scaling downstream``: forecasts of task accuracy in two steps (compute → loss →
accuracy), with intervals, and their back-test beyond a compute cut."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_output_options,
    _add_run_table_options,
    _run_table_kwargs,
    add_sampler_size,
    credible_level,
    log,
    positive_number,
    seed_number,
)
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import check_output_folder, output_folder
from bayes_scaling.options import DEFAULT_LEVEL


def _model(text: str) -> tuple[float, float]:
    """``N,D`` of a model to forecast (numbers, with unit letters: ``7e9,2.8e12`` or ``7B,2.8T``)."""
    from bayes_scaling.data.runs import parse_scale

    try:
        n, d = (parse_scale(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N,D (e.g. 7e9,1.4e11)") from None
    if not (n > 0 and d > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: N and D must be positive")
    return n, d


def _chance(text: str) -> tuple[str | None, float]:
    task, _, level = text.rpartition("=")
    try:
        value = float(level)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LEVEL or TASK=LEVEL (e.g. hellaswag=0.25)") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a chance level is in [0, 1)")
    return task or None, value


def _cmd_downstream(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.data.tasks import default_tasks
    from bayes_scaling.downstream.checks import backtest_summary, downstream_backtest
    from bayes_scaling.downstream.model import fit_downstream
    from bayes_scaling.io.tables import write_table

    runs = runs_from(args.data, **_run_table_kwargs(args))
    out = Path(args.out) if args.out else None
    if out is not None:
        check_output_folder(out, force=args.force, inputs=[args.data])
    chance: Any = None
    if args.chance:
        shared = [v for t, v in args.chance if t is None]
        chance = {t: v for t, v in args.chance if t is not None}
        if shared:  # every task's level, but the ones named
            chance = {task: chance.get(task, shared[-1]) for task in (args.task or default_tasks(runs))}
    task_loss = None
    through = args.through
    if args.task_loss:
        if not args.task or len(args.task_loss) != len(args.task):
            raise InputError("--task-loss needs one column per --task, in the same order")
        task_loss = dict(zip(args.task, args.task_loss, strict=True))
        through = "task-loss"
    if args.cut is None and not args.predict:
        raise InputError("say what to forecast: --cut FLOP (the runs above it, scored) or --predict N,D")
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
    log.info("fitting the downstream model (through %s) to %s", through, runs.source)
    fit = fit_downstream(runs, args.task, chance=chance, through=through, task_loss=task_loss, cut=args.cut,
                         law_name=args.law, **sampler)
    fitted = fit.tasks[fit.tasks["status"] == "fitted"]
    payload: dict[str, Any] = {"data": runs.source, "through": through, "level": args.level, "cut": args.cut,
                               "runs_fitted": len(fit.runs), "tasks": fit.tasks.to_dict("records"),
                               "diagnostics": str(fit.diagnostics) if fit.diagnostics is not None else None,
                               "structural_error": fit.config.get("structural")}
    tables: dict[str, Any] = {"tasks": fit.tasks}
    if args.cut is not None and len(fitted):
        held = runs.subset(runs.C >= args.cut)
        if len(held):
            backtest = downstream_backtest(runs, cut=args.cut, levels=sorted({0.5, args.level}), seed=args.seed,
                                           law_name=args.law, fit=fit, task_loss=task_loss)
            tables["backtest"] = backtest
            tables["backtest_by_task"] = backtest_summary(backtest, by="task")
            payload["backtest_summary"] = backtest_summary(backtest).iloc[0].to_dict()
    if args.predict:
        n, d = (np.array([m[i] for m in args.predict]) for i in (0, 1))
        tables["forecast"] = fit.table(N=n, D=d, level=args.level, seed=args.seed)
    for name in ("forecast", "backtest"):
        if name in tables:
            payload[name] = tables[name].to_dict(orient="records")
    if out is not None:
        with output_folder(out, force=args.force, command="bayes-scaling downstream", inputs=[args.data]) as stage:
            for name, table in tables.items():
                write_table(table, stage / f"downstream_{name}", index=False, caption=f"downstream {name}")
            if fit.tree is not None:
                fit.save(stage / "downstream.nc")
                _figures(fit, runs, stage, args)
    if not args.json:
        _print(payload, tables, out)
    return payload


def _print(payload: dict[str, Any], tables: dict[str, Any], out: Path | None) -> None:
    from bayes_scaling.io.tables import to_markdown

    tasks = tables["tasks"]
    fitted = tasks[tasks["status"] == "fitted"]["task"].tolist()
    others = tasks[tasks["status"] != "fitted"]
    print(f"{payload['runs_fitted']} runs fitted; step 2 through {payload['through']}; {len(fitted)} tasks above "
          f"chance: {', '.join(fitted) or 'none'}")
    if len(others):
        print(f"not forecast (near chance or too few runs): {', '.join(others['task'])}")
    structural = payload.get("structural_error")
    if structural:
        print(f"step 2's structural error beyond the fitted runs: σ {structural['sigma_median']:.2f} "
              f"[{structural['sigma_lower']:.2f}, {structural['sigma_upper']:.2f}] logit per decade, from "
              f"{structural['backtest_errors']} errors of {structural['backtest_cuts']} refits below cuts inside them")
    if "forecast" in tables:
        table = tables["forecast"]
        shown = table[table["status"] == "fitted"][["N", "D", "task", "median", "lower", "upper"]]
        print(f"\nforecast accuracy (median [{payload['level']:.0%} interval]):")
        print(to_markdown(shown.round(4), index=False))
    if "backtest_summary" in payload:
        b = payload["backtest_summary"]
        print(f"\nback-test of the runs at or above {payload['cut']:.3g} FLOP ({b['forecasts']:.0f} forecasts): "
              f"50% intervals hold {b['coverage_0.5']:.0%}, {payload['level']:.0%} hold "
              f"{b[f'coverage_{payload['level']:g}']:.0%} (median width {b[f'width_{payload['level']:g}']:.1f} "
              f"points); mean error {b['mean_error']:+.1f} points, mean absolute {b['mean_abs_error']:.1f} (the point "
              f"method: {b['point_mean_abs_error']:.1f})")
        print(to_markdown(tables["backtest_by_task"].round(3), index=False))
    if out is not None:
        print(f"wrote tables, downstream.nc and figures to {out}")


def _figures(fit, runs, out: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bayes_scaling.plots.downstream import plot_task_forecast
    from bayes_scaling.plots.style import save_figure, style

    if args.cut is not None:
        held = runs.subset(runs.C >= args.cut)
        n, d = held.N, held.D
    else:
        n, d = (np.array([m[i] for m in args.predict]) for i in (0, 1))
        held = None
    (out / "figures").mkdir()
    with style():
        for task in fit.fitted_tasks:
            observed = held.data[task].to_numpy(dtype=float) if held is not None and len(held) else None
            fig = plot_task_forecast(fit, task, N=n, D=d, observed=observed, level=args.level, seed=args.seed)
            save_figure(fig, out / "figures" / f"downstream_{task}")
            plt.close(fig)


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    from bayes_scaling.laws.registry import law_names
    from bayes_scaling.options import DOWNSTREAM_THROUGH

    p = sub.add_parser("downstream", help="task accuracy forecasts in two steps (compute → loss → accuracy)",
                       description="Fits the scaling law to the runs' loss (step 1) and a sigmoid from loss to each "
                                   "task's accuracy between its chance level and a ceiling, partially pooled across "
                                   "tasks (step 2); forecasts each task at the runs above --cut (scored against "
                                   "what they reached) or at the --predict models, with intervals. Tasks near "
                                   "chance in the runs fitted are reported, not forecast.")
    p.add_argument("data", help="dataset name or file of runs (N, D or C, loss, one accuracy column per task)")
    _add_run_table_options(p)
    p.add_argument("--task", nargs="+", metavar="COL",
                   help="the task accuracy columns, in [0, 1] (default: every such column)")
    p.add_argument("--task-loss", nargs="+", metavar="COL",
                   help="each --task's own loss column (bits per byte or nats of the correct answer): step 1 fits a "
                        "law to it and step 2 reads accuracy from it")
    p.add_argument("--through", choices=[t for t in DOWNSTREAM_THROUGH if t != "task-loss"], default="loss",
                   help="step 2's input: the validation loss (default) or compute alone (one step)")
    p.add_argument("--chance", type=_chance, nargs="+", metavar="[TASK=]LEVEL",
                   help="chance level of every task or of one (default: the dataset's task table, else 0)")
    p.add_argument("--cut", type=positive_number, metavar="FLOP",
                   help="fit the runs below this compute and forecast (and score) those at or above it")
    p.add_argument("--predict", type=_model, nargs="+", metavar="N,D",
                   help="models to forecast, e.g. 7e9,1.4e11")
    p.add_argument("--law", choices=law_names(), default="chinchilla", help="step 1's law (default chinchilla)")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    add_sampler_size(p)
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0): the same seed gives the same draws")
    _add_output_options(p, required=False, default="print only, write no files")
    p.set_defaults(handler=_cmd_downstream)
