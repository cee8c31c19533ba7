"""``bayes-scaling design``: which training runs to train next so that a forecast at a target budget
narrows the most per FLOP."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_figures_option,
    _add_output_options,
    _argument_type,
    _figure_formats,
    _resolve_fit_path,
    credible_level,
    log,
    positive_int,
    positive_number,
    seed_number,
)
from bayes_scaling.io.outputs import check_output_folder, output_folder
from bayes_scaling.options import DEFAULT_LEVEL, DESIGN_BAND, DESIGN_MIN_OUTCOMES


def _words_or_decades(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


_band = _argument_type(_words_or_decades, lambda v: v is None or (math.isfinite(v) and v > 0),
                       "a number of decades > 0 or 'none'", "band")
_outcomes = _argument_type(int, lambda v: v >= DESIGN_MIN_OUTCOMES, f"a whole number ≥ {DESIGN_MIN_OUTCOMES}",
                           "outcomes")


def _cmd_design(args: argparse.Namespace) -> dict[str, Any]:
    from bayes_scaling.design.candidates import read_candidates
    from bayes_scaling.design.choose import design_runs
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.io.tables import write_table
    from bayes_scaling.posterior.load import load_fit

    source = _resolve_fit_path(args.fit)
    formats = _figure_formats(args)
    candidates = None if args.candidates == "grid" else read_candidates(args.candidates)
    out = Path(args.out) if args.out else None
    inputs = [source] + ([Path(args.candidates)] if candidates is not None else [])
    if out is not None:
        check_output_folder(out, force=args.force, inputs=inputs)
    fc = Forecaster(load_fit(source), group=args.group, max_draws=2000, seed=args.seed)
    log.info("choosing runs for the %s forecast at %.3g FLOP from %s (budget %.3g FLOP)", args.quantity,
             args.target_compute, source, args.budget)
    design = design_runs(fc, target_compute=args.target_compute, budget=args.budget, candidates=candidates,
                         batch=args.batch, quantity=args.quantity, band=args.band, level=args.level, outcomes=args.outcomes,
                         seed=args.seed)
    payload = design.to_dict()
    payload["fit"] = str(source)
    if out is not None:
        with output_folder(out, force=args.force, command="bayes-scaling design", inputs=inputs) as stage:
            write_table(design.chosen, stage / "design", index=False,
                        caption=f"Runs chosen for the {args.quantity} forecast at {args.target_compute:.3g} FLOP")
            write_table(design.candidates, stage / "candidates", index=False, caption="Candidate runs")
            design.save(stage / "design.json")
            if formats:
                _figure(design, stage / "figures", formats)
        payload["out"] = str(out)
    if not args.json:
        _print(design, out)
    return payload


def _print(design, out: Path | None) -> None:
    print(design.summary())
    if len(design.chosen):
        print("\n rank        N            D       C (FLOP)   expected width after   decades to target")
        for row in design.chosen.itertuples():
            print(f"{row.rank:>5}  {row.N:10.3g}  {row.D:11.3g}  {row.C:12.3g}   {row.expected_width:8.1%} "
                  f"± {row.expected_width_se:.2%}     {row.decades_to_target:.2f}")
    row = design.info["isoflop_row"]
    print(f"\nfor comparison, an isoFLOP row of {row['runs']} models at {row['C_each']:.3g} FLOP each (the same "
          f"compute): expected width {row['after']:.1%}")
    if "warning" in design.info:
        print(f"note: {design.info['warning']}")
    if out is not None:
        print(f"wrote the design, the candidates and the figure to {out}")


def _figure(design, folder: Path, formats: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.plots.design import plot_design
    from bayes_scaling.plots.style import save_figure, style

    folder.mkdir()
    with style():
        fig = plot_design(design)
        save_figure(fig, folder / "design", formats=formats)
        plt.close(fig)


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("design", help="which runs to train next: the largest expected narrowing of a forecast per FLOP",
                       description="From a saved fit, choose among candidate runs the ones whose outcomes are "
                                   "expected to narrow the forecast at --target-compute the most per FLOP, "
                                   "spending at most --budget. The expected widths come from the posterior "
                                   "(outcomes simulated from it, draws reweighted), the structural error included: "
                                   "a run nearer the target also shortens the extrapolation.")
    p.add_argument("fit", help="folder written by 'bayes-scaling fit', or a fit.nc file")
    p.add_argument("--target-compute", type=positive_number, required=True, metavar="FLOP",
                   help="the budget whose forecast should narrow, e.g. 1e24")
    p.add_argument("--budget", type=positive_number, required=True, metavar="FLOP",
                   help="the compute the new runs may cost together (6·N·D each)")
    p.add_argument("--candidates", default="grid", metavar="FILE|grid",
                   help="a CSV file of candidate runs (columns N and D, or one of them and C), or 'grid' "
                        "(default): isoFLOP rows around the forecast optimum up to the budget")
    p.add_argument("--batch", type=positive_int, help="choose at most this many runs (default: as many as help)")
    p.add_argument("--quantity", choices=("loss", "n_star"), default="loss",
                   help="the forecast to narrow: the loss at the compute-optimal allocation (default) or N*")
    p.add_argument("--band", type=_band, default=DESIGN_BAND, metavar="DECADES|none",
                   help=f"choose only runs within this many decades of N of the forecast's compute-optimal N "
                        f"at their compute (default {DESIGN_BAND:g}; 'none': any)")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    p.add_argument("--outcomes", type=_outcomes, default=64,
                   help="simulated outcomes per evaluation (default 64; more: slower, smoother)")
    p.add_argument("--group", help="the group whose forecast to narrow (fits with several groups)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the simulated outcomes")
    _add_figures_option(p, default="png,pdf", cost="under a second per format")
    _add_output_options(p, required=False)
    p.set_defaults(handler=_cmd_design)
