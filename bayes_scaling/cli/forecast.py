"""``bayes-scaling forecast``: one fit's forecasts, or several fits' law average."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_figures_option,
    _add_output_options,
    _figure_formats,
    _moved,
    _resolve_fit_path,
    credible_level,
    log,
    positive_number,
    seed_number,
)
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import free_folder, output_folder
from bayes_scaling.options import DEFAULT_LEVEL


def _forecaster_of(sources: list[Path], *, weights: str, group: str | None, seed: int):
    """One fit's Forecaster, or the law average of several fits (of the same runs, one law each)."""
    from bayes_scaling.compare.lfo import lfo_weights
    from bayes_scaling.forecast.averaging import LawAverage
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.posterior.load import load_fit

    fits: dict[str, Any] = {}
    for path in sources:
        result = load_fit(path)
        name = f"{result.law.name} / {result.likelihood.name}"
        if name in fits:
            raise InputError(f"{path}: a second fit of {name}; a law average takes one fit per law")
        fits[name] = result
    if len(fits) == 1:
        return Forecaster(next(iter(fits.values())), group=group, seed=seed), None
    table = lfo_weights(fits)
    if weights == "equal":
        table["stacking_weight"] = 1.0 / len(fits)
        table.attrs["method"] = "equal weights (chosen with --weights equal)"
    average = LawAverage.from_fits(fits, weights=table["stacking_weight"].to_dict(), group=group, seed=seed)
    return average, table


def _cmd_forecast(args: argparse.Namespace) -> dict[str, Any]:
    from bayes_scaling.forecast.tables import compact, forecast_table, target_table
    from bayes_scaling.io.tables import to_markdown, write_table

    sources = [_resolve_fit_path(path) for path in args.fit]
    source = sources[0]
    if args.tokens_per_param and args.n_params:
        raise InputError("give --tokens-per-param or --n-params, not both")
    if not args.compute and not args.target_loss:
        raise InputError("nothing to forecast: give --compute BUDGET ... and/or --target-loss LOSS ...")
    formats = _figure_formats(args)
    allocation = "tokens_per_param" if args.tokens_per_param else "fixed_n" if args.n_params else "optimal"
    out = Path(args.out) if args.out else free_folder(source.parent / "forecast")
    with output_folder(out, force=args.force, command="bayes-scaling forecast", inputs=sources) as stage:
        fc, weights = _forecaster_of(sources, weights=args.weights, group=args.group, seed=args.seed)
        result = fc.fit
        log.info("forecasting from %s (%d draws)", ", ".join(map(str, sources)), fc.n_draws)
        budgets = table = None
        payload: dict[str, Any] = {"fit": str(source), "level": args.level, "interval": args.interval,
                                   "by": fc.law.name}
        written = []
        if weights is not None:
            payload["fits"] = [str(p) for p in sources]
            payload["law_weights"] = weights["stacking_weight"].to_dict()
            written += write_table(weights, stage / "law_weights",
                                   caption="Weights of the law average (" + weights.attrs["method"] + ")")
        if args.compute:
            budgets = sorted(args.compute)
            table = forecast_table(fc, budgets, ci_prob=args.level, ci_kind=args.interval, allocation=allocation,
                                   tokens_per_param=args.tokens_per_param, N=args.n_params)
            written += write_table(table, stage / "forecast", index=False,
                                   caption=f"Loss forecasts ({table.attrs['allocation']}): medians and "
                                           f"{args.level:.0%} {args.interval.upper()} intervals")
            payload["allocation"] = table.attrs["allocation"]
            payload["forecast"] = table.to_dict(orient="records")
        if args.target_loss:
            targets = target_table(fc, args.target_loss, ci_prob=args.level, ci_kind=args.interval)
            written += write_table(targets, stage / "target_loss", index=False,
                                   caption=f"Compute needed to reach a target loss ({args.level:.0%} intervals)")
            payload["targets"] = targets.to_dict(orient="records")
        if formats:
            written += _forecast_figures(fc, result.runs, budgets, stage / "figures", formats)
        written = _moved(written, stage, out)
    if not args.json:
        if table is not None:
            if weights is not None:
                print(f"Law average of {len(sources)} fits ({weights.attrs['method']}):")
                print(to_markdown(weights, index=True, digits=3))
            print(f"Forecast from {fc.law.name if weights is not None else source} — {table.attrs['allocation']}; "
                  f"medians [{args.level:.0%} "
                  f"{args.interval.upper()}]; loss = expected (mean) loss, loss_pred = a new run's loss")
            print(to_markdown(compact(table), index=False))
        if args.target_loss:
            print("Compute to reach a target expected loss (intervals over the draws that reach it):")
            print(to_markdown(compact(targets), index=False))
        print(f"wrote {len(written)} files to {out}")
    payload["files"] = [str(p) for p in written]
    return payload


def _forecast_figures(fc, runs, budgets, folder: Path, formats) -> list[Path]:
    """Loss fan chart, and for laws of N and D the allocation and isoFLOP profiles; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bayes_scaling.plots.forecast import (
        plot_allocation,
        plot_isoflop,
        plot_loss_forecast,
    )
    from bayes_scaling.plots.style import save_figure, style

    lo = min(runs.C.min(), *(budgets or [runs.C.min()])) / 3
    hi = max(runs.C.max(), *(budgets or [runs.C.max()])) * 3
    grid = np.geomspace(lo, hi, 60)
    written: list[Path] = []
    with style():
        figures = [("loss_forecast", lambda: plot_loss_forecast(fc, grid, runs=runs))]
        if {"N", "D"} <= set(fc.law.inputs):
            figures += [("allocation", lambda: plot_allocation(fc, grid)),
                        ("isoflop", lambda: plot_isoflop(fc, runs=runs))]
        folder.mkdir()
        for name, make in figures:
            fig = make()
            written += save_figure(fig, folder / name, formats=formats)
            plt.close(fig)
    return written


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("forecast", help="loss, compute-optimal allocation and compute-for-a-target, with intervals",
                       description="Forecast from a saved fit (a folder written by 'bayes-scaling fit', or its "
                                   "fit.nc): loss at compute budgets under an allocation, the compute-optimal "
                                   "N* and D*, and the compute needed to reach target losses. Writes tables "
                                   "(CSV, Markdown, LaTeX) and figures to OUT (default FIT_DIR/forecast).")
    p.add_argument("fit", nargs="+", help="folder written by 'bayes-scaling fit', or a fit.nc file; several fits of "
                                         "the same runs (one law each) give a law-averaged forecast")
    p.add_argument("--compute", type=positive_number, nargs="+", metavar="FLOP", help="compute budgets, e.g. 1e24 1e25 1e26")
    p.add_argument("--weights", choices=("lfo", "equal"), default="lfo",
                   help="with several fits: weight the laws by leave-future-out stacking on their own back-tests "
                        "(default) or equally")
    p.add_argument("--target-loss", type=positive_number, nargs="+", metavar="LOSS", help="target losses (nats/token)")
    p.add_argument("--tokens-per-param", type=positive_number, help="fixed tokens per parameter instead of compute-optimal")
    p.add_argument("--n-params", type=positive_number, help="fixed model size N instead of compute-optimal")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    p.add_argument("--interval", choices=("eti", "hdi"), default="eti", help="equal-tailed (default) or HDI")
    p.add_argument("--group", help="group to forecast for (fits with several groups)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the predictive noise draws")
    _add_figures_option(p, default="png,pdf,svg", cost="about 2 s per format")
    _add_output_options(p, required=False, default="FIT_DIR/forecast")
    p.set_defaults(handler=_cmd_forecast)
