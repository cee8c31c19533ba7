"""``bayes-scaling isoflop``: the Bayesian isoFLOP analysis (Approach 2, or Approach 1 on learning
curves), its back-test and its comparison with the parametric fit (Approach 3)."""

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
from bayes_scaling.options import DEFAULT_LEVEL, ENVELOPE_MIN_PROGRESS, ISOFLOP_SHAPES


def _cmd_isoflop(args: argparse.Namespace) -> dict[str, Any]:
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.intervals import central
    from bayes_scaling.io.tables import write_table
    from bayes_scaling.isoflop.checks import (
        allocation_cost,
        compare_approaches,
        isoflop_backtest,
    )

    if args.chosen_params and not args.chosen_compute:
        raise InputError("--chosen-params needs --chosen-compute (the budget it was trained at)")
    runs = runs_from(args.data, **_run_table_kwargs(args))
    out = Path(args.out) if args.out else None
    if out is not None:
        check_output_folder(out, force=args.force, inputs=[args.data])
    sampler = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
    iso, analysed, classical_a, parametric_runs, curves = _analyse(args, runs, sampler)
    budgets = sorted(set(args.predict or []) | {float(iso.budgets.max()) * 10, float(iso.budgets.max()) * 100})
    tables: dict[str, Any] = {"optimum": iso.table(budgets, level=args.level, seed=args.seed)}
    lo, med, hi = (float(v) for v in central(iso.exponents["a"], args.level))
    payload: dict[str, Any] = {
        "data": runs.source, "approach": iso.config["approach"], "shape": args.shape, "level": args.level,
        "budgets_fitted": [float(b) for b in iso.budgets], "runs_fitted": len(iso.runs), "runs_left_out": iso.left_out,
        "exponent_a": [med, lo, hi], "exponent_b": [1 - med, 1 - hi, 1 - lo],
        "classical_exponent_a": classical_a, "diagnostics": str(iso.diagnostics),
        "design": iso.config["design"], "repeats_dropped": iso.config["repeats_dropped"],
    }
    if curves:
        payload["curves"] = {"columns": list(curves), "curves": iso.config["curves"],
                             "checkpoints": iso.config["checkpoints"], "min_progress": args.min_progress}
    if args.compare:
        from bayes_scaling.fitting import fit as fit_law
        from bayes_scaling.forecast.forecaster import Forecaster

        log.info("fitting the parametric law (Approach 3) to the same %d runs%s for the comparison",
                 len(parametric_runs), " (each curve's last checkpoint)" if curves else "")
        parametric = fit_law(parametric_runs, window=None, **sampler)
        table = compare_approaches(iso, Forecaster(parametric, seed=args.seed), budgets, tolerance=args.tolerance,
                                   level=args.level, seed=args.seed)
        tables["comparison"] = table
        payload["comparison_exponents"] = table.attrs.get("exponents")
    if args.cut is not None:
        backtest = isoflop_backtest(analysed if curves else runs, cut=args.cut, level=args.level, fit=iso,
                                    parametric=Forecaster(parametric, seed=args.seed) if args.compare else None)
        tables["backtest"] = backtest
        scored = backtest[backtest["scored"]]
        payload["backtest_scored"] = len(scored)
        payload["backtest_coverage"] = {"N": float(scored["inside_N"].mean()), "loss": float(scored["inside_loss"].mean())}
        if args.compare:
            payload["backtest_coverage_parametric"] = {"N": float(scored["inside_N_parametric"].mean()),
                                                       "loss": float(scored["inside_loss_parametric"].mean())}
    if args.chosen_params:
        payload["allocation_cost"] = allocation_cost(iso, args.chosen_params, args.chosen_compute, level=args.level,
                                                     seed=args.seed)
    for name, table in tables.items():
        payload[name] = table.to_dict(orient="records")
    if out is not None:
        with output_folder(out, force=args.force, command="bayes-scaling isoflop", inputs=[args.data]) as stage:
            for name, table in tables.items():
                write_table(table, stage / f"isoflop_{name}", index=False, caption=f"isoFLOP {name}")
            iso.save(stage / "isoflop.nc")
            _figures(iso, stage, tables.get("comparison"), budgets, args.level)
    if not args.json:
        _print(payload, tables, out)
    return payload


def _analyse(args: argparse.Namespace, runs, sampler: dict[str, Any]):
    """The isoFLOP fit, the table it read (runs, or the envelope's points), the classical exponent,
    the runs a parametric fit compares with, and the curve columns (None: runs, Approach 2)."""
    from bayes_scaling.isoflop.classical import naive_isoflop
    from bayes_scaling.isoflop.envelope import (
        classical_envelope,
        envelope_profiles,
        final_checkpoints,
        fit_envelope_profiles,
    )
    from bayes_scaling.isoflop.model import fit_isoflop

    curves = args.curve_by or runs.provenance.get("curves")
    if curves:  # learning curves: Approach 1, the envelope read as isoFLOP profiles
        log.info("fitting the isoFLOP model (%s) to the envelope of %s's training curves", args.shape, runs.source)
        analysed: Any = envelope_profiles(runs, by=curves, min_progress=args.min_progress)
        iso = fit_envelope_profiles(analysed, shape=args.shape, cut=args.cut, **sampler)
        below = runs if args.cut is None else runs.subset(runs.C < args.cut)
        classical_a = classical_envelope(below, by=curves)["a"]
        final = final_checkpoints(runs, by=curves)
        parametric_runs: Any = final if args.cut is None else final[final["C"] < args.cut]
    else:
        log.info("fitting the isoFLOP model (%s) to %s", args.shape, runs.source)
        analysed = runs
        iso = fit_isoflop(runs, shape=args.shape, cut=args.cut, **sampler)
        classical_a = naive_isoflop(iso.runs, iso.budgets)["a"]
        parametric_runs = runs if args.cut is None else runs.subset(runs.C < args.cut,
                                                                    label=f"{runs.source} [C < {args.cut:.3g}]")
    return iso, analysed, classical_a, parametric_runs, curves


def _print(payload: dict[str, Any], tables: dict[str, Any], out: Path | None) -> None:
    from bayes_scaling.forecast.tables import compact
    from bayes_scaling.io.tables import to_markdown

    med, lo, hi = payload["exponent_a"]
    groups = "compute slices" if payload["design"] == "slices" else "budgets"
    if "curves" in payload:
        c = payload["curves"]
        print(f"Approach 1: the envelope of {c['curves']} training curves ({c['checkpoints']} checkpoints past "
              f"{c['min_progress']:.0%} of their run), each size's lowest loss at each budget")
    repeats = f"; {payload['repeats_dropped']} repeats at one N and D enter as their best" if payload[
        "repeats_dropped"] else ""
    print(f"{payload['runs_fitted']} runs in {len(payload['budgets_fitted'])} {groups} ({payload['shape']} profiles); "
          f"{payload['runs_left_out']} runs share no budget (or lie above the cut) and are not fitted{repeats}")
    classical = "envelope's minima" if "curves" in payload else "parabola fit"
    print(f"N* ∝ C^a: a = {med:.3f} [{lo:.3f}, {hi:.3f}] ({payload['level']:.0%}); D* ∝ C^(1-a); the classical "
          f"{classical}: a = {payload['classical_exponent_a']:.3f}")
    for name, table in tables.items():
        print(f"\n{name} (medians [{payload['level']:.0%} intervals]):")
        print(to_markdown(compact(table.drop(columns=[c for c in table.columns if c.startswith("inside_")])),
                          index=False))
    if "backtest_coverage" in payload:
        cov = payload["backtest_coverage"]
        print(f"back-test ({payload['backtest_scored']} held-out budgets that bracket their optimum): their own "
              f"optima inside the forecast interval: N* {cov['N']:.0%}, L* {cov['loss']:.0%}")
        if "backtest_coverage_parametric" in payload:
            par = payload["backtest_coverage_parametric"]
            print(f"          inside the parametric fit's (Approach 3): N* {par['N']:.0%}, L* {par['loss']:.0%}")
    if "allocation_cost" in payload:
        c = payload["allocation_cost"]
        print(f"the chosen allocation gives up {c['loss_given_up']:.3g} nats [{c['loss_given_up_lower']:.3g}, "
              f"{c['loss_given_up_upper']:.3g}]; {c['deadweight_fraction']:.0%} of its compute "
              f"[{c['deadweight_fraction_lower']:.0%}, {c['deadweight_fraction_upper']:.0%}] would reach the same "
              f"loss at the optimum (N* = {c['optimal_N']:.3g})")
    if out is not None:
        print(f"wrote tables and figures to {out}")


def _figures(iso, out: Path, comparison, budgets, level: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.plots.isoflop import plot_isoflop_profiles, plot_optimum_law
    from bayes_scaling.plots.style import save_figure, style

    (out / "figures").mkdir()
    with style():
        for name, make in (("isoflop_profiles", lambda: plot_isoflop_profiles(iso, level=level)),
                           ("isoflop_optimum", lambda: plot_optimum_law(iso, budgets, comparison=comparison,
                                                                        level=level))):
            fig = make()
            save_figure(fig, out / "figures" / name)
            plt.close(fig)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1), got {text!r}")
    return value


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("isoflop", help="isoFLOP analysis (Approach 2; Approach 1 on learning curves): each budget's "
                                       "optimum and their power law",
                       description="Groups the runs by compute budget, fits a curve in log N per budget with "
                                   "partially pooled curvature and power laws in C through the optima, and "
                                   "forecasts N*, D* and L* at new budgets with intervals. On learning curves "
                                   "(--curve-by, or a dataset that registers its curves, e.g. misfitting-curves) "
                                   "each budget's points are each size's lowest loss along its curves: the "
                                   "envelope of Approach 1.")
    p.add_argument("data", help="dataset name or file of runs (N, D or C, loss)")
    _add_run_table_options(p)
    p.add_argument("--shape", choices=ISOFLOP_SHAPES, default="parabola",
                   help="each budget's profile: a parabola in log N (default) or a skewed curve")
    p.add_argument("--curve-by", nargs="+", metavar="COLUMN",
                   help="the rows are checkpoints of training curves; these columns identify one run (Approach 1)")
    p.add_argument("--min-progress", type=_share, default=ENVELOPE_MIN_PROGRESS, metavar="SHARE",
                   help=f"with curves: a checkpoint enters once its run has seen this share of its tokens "
                        f"(default {ENVELOPE_MIN_PROGRESS:g})")
    p.add_argument("--cut", type=positive_number, metavar="FLOP",
                   help="fit the budgets below this compute and score the forecast optimum of each budget above it")
    p.add_argument("--predict", type=positive_number, nargs="+", metavar="FLOP",
                   help="budgets to forecast N*, D*, L* at (default: 10x and 100x the largest fitted budget)")
    p.add_argument("--compare", action="store_true",
                   help="fit the parametric law (Approach 3) to the same runs (below --cut, with it) and compare "
                        "N* and the exponents")
    p.add_argument("--tolerance", type=positive_number, default=0.1,
                   help="with --compare: difference in log10 N* that matters (default 0.1, i.e. 26%%)")
    p.add_argument("--chosen-params", type=positive_number, metavar="N",
                   help="the cost of training N parameters at --chosen-compute: loss given up, deadweight compute")
    p.add_argument("--chosen-compute", type=positive_number, metavar="FLOP", help="the budget of --chosen-params")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    add_sampler_size(p)
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0): the same seed gives the same draws")
    _add_output_options(p, required=False, default="print only, write no files")
    p.set_defaults(handler=_cmd_isoflop)
