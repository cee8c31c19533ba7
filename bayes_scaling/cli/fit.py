"""``bayes-scaling fit``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_figures_option,
    _add_output_options,
    _add_run_table_options,
    _figure_formats,
    _moved,
    _run_table_kwargs,
    add_sampler_size,
    credible_level,
    fit_cache_folder,
    log,
    parse_priors,
    positive_number,
    seed_number,
    training_window_option,
)
from bayes_scaling.io.outputs import output_folder
from bayes_scaling.laws.registry import law_names
from bayes_scaling.options import (
    DEFAULT_LEVEL,
    DEFAULT_WINDOW,
    DISCREPANCIES,
    FRONTIER_DECADES,
    LIKELIHOOD_NAMES,
    POOLING,
)
from bayes_scaling.sampling.settings import SAMPLER_DEFAULTS, SAMPLERS


def _cmd_fit(args: argparse.Namespace) -> dict[str, Any]:
    import matplotlib

    from bayes_scaling.data.datasets import runs_from

    matplotlib.use("Agg")
    from bayes_scaling.fitting import fit
    from bayes_scaling.io.tables import to_markdown, write_table

    priors = parse_priors(args.prior)
    formats = _figure_formats(args)
    cache = fit_cache_folder(args)
    runs = runs_from(args.data, **_run_table_kwargs(args))
    out = Path(args.out)
    with output_folder(out, force=args.force, command="bayes-scaling fit", inputs=[args.data]) as stage:
        log.info("fitting %s (%s likelihood) to %d runs from %s: %d chains x (%d tune + %d draws)",
                 args.law, args.likelihood, len(runs), runs.source, args.chains, args.tune, args.draws)
        result = fit(runs, law=args.law, likelihood=args.likelihood, priors=priors,
                     prior_set=args.priors, pooling=args.pooling, draws=args.draws, tune=args.tune,
                     chains=args.chains, seed=args.seed, sampler=args.sampler, target_accept=args.target_accept,
                     strict=args.strict, progress=sys.stderr.isatty() and not args.quiet,
                     huber_delta=args.huber_delta, discrepancy=args.discrepancy, backtests=not args.no_backtests,
                     window=args.window, cache_dir=cache)
        log.info("sampled in %.1f s (compile %.1f s); writing %s", result.timing["sample_s"],
                 result.timing["compile_s"], out)
        written = [result.save(stage / "fit.nc")]
        summary = result.summary(ci_prob=args.level)
        written += write_table(summary, stage / "summary", formats=("csv", "md"))
        if formats:
            written += _fit_figures(result, runs, args, priors, stage / "figures", formats)
        written = _moved(written, stage, out)
    if not args.json:
        fitted = len(result.runs)
        decades = FRONTIER_DECADES if args.window == "frontier" else args.window
        within = f" (the {fitted} of {len(runs)} within {decades:g} decades of the largest budget)" \
            if fitted < len(runs) else ""
        print(f"{result.law.title} fitted to {fitted} runs of {runs.source}{within} ({result.likelihood.name} "
              f"likelihood)")
        print(to_markdown(summary))
        diag = result.diagnostics
        print(f"diagnostics: {str(diag).splitlines()[0]}"
              + ("" if diag.ok else " — PROBLEMS: see the warning above; these draws may be unreliable"
               + ("" if formats else " (--figures png draws the trace and pair plots)")))
        if result.structural is not None:
            info = result.structural.info
            learned = info.get("internal_backtests", 0)
            how = ("the population of published back-tests" if args.discrepancy == "population" or not learned
                   else f"the population's drift direction, its size rescaled by {learned} back-tests of these runs"
                   if args.discrepancy == "shared"
                   else f"the population, its size rescaled by {learned} back-tests of these runs, either direction"
                   if args.discrepancy == "scaled" else f"the population updated by {learned} back-tests of these runs")
            if learned and "inner_scale" in info:  # how much more such back-tests err than forecasts
                how += f", read as erring λ = {info['inner_scale']:.2f}× as much as its forecasts"
            kept = ("" if not info.get("backtest_cuts") else "; kept to weight laws" if learned else
                    f"; {info['backtest_cuts']} back-tests of these runs kept to weight laws")
            print(f"structural error beyond the data ({how}{kept}): {result.structural.describe()}")
        print(f"wrote {len(written)} files to {out}")
    return {"fit": str(out / "fit.nc"), "law": result.law.name, "likelihood": result.likelihood.name,
            "summary": summary.reset_index().to_dict(orient="records"),
            "diagnostics": result.diagnostics.to_dict(), "timing": result.timing,
            "files": [str(p) for p in written]}


def _fit_figures(result, runs, args: argparse.Namespace, priors, folder: Path, formats) -> list[Path]:
    """Trace, pair, posterior predictive, residuals and prior predictive figures of a fit."""
    import matplotlib.pyplot as plt

    from bayes_scaling.model.spec import prior_predictive
    from bayes_scaling.plots.posterior import (
        plot_pair,
        plot_ppc,
        plot_prior_predictive,
        plot_residuals,
        plot_trace,
    )
    from bayes_scaling.plots.style import save_figure, style

    folder.mkdir()
    written = []
    with style():
        for name, make in (("trace", plot_trace), ("pair", plot_pair), ("ppc", plot_ppc),
                           ("residuals", plot_residuals)):
            fig = make(result)
            written += save_figure(fig, folder / name, formats=formats)
            plt.close(fig)
        check = prior_predictive(runs, law=args.law, likelihood=args.likelihood, priors=priors,
                                 prior_set=args.priors, seed=args.seed)
        fig = plot_prior_predictive(check)
        written += save_figure(fig, folder / "prior_predictive", formats=formats)
        plt.close(fig)
    return written


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("fit", help="fit a scaling law to runs by NUTS; write the fit and summary (figures on request)",
                       description="Fit a scaling law to a dataset (by name) or a CSV/Parquet file of runs. "
                                   "Writes OUT/fit.nc and OUT/summary.csv and .md; with --figures, OUT/figures/ "
                                   "(trace, pair, posterior predictive, residuals and prior predictive).")
    p.add_argument("data", help="dataset name (see 'bayes-scaling datasets') or a file of runs")
    p.add_argument("--law", default="chinchilla", choices=law_names(), help="scaling law (default: chinchilla)")
    p.add_argument("--likelihood", default="student-t", choices=list(LIKELIHOOD_NAMES),
                   help="noise model on log loss (default: student-t)")
    p.add_argument("--pooling", default="shared", choices=POOLING,
                   help="with a group column: shared, partially pooled or separate exponents (default: shared)")
    p.add_argument("--priors", default="default", choices=("default", "literature"),
                   help="data-scaled defaults or priors centred on the published fit (default: default)")
    p.add_argument("--prior", action="append", metavar="NAME=DIST",
                   help="override one prior, e.g. --prior 'alpha=LogNormal(mu=-1.08, sigma=0.2)' (repeatable)")
    add_sampler_size(p, after_tuning=" after tuning")
    p.add_argument("--seed", type=seed_number, default=SAMPLER_DEFAULTS.seed, help=f"random seed (default: {SAMPLER_DEFAULTS.seed})")
    p.add_argument("--sampler", default=SAMPLER_DEFAULTS.sampler, choices=SAMPLERS,
                   help=f"NUTS implementation (default: {SAMPLER_DEFAULTS.sampler})")
    p.add_argument("--target-accept", type=credible_level, default=SAMPLER_DEFAULTS.target_accept,
                   help=f"NUTS target acceptance (default: {SAMPLER_DEFAULTS.target_accept})")
    p.add_argument("--huber-delta", type=positive_number, default=1e-3, help="Huber threshold (default: 1e-3)")
    p.add_argument("--discrepancy", default=DISCREPANCIES[0], choices=DISCREPANCIES,
                   help="the law's structural error beyond the data, drawn from the population learned from "
                        "published back-tests: its size rescaled by back-tests of these runs, the drift's "
                        "direction the one the published datasets share (shared, default) or either direction "
                        "alike (scaled); as is (population); updated by these runs' back-tests, direction "
                        "included (calibrated); or none (the law taken as exact)")
    p.add_argument("--no-backtests", action="store_true",
                   help="skip the refits below compute cuts of the runs (faster; the structural error is then "
                        "the population's alone, and the fit cannot be weighted against other laws in a "
                        "law-averaged forecast)")
    p.add_argument("--cache", metavar="DIR",
                   help="folder where the back-test refits' errors are kept for later fits of the same runs, law, "
                        "priors and settings (default: the user cache folder, or $BAYES_SCALING_FIT_CACHE)")
    p.add_argument("--no-cache", action="store_true", help="refit the back-tests even when they are cached")
    p.add_argument("--window", type=training_window_option, default=DEFAULT_WINDOW, metavar="DECADES|frontier|all",
                   help="which runs the law is fitted to: 'frontier' (default) the runs within 1.5 decades of "
                        "compute below the largest budget when at least 50 lie there, else every run; a number of "
                        "decades; 'all' every run. Near the frontier forecasts beyond the data were better (docs: "
                        "'How honest are the intervals?'); the parameters then describe the runs near the frontier, "
                        "and the compute-optimal allocation comes from the law fitted to every run")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"credible level of the summary intervals (default {DEFAULT_LEVEL:g})")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) when sampling diagnostics fail")
    _add_figures_option(p, default="none", cost="PNG figures take about 4 s, PDF and SVG about 7 s more")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_fit)
