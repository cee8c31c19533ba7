"""``bayes-scaling compare``: LOO, leave-future-out and back-tests of several laws."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_grid_options,
    _add_output_options,
    _add_run_table_options,
    _grid_of,
    _run_table_kwargs,
    fit_cache_folder,
    log,
    positive_int,
    positive_number,
    seed_number,
)
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import check_output_folder, output_folder
from bayes_scaling.options import POOLING


def _cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from bayes_scaling.compare.backtest import backtest
    from bayes_scaling.compare.grid import fit_grid
    from bayes_scaling.compare.lfo import lfo_table
    from bayes_scaling.compare.loo import loo_table
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.io.tables import to_markdown, write_table

    laws, likelihoods = _grid_of(args)
    if len(laws) * len(likelihoods) < 2 and not args.backtest:
        raise InputError(f"nothing to compare: one law and one likelihood ({', '.join(laws)} / {', '.join(likelihoods)}); "
                         f"give several with --laws a,b (or --likelihoods), or --backtest to score one law's forecasts")
    datasets = [runs_from(d, **_run_table_kwargs(args)) for d in args.data]
    out = Path(args.out)
    check_output_folder(out, force=args.force, inputs=args.data)
    cache = fit_cache_folder(args)
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed,
                "pooling": args.pooling}
    payload: dict[str, Any] = {"datasets": [r.source for r in datasets], "loo": [], "backtest": [], "lfo": []}
    loos, tests, lfos = [], [], []
    total = len(datasets) * len(laws) * len(likelihoods)
    done = 0
    for runs in datasets:
        def report(i: int, _: int, key: str, cached: bool, runs=runs, before=done) -> None:
            log.info("[%d/%d] %s: fitted %s to all %d runs%s", before + i, total, runs.source, key, len(runs),
                     " (cached)" if cached else "")

        fits = fit_grid(runs, laws, likelihoods, cache_dir=cache, settings=settings, progress=report)
        done += len(fits)
        if len(fits) > 1:
            loos.append(loo_table(fits).reset_index().assign(dataset=runs.source))
        if args.lfo and len(laws) > 1:
            for lik in likelihoods:
                lfos.append(lfo_table(runs, laws=laws, likelihood=lik, settings=settings,
                                      progress=log.info).reset_index().assign(dataset=runs.source))
        if args.backtest:
            tests.append(backtest(runs, laws=laws, likelihoods=likelihoods, cuts=args.cut or None,
                                  classical=not args.no_classical, bootstrap=args.bootstrap, cache_dir=cache,
                                  settings=settings, progress=log.info).assign(dataset=runs.source))
    loo = pd.concat(loos, ignore_index=True) if loos else None
    bt = pd.concat(tests, ignore_index=True) if tests else None
    lfo = pd.concat(lfos, ignore_index=True) if lfos else None
    with output_folder(out, force=args.force, command="bayes-scaling compare", inputs=args.data) as stage:
        if loo is not None:
            write_table(loo, stage / "loo", index=False, caption="PSIS-LOO comparison")
            payload["loo"] = loo.to_dict(orient="records")
        if bt is not None:
            write_table(bt.drop(columns=["cached"]), stage / "backtest", index=False,
                        caption="Extrapolation back-tests")
            payload["backtest"] = bt.to_dict(orient="records")
        if loo is not None or bt is not None:
            _compare_figures(loo, bt, stage / "figures")
        if lfo is not None:
            write_table(lfo, stage / "lfo", index=False,
                        caption="Leave-future-out comparison (forecasts beyond the cuts)")
            payload["lfo"] = lfo.to_dict(orient="records")
    if not args.json:
        if lfo is not None:
            print("Leave-future-out comparison (forecasts of the runs beyond rolling compute cuts; "
                  "ranks laws by extrapolation):")
            print(to_markdown(lfo, digits=3, index=False))
        if loo is not None:
            print("LOO comparison (ELPD on log loss, higher is better; measures interpolation):")
            print(to_markdown(loo.drop(columns=["dse"]), digits=3, index=False))
            warned = [r.dataset for r in loo.itertuples() if r.n_pareto_k_bad]
            if warned:
                print(f"note: Pareto k > 0.7 for some runs ({', '.join(sorted(set(warned)))}): PSIS-LOO is unreliable "
                      f"for those models; trust the back-tests, or refit without the influential runs.")
        if bt is not None:
            print("Back-tests (fit below the cut, score the runs above):")
            cols = ["dataset", "model", "split", "n_test", "extrapolation_decades", "coverage_50", "coverage_80",
                    "coverage_95", "crps", "lpd", "mae_pct"]
            print(to_markdown(bt[cols], digits=3, index=False))
        print(f"wrote tables and figures to {out}")
    return payload


def _compare_figures(loo, bt, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.plots.calibration import plot_backtest, plot_loo
    from bayes_scaling.plots.style import save_figure, style

    folder.mkdir()
    with style():
        frames = [] if loo is None else [("loo", name, part) for name, part in loo.groupby("dataset", sort=False)]
        frames += [] if bt is None else [("backtest", name, part) for name, part in bt.groupby("dataset", sort=False)]
        for kind, name, part in frames:
            fig = plot_loo(part.set_index("model")) if kind == "loo" else plot_backtest(part)
            fig.axes[0].set_title(f"{fig.axes[0].get_title()}: {name}", fontsize=9)
            save_figure(fig, folder / f"{kind}_{Path(str(name)).stem}")
            plt.close(fig)


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("compare", help="compare scaling laws: LOO with stacking weights, extrapolation back-tests",
                       description="Fit several laws (x likelihoods) to the same runs and compare them by PSIS-LOO "
                                   "(stacking weights, Pareto-k) and, with --backtest, by fitting below compute cuts "
                                   "and scoring the runs above (coverage, CRPS, log predictive density, error), "
                                   "next to the classical Huber fit. Fits are cached: re-running reuses them.")
    _add_grid_options(p, laws="chinchilla,kaplan-nd,compute")
    p.add_argument("--backtest", action="store_true", help="also run extrapolation back-tests")
    p.add_argument("--lfo", action="store_true",
                   help="also rank the laws by leave-future-out forecasts with stacking weights (refits below "
                        "rolling compute cuts)")
    p.add_argument("--cut", type=positive_number, nargs="+", metavar="FLOP", help="compute cuts (default: 50/70/85%% quantiles)")
    p.add_argument("--no-classical", action="store_true", help="leave out the classical Huber baseline")
    p.add_argument("--bootstrap", type=positive_int, default=50, help="bootstrap refits of the classical baseline")
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--cache", help="folder of cached fits (default: the user cache folder, "
                                   "$BAYES_SCALING_FIT_CACHE to choose another)")
    p.add_argument("--pooling", default="shared", choices=POOLING,
                   help="with a group column: shared, partially pooled or separate exponents (default: shared)")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_compare)
