"""The ``bayes-scaling`` command line.

Every subcommand is a thin layer over the public API.  Exit codes: 0 success,
1 the analysis failed, 2 bad input or usage.  ``--json`` prints a machine-readable
result on stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BayesScalingError, InputError
from .intervals import DEFAULT_LEVEL
from .outputs import check_output_folder, free_folder, output_folder
from .datasets import cite, dataset_info, export_dataset, list_datasets, load_dataset, runs_from
from .laws import law_names
from .likelihoods import LIKELIHOODS
from .model import POOLING
from .runs import RunTable
from .sampling import SAMPLERS

__all__ = ["main", "build_parser"]

log = logging.getLogger("bayes_scaling.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors raise instead of exiting, so main() owns exit codes."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def parse_pairs(items: Sequence[str] | None, *, option: str) -> dict[str, str]:
    """Parse ``KEY=VALUE`` items (each may hold several, comma-separated) into a dict."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(",") if item.count("=") > 1 else [item]:
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InputError(f"{option} expects KEY=VALUE, got {part!r}")
            if key.strip() in out:
                raise InputError(f"{option} {key.strip()} is given twice")
            out[key.strip()] = value.strip()
    return out


def _argument_type(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str,
                   name: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, and refuse it unless ``accept`` says yes."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    return parse


positive_number = _argument_type(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0",
                                 "positive_number")
positive_int = _argument_type(int, lambda v: v >= 1, "a whole number ≥ 1", "positive_int")
credible_level = _argument_type(float, lambda v: 0 < v < 1, "a level strictly between 0 and 1 (e.g. 0.9)",
                                "credible_level")
finite_number = _argument_type(float, math.isfinite, "a finite number", "finite_number")


def _add_run_table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--map", action="append", metavar="COL=NAME",
                   help="which of your columns is N, D, C, loss, group or unique_tokens, "
                        "e.g. --map N=n_params --map 'loss=Final loss' (repeatable)")
    p.add_argument("--scale", action="append", metavar="COL=FACTOR",
                   help="unit factor for a column, a number or k/M/B/T, e.g. --scale N=M when "
                        "parameters are in millions (repeatable)")
    p.add_argument("--sep", default=None, help="field delimiter of a text file (default ',')")
    p.add_argument("--duplicates", choices=("error", "drop", "keep"), default="error",
                   help="what to do with repeated runs (default: error)")


def _add_output_options(p: argparse.ArgumentParser, *, required: bool, default: str = "") -> None:
    where = f" (default: {default})" if default else ""
    p.add_argument("--out", required=required,
                   help=f"output folder{where}; it must be empty unless --force")
    p.add_argument("--force", action="store_true", help="replace results in a non-empty output folder")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")


def _add_grid_options(p: argparse.ArgumentParser, *, laws: str) -> None:
    """Datasets, laws and likelihoods to combine, and the sampler's size (compare, batch)."""
    p.add_argument("data", nargs="+", help="dataset name(s) or file(s) of runs")
    p.add_argument("--laws", default=laws, help=f"comma-separated laws (default {laws})")
    p.add_argument("--likelihoods", default="student-t", help="comma-separated likelihoods (default student-t)")
    p.add_argument("--draws", type=positive_int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=positive_int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=positive_int, default=4, help="chains (default 4)")


def _run_table_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "columns": parse_pairs(args.map, option="--map"),
        "scale": parse_pairs(args.scale, option="--scale"),
        "sep": args.sep,
        "duplicates": args.duplicates,
    }


def _cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    table = runs_from(args.file, **_run_table_kwargs(args))
    summary = table.describe()
    if not args.json:
        _print_run_summary(summary)
    return summary


def _print_run_summary(summary: dict[str, Any]) -> None:
    print(f"{summary['source']}: {summary['rows']} runs, all valid")
    print(f"  {'column':<14}{'read from':<22}{'min':>12}{'max':>12}")
    for name, rng in summary["ranges"].items():
        origin = f"derived: {summary['derived'][name]}" if name in summary["derived"] else summary["columns"][name]
        scale = summary["scales"].get(name)
        if scale:
            origin = f"{origin} ×{scale:g}"
        print(f"  {name:<14}{origin:<22}{rng['min']:>12.4g}{rng['max']:>12.4g}")
    meta = [c for c in summary["columns"] if c not in summary["ranges"] and c != "group"]
    if "groups" in summary:
        groups = ", ".join(f"{k} ({v})" for k, v in summary["groups"].items())
        print(f"  groups: {groups}")
    if meta:
        print(f"  metadata kept: {', '.join(meta)}")
    print(f"  fingerprint: {summary['fingerprint'][:16]}")


def _cmd_datasets(args: argparse.Namespace) -> Any:
    action = args.action or "list"
    if action == "list":
        table = list_datasets()
        if not args.json:
            width = max(map(len, table["name"]))
            print(f"{'name':<{width}}  {'kind':<5}  {'rows':>5}  {'storage':<8}  title")
            for row in table.itertuples():
                print(f"{row.name:<{width}}  {row.kind:<5}  {row.rows:>5}  {row.storage:<8}  {row.title}")
            print("\nbayes-scaling datasets show NAME | export NAME -o FILE | cite NAME", file=sys.stderr)
        return {"datasets": table.to_dict(orient="records")}
    if action == "cite":
        text = cite(args.name)
        if not args.json:
            print(text, end="")
        return {"name": args.name, "bibtex": text}
    if action == "export":
        path = export_dataset(args.name, args.out, force=args.force)
        if not args.json:
            print(f"wrote {path}")
        return {"name": args.name, "path": str(path)}
    info = dataset_info(args.name)
    data = load_dataset(args.name)
    payload = info.provenance()
    if isinstance(data, RunTable):
        payload["summary"] = data.describe()
        frame = data.data
    else:
        payload["derived"] = data.attrs["provenance"]["derived"]
        frame = data
    payload["columns"] = list(map(str, frame.columns))
    payload["rows"] = len(frame)
    if not args.json:
        print(f"{info.name}: {info.title}")
        print(f"  kind: {info.kind}, {len(frame)} rows, {info.storage}" + (f" ({info.url})" if info.url else ""))
        for key in ("description", "obtained", "licence"):
            print(f"  {key}: {' '.join(getattr(info, key).split())}")
        print(f"  cite: {', '.join(info.citation)}  (bayes-scaling datasets cite {info.name})")
        if isinstance(data, RunTable):
            _print_run_summary(data.describe())
        else:
            import pandas as pd

            with pd.option_context("display.width", 160, "display.max_columns", 12):
                print(frame.head(10).to_string(max_colwidth=28))
    return payload


def parse_priors(items: Sequence[str] | None) -> dict[str, str]:
    """``--prior alpha='LogNormal(mu=-1.1, sigma=0.3)'`` items into {name: spec}."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise InputError(f"--prior expects NAME=DISTRIBUTION(...), got {item!r}")
        if name.strip() in out:
            raise InputError(f"--prior {name.strip()} is given twice; give each parameter's prior once")
        out[name.strip()] = spec.strip()
    return out


def _cmd_fit(args: argparse.Namespace) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fit import fit, prior_predictive
    from .plots import plot_pair, plot_ppc, plot_prior_predictive, plot_trace, save_figure, style
    from .tables import to_markdown, write_table

    priors = parse_priors(args.prior)
    runs = runs_from(args.data, **_run_table_kwargs(args))
    out = Path(args.out)
    with output_folder(out, force=args.force, command="bayes-scaling fit", inputs=[args.data]) as stage:
        log.info("fitting %s (%s likelihood) to %d runs from %s: %d chains x (%d tune + %d draws)",
                 args.law, args.likelihood, len(runs), runs.source, args.chains, args.tune, args.draws)
        result = fit(runs, law=args.law, likelihood=args.likelihood, priors=priors,
                     prior_set=args.priors, pooling=args.pooling, draws=args.draws, tune=args.tune,
                     chains=args.chains, seed=args.seed, sampler=args.sampler, target_accept=args.target_accept,
                     strict=args.strict, progress=sys.stderr.isatty() and not args.quiet,
                     huber_delta=args.huber_delta, discrepancy=args.discrepancy)
        log.info("sampled in %.1f s (compile %.1f s); writing %s", result.timing["sample_s"],
                 result.timing["compile_s"], out)
        written = [result.save(stage / "fit.nc")]
        summary = result.summary(level=args.level)
        written += write_table(summary, stage / "summary", formats=("csv", "md"))
        (stage / "figures").mkdir()
        with style():
            for name, make in (("trace", plot_trace), ("pair", plot_pair), ("ppc", plot_ppc)):
                fig = make(result)
                written += save_figure(fig, stage / "figures" / name)
                plt.close(fig)
            check = prior_predictive(runs, law=args.law, likelihood=args.likelihood, priors=priors,
                                     prior_set=args.priors, seed=args.seed)
            fig = plot_prior_predictive(check)
            written += save_figure(fig, stage / "figures" / "prior_predictive")
            plt.close(fig)
        written = _moved(written, stage, out)
    if not args.json:
        print(f"{result.law.title} fitted to {len(runs)} runs of {runs.source} ({result.likelihood.name} likelihood)")
        print(to_markdown(summary))
        diag = result.diagnostics
        print(f"diagnostics: {str(diag).splitlines()[0]}"
              + ("" if diag.ok else " — PROBLEMS: see the warning above; these draws may be unreliable"))
        if result.structural is not None:
            se, info = result.structural.summary(), result.structural.info
            print(f"structural error beyond the data ({args.discrepancy}; {info['internal_backtests']} internal "
                  f"back-tests): drift {se.loc['b', 'median']:+.4f} log loss per decade "
                  f"[{se.loc['b', 'q5']:+.4f}, {se.loc['b', 'q95']:+.4f}], spread of the drift "
                  f"{se.loc['tau', 'median']:.4f}, extra scatter {se.loc['omega', 'median']:.4f} per decade")
        print(f"wrote {len(written)} files to {out}")
    return {"fit": str(out / "fit.nc"), "law": result.law.name, "likelihood": result.likelihood.name,
            "summary": summary.reset_index().to_dict(orient="records"),
            "diagnostics": result.diagnostics.to_dict(), "timing": result.timing,
            "files": [str(p) for p in written]}


def _moved(paths: Sequence[Path], stage: Path, out: Path) -> list[Path]:
    """Where files written into a staging folder are once it has moved into place."""
    return [out / Path(p).relative_to(stage) for p in paths]


def _resolve_fit_path(path: str) -> Path:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "fit.nc"
    if not candidate.is_file():
        raise InputError(f"{path}: no fit found (expected a fit.nc file or a folder written by 'bayes-scaling fit')")
    return candidate


def _forecaster_of(sources: list[Path], *, weights: str, group: str | None, seed: int):
    """One fit's Forecaster, or the law average of several fits (of the same runs, one law each)."""
    from .averaging import LawAverage
    from .compare import lfo_weights
    from .fit import load_fit
    from .forecast import Forecaster

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .forecast import compact, forecast_table, target_table
    from .plots import plot_allocation, plot_isoflop, plot_loss_forecast, save_figure, style
    from .tables import to_markdown, write_table

    sources = [_resolve_fit_path(path) for path in args.fit]
    source = sources[0]
    if args.tokens_per_param and args.n_params:
        raise InputError("give --tokens-per-param or --n-params, not both")
    if not args.compute and not args.target_loss:
        raise InputError("nothing to forecast: give --compute BUDGET ... and/or --target-loss LOSS ...")
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
            table = forecast_table(fc, budgets, level=args.level, kind=args.interval, allocation=allocation,
                                   tokens_per_param=args.tokens_per_param, N=args.n_params)
            written += write_table(table, stage / "forecast", index=False,
                                   caption=f"Loss forecasts ({table.attrs['allocation']}): medians and "
                                           f"{args.level:.0%} {args.interval.upper()} intervals")
            payload["allocation"] = table.attrs["allocation"]
            payload["forecast"] = table.to_dict(orient="records")
        if args.target_loss:
            targets = target_table(fc, args.target_loss, level=args.level, kind=args.interval)
            written += write_table(targets, stage / "target_loss", index=False,
                                   caption=f"Compute needed to reach a target loss ({args.level:.0%} intervals)")
            payload["targets"] = targets.to_dict(orient="records")
        runs = result.runs
        lo = min(runs.C.min(), *(budgets or [runs.C.min()])) / 3
        hi = max(runs.C.max(), *(budgets or [runs.C.max()])) * 3
        grid = np.geomspace(lo, hi, 60)
        with style():
            figures = [("loss_forecast", lambda: plot_loss_forecast(fc, grid, runs=runs))]
            if {"N", "D"} <= set(fc.law.inputs):
                figures += [("allocation", lambda: plot_allocation(fc, grid)),
                            ("isoflop", lambda: plot_isoflop(fc, runs=runs))]
            (stage / "figures").mkdir()
            for name, make in figures:
                fig = make()
                written += save_figure(fig, stage / "figures" / name)
                plt.close(fig)
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


def _cmd_energy(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from .energy import Carbon, EnergyModel, budget_table, calibrate, growth_scenario, target_loss_table
    from .forecast import compact
    from .tables import to_markdown, write_table

    carbon = Carbon.parse(args.carbon_intensity) if args.carbon_intensity else None
    precisions = ["bf16", "fp8"] if args.precision == "both" else [args.precision]
    if args.target_loss and not args.fit:
        raise InputError("--target-loss needs --fit FIT_DIR (the loss posterior that says how much compute)")
    if args.tokens_served and not args.params and not (args.fit and args.target_loss):
        raise InputError("--tokens-served needs --params N (the model that serves them), or --fit and "
                         "--target-loss (the lifetime-optimal model that reaches that loss)")
    years = args.year or ([] if args.hardware else [2025])
    out = Path(args.out) if args.out else None
    inputs = [_resolve_fit_path(args.fit)] if args.fit else []
    if out is not None:
        check_output_folder(out, force=args.force, inputs=inputs)
    model = EnergyModel.fit(draws=args.draws, seed=args.seed)
    h = model.trend.yearly_factor
    payload: dict[str, Any] = {
        "level": args.level,
        "hardware_trend": {"yearly_factor": [float(v) for v in np.quantile(h, [0.5, (1 - args.level) / 2,
                                                                               (1 + args.level) / 2])],
                           "doubling_time_years": [float(v) for v in np.quantile(model.trend.doubling_time, [
                               0.5, (1 - args.level) / 2, (1 + args.level) / 2])]},
    }
    payload["factors"] = energy_factor_summary(model, args.level, year=(years or [2025])[0])
    tables: dict[str, Any] = {}
    if args.flop:
        tables["energy_budgets"] = budget_table(model, args.flop, years=years, hardware=args.hardware,
                                                precisions=precisions, carbon=carbon, level=args.level)
    if args.target_loss:
        from .fit import load_fit
        from .forecast import Forecaster

        forecaster = Forecaster(load_fit(inputs[0]))
        for y in (years or [None]):
            key = "energy_targets" + (f"_{y:g}" if y else "")
            tables[key] = target_loss_table(model, forecaster, args.target_loss, year=y, hardware=args.hardware,
                                            precision=precisions[0], carbon=carbon, level=args.level)
    if args.tokens_served or args.inference_calibration or args.outlook:
        _inference_tables(args, model, years, precisions, inputs, tables, payload)
    if args.growth:
        g = growth_scenario(model, compute_growth=tuple(args.compute_growth), seed=args.seed)
        payload["growth"] = {k: [float(x) for x in np.quantile(v, [0.5, (1 - args.level) / 2, (1 + args.level) / 2])]
                             for k, v in g.items()}
    if args.calibration:
        tables["energy_calibration"] = calibrate(draws=args.draws, seed=args.seed)
        payload["calibration"] = {"coverage": tables["energy_calibration"].attrs["coverage"],
                                  "median_abs_log_error": tables["energy_calibration"].attrs["median_abs_log_error"]}
    for name, table in tables.items():
        payload[name] = table.to_dict(orient="records")
    if out is not None:
        with output_folder(out, force=args.force, command="bayes-scaling energy", inputs=inputs) as stage:
            for name, table in tables.items():
                write_table(table, stage / name, index=False, caption=name.replace("_", " "))
            _energy_figures(model, stage, tables.get("energy_calibration"), args.level,
                            inference=tables.get("inference_calibration"))
    if not args.json:
        med, lo, hi = payload["hardware_trend"]["yearly_factor"]
        dmed, dlo, dhi = payload["hardware_trend"]["doubling_time_years"]
        print(f"Hardware efficiency (peak FLOP/J) improves x{med:.2f} per year [{lo:.2f}, {hi:.2f}], "
              f"doubling every {dmed:.1f} years [{dlo:.1f}, {dhi:.1f}] ({args.level:.0%} intervals)")
        print("Factors (median [interval]; posterior predictive for a new run, or the stated prior):")
        for name, (fmed, flo, fhi, kind) in payload["factors"].items():
            print(f"  {name:<28} {fmed:.3g} [{flo:.3g}, {fhi:.3g}]  ({kind})")
        for name, table in tables.items():
            if name == "inference_calibration":
                continue  # one row per measured configuration: summarised below
            print(f"\n{name.replace('_', ' ')} (medians [{args.level:.0%} intervals]):")
            print(to_markdown(compact(table.drop(columns=[c for c in table.columns if c.startswith("inside_")])),
                              index=False))
        if "crossover_tokens" in payload:
            c = payload["crossover_tokens"]
            print(f"serving overtakes training after {c[0]:.3g} tokens [{c[1]:.3g}, {c[2]:.3g}]")
        if "growth" in payload:
            g = payload["growth"]["energy_growth"]
            print(f"frontier training energy grows x{g[0]:.2f} per year [{g[1]:.2f}, {g[2]:.2f}] "
                  f"(compute x{payload['growth']['compute_growth'][0]:.2f} / efficiency "
                  f"x{payload['growth']['efficiency_growth'][0]:.2f})")
        if "calibration" in payload:
            cal = payload["calibration"]
            print(f"calibration: {cal['coverage']['0.9']:.0%} of reported energies inside the 90% interval, "
                  f"{cal['coverage']['0.5']:.0%} inside 50%; median |log error| {cal['median_abs_log_error']:.2f}")
        if "inference_calibration_summary" in payload:
            cal = payload["inference_calibration_summary"]
            print("inference energy, leave-one-model-out (90% intervals of models the fit has not seen):")
            for key, cov in cal["coverage"].items():
                print(f"  {key:<36} {cov:.0%} inside; median |log error| {cal['median_abs_log_error'][key]:.2f}")
        if "outlook_crossover" in payload:
            c, last = payload["outlook_crossover"], max(tables["outlook"]["year"])

            def year(v):
                return f"{v:.0f}" if math.isfinite(v) else f"after {last}"
            print(f"serving a new frontier model outweighs training it from {year(c['median'])} "
                  f"[{year(c['lower'])}, {year(c['upper'])}]; probability by {last}: {c[f'p_by_{last}']:.0%} "
                  f"(a scenario: tokens served {args.outlook[0]:.3g}-{args.outlook[1]:.3g} in the first year, "
                  f"90%; see bayes_scaling.outlook)")
        if "inference_basis" in payload:
            print(f"serving energy per token: {payload['inference_basis']}")
        if out is None and not tables:
            print("ask for --flop, --target-loss (with --fit), --tokens-served (with --params), --growth or "
                  "--calibration; --out DIR writes tables and figures")
        elif out is not None:
            print(f"wrote tables and figures to {out}")
    return payload


def _inference_tables(args: argparse.Namespace, model, years, precisions, inputs, tables: dict[str, Any],
                      payload: dict[str, Any]) -> None:
    """Serving energy of a model, the lifetime-optimal allocation, and the measured model's calibration."""
    import numpy as np

    from .energy import inference_table
    from .inference import InferenceEnergy, leave_one_model_out

    from .remote import RemoteDataError

    measured = None
    if args.inference_basis == "measured" or args.objective == "energy":
        log.info("fitting the inference-energy model to the ML.ENERGY measurements")
        try:
            measured = InferenceEnergy.fit(draws=max(250, args.draws // 4), seed=args.seed)
        except RemoteDataError as exc:
            raise RemoteDataError(f"measured serving energy needs the ML.ENERGY measurements (dataset "
                                  f"ml-energy-llm): {exc} Or use the stated prior: --inference-basis prior.") from None
    rng = np.random.default_rng([args.seed, 5])
    serving = {"gpu": args.gpu, "precision": precisions[0], "batch": args.batch, "scope": "facility",
               "seed": args.seed}
    if args.tokens_served and args.params:
        per_token = basis = None
        if measured is not None:
            per_token = measured.joules_per_token(args.params, total_params=args.total_params, pue=model.pue(rng),
                                                  **serving)
            basis = (f"measured (ML.ENERGY, {args.gpu}, {precisions[0]}, batch {args.batch:g}) × host share × PUE")
        inf = inference_table(model, args.params, args.tokens_served, training_flop=(args.flop or [None])[0],
                              year=(years or [None])[0], hardware=args.hardware, precision=precisions[0],
                              level=args.level, per_token=per_token,
                              **({"basis": basis} if basis else {}))
        tables["energy_inference"] = inf
        payload["joules_per_token"] = inf.attrs["joules_per_token"]
        payload["inference_basis"] = inf.attrs["basis"]
        if "crossover_tokens" in inf.attrs:
            payload["crossover_tokens"] = inf.attrs["crossover_tokens"]
    if args.tokens_served and args.fit and args.target_loss:
        from .fit import load_fit
        from .forecast import Forecaster
        from .lifetime import ServingCost, lifetime_table

        cost = None
        if args.objective == "energy":
            n_ref = 70e9
            cost = ServingCost(joules_per_flop=model.joules_per_flop(year=(years or [None])[0], hardware=args.hardware,
                                                                     precision=precisions[0]),
                               joules_per_token_ref=measured.joules_per_token(n_ref, pue=model.pue(rng), **serving),
                               slope=measured.draws["b"][:, 0], n_ref=n_ref)
        fc = Forecaster(load_fit(inputs[0]), max_draws=1000, seed=args.seed)
        for target in args.target_loss:
            key = f"lifetime_loss_{target:g}".replace(".", "_")
            tables[key] = lifetime_table(fc, target_loss=target, tokens_served=args.tokens_served, cost=cost,
                                         level=args.level)
    if args.outlook:
        from .outlook import serving_outlook

        span = range(int(min(args.year)), int(max(args.year)) + 1) if args.year and len(args.year) > 1 else \
            range(2025, 2031)
        table = serving_outlook(model, measured, tokens_served=tuple(args.outlook), years=span,
                                compute_growth=tuple(args.compute_growth), level=args.level, seed=args.seed)
        tables["outlook"] = table
        payload["outlook_crossover"] = table.attrs["crossover"]
        payload["outlook_assumptions"] = table.attrs["assumptions"]
    if args.inference_calibration:
        lomo = leave_one_model_out(draws=max(250, args.draws // 4), seed=args.seed, progress=log.info)
        tables["inference_calibration"] = lomo
        payload["inference_calibration_summary"] = {"coverage": lomo.attrs["coverage"],
                                            "median_abs_log_error": lomo.attrs["median_abs_log_error"]}


def energy_factor_summary(model, level: float, *, year: float = 2025) -> dict[str, tuple[float, float, float, str]]:
    """Median and interval of every energy factor, and whether it is a posterior or a prior."""
    import numpy as np
    from scipy import special

    from .energy import INFERENCE_MFU

    rng = np.random.default_rng(0)
    q = [0.5, (1 - level) / 2, (1 + level) / 2]
    factors = {
        "training utilization (MFU)": (model.utilization(rng), "posterior predictive"),
        "power / TDP": (model.power_ratio(rng), "prior"),
        "PUE": (model.pue(rng), "prior"),
        "inference utilization": (special.expit(rng.normal(*INFERENCE_MFU, model.draws)), "prior"),
        "FP8 / BF16 peak ratio": (10 ** model.trend.fp8_ratio.predictive(rng), "posterior predictive"),
        f"FLOP/J of a new {year:g} chip": (model.trend.new_chip(year, rng), "posterior predictive"),
    }
    return {k: (*(float(x) for x in np.quantile(v, q)), kind) for k, (v, kind) in factors.items()}


def _energy_figures(model, out: Path, calibration, level: float, *, inference=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .datasets import load_dataset
    from .plots import (plot_calibration, plot_efficiency_trend, plot_energy_vs_compute, plot_inference_calibration,
                        save_figure, style)

    (out / "figures").mkdir()
    with style():
        figures = [("energy_vs_compute", lambda: plot_energy_vs_compute(
                        model, np.geomspace(1e21, 1e27, 40), level=level, published=load_dataset("training-energy"))),
                   ("efficiency_trend", lambda: plot_efficiency_trend(model, level=level))]
        if calibration is not None:
            figures.append(("energy_calibration", lambda: plot_calibration(calibration)))
        if inference is not None:
            figures.append(("inference_calibration", lambda: plot_inference_calibration(inference)))
        for name, make in figures:
            fig = make()
            save_figure(fig, out / "figures" / name)
            plt.close(fig)


def _cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from .compare import backtest, cached_fit, default_fit_cache, lfo_table, loo_table
    from .tables import to_markdown, write_table

    laws = _listed(args.laws, law_names(), "--laws")
    likelihoods = _listed(args.likelihoods, list(LIKELIHOODS), "--likelihoods")
    datasets = [runs_from(d, **_run_table_kwargs(args)) for d in args.data]
    out = Path(args.out)
    check_output_folder(out, force=args.force, inputs=args.data)
    cache = Path(args.cache) if args.cache else default_fit_cache()
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed,
                "pooling": args.pooling}
    payload: dict[str, Any] = {"datasets": [r.source for r in datasets], "loo": [], "backtest": [], "lfo": []}
    loos, tests, lfos = [], [], []
    total = len(datasets) * len(laws) * len(likelihoods)
    done = 0
    for runs in datasets:
        fits = {}
        for law in laws:
            for lik in likelihoods:
                result, cached = cached_fit(runs, law=law, likelihood=lik, cache_dir=cache, settings=settings)
                done += 1
                log.info("[%d/%d] %s: fitted %s / %s to all %d runs%s", done, total, runs.source, law, lik,
                         len(runs), " (cached)" if cached else "")
                fits[f"{law} / {lik}"] = result
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

    from .plots import plot_backtest, plot_loo, save_figure, style

    folder.mkdir()
    with style():
        frames = [] if loo is None else [("loo", name, part) for name, part in loo.groupby("dataset", sort=False)]
        frames += [] if bt is None else [("backtest", name, part) for name, part in bt.groupby("dataset", sort=False)]
        for kind, name, part in frames:
            fig = plot_loo(part.set_index("model")) if kind == "loo" else plot_backtest(part)
            fig.axes[0].set_title(f"{fig.axes[0].get_title()}: {name}", fontsize=9)
            save_figure(fig, folder / f"{kind}_{Path(str(name)).stem}")
            plt.close(fig)


def _listed(text: str, allowed: Sequence[str], option: str) -> list[str]:
    """Comma-separated names, each one of ``allowed``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise InputError(f"unknown {option.lstrip('-').rstrip('s')} {name!r} in {option}; choose from "
                             f"{', '.join(allowed)}")
    if not names:
        raise InputError(f"{option} names nothing")
    return names


def _cmd_batch(args: argparse.Namespace) -> dict[str, Any]:
    from .batch import run_batch, tasks_for
    from .tables import to_markdown, write_table

    laws = _listed(args.laws, law_names(), "--laws")
    likelihoods = _listed(args.likelihoods, list(LIKELIHOODS), "--likelihoods")
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


def _cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    import time

    import pandas as pd

    from .forecast import compact
    from .report import load_config, run_report
    from .tables import to_markdown

    config = load_config(args.config)
    start = time.perf_counter()
    manifest = run_report(config, args.out, force=args.force, config_path=args.config)
    out = Path(args.out)
    if not args.json:
        forecast = pd.read_csv(out / "tables" / "forecast.csv")
        columns = [c for c in forecast.columns if c.split("_")[0] in ("C", "N", "D", "tokens", "loss")
                   and not c.startswith("loss_pred")]
        print(f"\nHeadline forecast ({manifest['forecast']['by']} on {config.data}; medians "
              f"[{config.level:.0%} intervals]):")
        print(to_markdown(compact(forecast[columns]), index=False))
        energy = pd.read_csv(out / "tables" / "energy_budgets.csv")
        first, last = config.years[0], config.years[-1]
        keep = energy[energy["hardware"].isin([f"new chip, {first:g}", f"new chip, {last:g}"])] if not config.hardware \
            else energy
        print(f"Training energy (MWh) on the expected hardware of {first:g} and {last:g}:")
        print(to_markdown(compact(keep[["flop", "hardware", "energy_mwh", "energy_mwh_lower", "energy_mwh_upper"]]),
                          index=False))
        print(f"report written to {out / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return manifest


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-scaling`` (exposed for documentation and tests)."""
    parser = _Parser(
        prog="bayes-scaling",
        description="Bayesian analysis of neural scaling laws and of AI training energy.",
        epilog="Exit codes: 0 success, 1 analysis failed, 2 bad input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (no progress, no warnings)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("report", help="the whole analysis: fit, compare, forecast, energy -> a report folder",
                       description="Fit the default law to the bundled Chinchilla runs (or the data of --config), "
                                   "compare laws, forecast loss and allocation for 1e22-1e27 FLOP and the training "
                                   "energy for 2025-2030, and write index.html, figures/, tables/, references.bib, "
                                   "fit.nc and manifest.json. Every choice can be set in a TOML file (see "
                                   "bayes_scaling.report.ReportConfig).")
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--out", default="report", help="output folder (default: report); must be empty unless --force")
    p.add_argument("--force", action="store_true", help="replace results in a non-empty output folder")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_cmd_report)

    p = sub.add_parser("validate", help="read and check a table of training runs",
                       description="Read a CSV/TSV/Parquet table of training runs, check every value, "
                                   "and print what was read (rows, ranges, derived columns) or every error.")
    p.add_argument("file", help="CSV, TSV or Parquet file of runs")
    _add_run_table_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("datasets", help="list, show, export or cite the bundled and remote datasets",
                       description="Datasets with provenance. Remote ones are downloaded on first use and "
                                   "cached (set BAYES_SCALING_DATA_DIR to choose the cache folder).")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_cmd_datasets, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    a = actions.add_parser("list", help="every dataset (the default)")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("show", help="provenance and a summary of one dataset")
    a.add_argument("name")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("export", help="write a dataset (with derived columns) to CSV")
    a.add_argument("name")
    a.add_argument("-o", "--out", required=True, help="CSV file to write")
    a.add_argument("--force", action="store_true", help="replace an existing file")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("cite", help="BibTeX for a dataset's sources")
    a.add_argument("name")
    a.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("fit", help="fit a scaling law to runs by NUTS and write the fit, summary and figures",
                       description="Fit a scaling law to a dataset (by name) or a CSV/Parquet file of runs. "
                                   "Writes OUT/fit.nc, OUT/summary.csv and .md, and OUT/figures/ "
                                   "(trace, pair, ppc as PNG, PDF, SVG).")
    p.add_argument("data", help="dataset name (see 'bayes-scaling datasets') or a file of runs")
    p.add_argument("--law", default="chinchilla", choices=law_names(), help="scaling law (default: chinchilla)")
    p.add_argument("--likelihood", default="student-t", choices=list(LIKELIHOODS),
                   help="noise model on log loss (default: student-t)")
    p.add_argument("--pooling", default="shared", choices=POOLING,
                   help="with a group column: shared, partially pooled or separate exponents (default: shared)")
    p.add_argument("--priors", default="default", choices=("default", "literature"),
                   help="data-scaled defaults or priors centred on the published fit (default: default)")
    p.add_argument("--prior", action="append", metavar="NAME=DIST",
                   help="override one prior, e.g. --prior 'alpha=LogNormal(mu=-1.08, sigma=0.2)' (repeatable)")
    p.add_argument("--draws", type=positive_int, default=1000, help="draws per chain after tuning (default: 1000)")
    p.add_argument("--tune", type=positive_int, default=1000, help="tuning steps per chain (default: 1000)")
    p.add_argument("--chains", type=positive_int, default=4, help="chains (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--sampler", default="auto", choices=SAMPLERS, help="NUTS implementation (default: auto)")
    p.add_argument("--target-accept", type=credible_level, default=0.9, help="NUTS target acceptance (default: 0.9)")
    p.add_argument("--huber-delta", type=positive_number, default=1e-3, help="Huber threshold (default: 1e-3)")
    p.add_argument("--discrepancy", default="calibrated", choices=("calibrated", "population", "none"),
                   help="the law's structural error beyond the data: learned from published back-tests and "
                        "updated by back-tests of these runs (calibrated, default), the published population "
                        "alone, or none (the law taken as exact)")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"credible level of the summary intervals (default {DEFAULT_LEVEL:g})")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) when sampling diagnostics fail")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_fit)

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
    p.add_argument("--seed", type=int, default=0, help="seed of the predictive noise draws")
    _add_output_options(p, required=False, default="FIT_DIR/forecast")
    p.set_defaults(handler=_cmd_forecast)

    p = sub.add_parser("energy", help="training and inference energy (MWh) and emissions, with intervals",
                       description="Energy = FLOP / (peak FLOP/J x utilization) x (power/TDP) x PUE, every factor "
                                   "uncertain (see bayes_scaling.energy for the priors and their sources).")
    p.add_argument("--flop", type=positive_number, nargs="+", help="training compute budgets (FLOP)")
    p.add_argument("--year", type=finite_number, nargs="+", help="year(s) of the hardware: a new chip of that year "
                                                           "(default 2025 unless --hardware)")
    p.add_argument("--hardware", help="a named chip from the accelerators dataset, e.g. 'H100 SXM5'")
    p.add_argument("--precision", choices=("bf16", "fp8", "both"), default="bf16", help="peak rate used")
    p.add_argument("--carbon-intensity", metavar="KG_PER_KWH[:SD]", help="e.g. 0.4 or 0.4:0.1 (kg CO2e/kWh)")
    p.add_argument("--target-loss", type=positive_number, nargs="+", help="energy to reach these losses (needs --fit)")
    p.add_argument("--fit", help="fit folder or fit.nc for --target-loss")
    p.add_argument("--params", type=positive_number,
                   help="active parameters of the serving model, for --tokens-served")
    p.add_argument("--total-params", type=positive_number,
                   help="total parameters of a mixture-of-experts serving model (default: --params)")
    p.add_argument("--gpu", choices=("H100", "B200"), default="H100", help="serving GPU (default H100)")
    p.add_argument("--batch", type=positive_number, default=64.0,
                   help="sequences served together (default 64; measured 7-4000)")
    p.add_argument("--inference-basis", choices=("measured", "prior"), default="measured",
                   help="serving energy from the ML.ENERGY measurements (default) or the stated 2·N-FLOP prior")
    p.add_argument("--objective", choices=("compute", "energy"), default="compute",
                   help="with --fit, --target-loss and --tokens-served: the lifetime-optimal model minimises "
                        "training + serving compute (default) or energy")
    p.add_argument("--outlook", type=positive_number, nargs=2, metavar=("LOW", "HIGH"),
                   help="training vs serving energy of new frontier models by year (--year FIRST LAST, default "
                        "2025-2030), given a 90%% interval of the tokens such a model serves in its first year "
                        "(an assumption: there is no data for it)")
    p.add_argument("--inference-calibration", action="store_true",
                   help="leave-one-model-out check of the measured inference-energy model")
    p.add_argument("--tokens-served", type=positive_number, nargs="+", help="tokens served, for inference energy")
    p.add_argument("--growth", action="store_true", help="yearly growth of frontier training energy")
    p.add_argument("--compute-growth", type=positive_number, nargs=2, default=(4.0, 5.0), metavar=("LOW", "HIGH"),
                   help="90%% interval of yearly training-compute growth (default 4 5)")
    p.add_argument("--calibration", action="store_true", help="leave-one-out check against published runs")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    p.add_argument("--draws", type=positive_int, default=4000, help="Monte Carlo draws (default 4000)")
    p.add_argument("--seed", type=int, default=0)
    _add_output_options(p, required=False, default="print only, write no files")
    p.set_defaults(handler=_cmd_energy)

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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", help="folder of cached fits (default: the user cache folder, "
                                   "$BAYES_SCALING_FIT_CACHE to choose another)")
    p.add_argument("--pooling", default="shared", choices=POOLING,
                   help="with a group column: shared, partially pooled or separate exponents (default: shared)")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_compare)

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
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    p.add_argument("--discrepancy", default="calibrated", choices=("calibrated", "population", "none"),
                   help="structural error of each fit (default calibrated)")
    p.add_argument("--executor", choices=("local", "joblib"), default="local",
                   help="where the fits run without --dask (default: this process)")
    p.add_argument("--jobs", type=positive_int, default=2, help="worker processes for --executor joblib")
    p.add_argument("--dask", metavar="SCHEDULER", help="run on the Dask cluster at this address, e.g. tcp://10.0.0.5:8786")
    _add_output_options(p, required=True)
    _add_run_table_options(p)
    p.set_defaults(handler=_cmd_batch)
    return parser


class _Formatter(logging.Formatter):
    """Progress as plain lines; warnings and errors with their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


@contextlib.contextmanager
def _logging_to_stderr(verbose: int, quiet: bool) -> Iterator[None]:
    """Route the library's log records to stderr while a command runs; restore the loggers after.

    (A handler left behind would hold a stream that a caller, e.g. a test harness, closes.)
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("bayes_scaling")
    saved = (list(root.handlers), root.level)
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.setLevel(level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that output folders are cleaned up (like Ctrl-C)."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    def raise_terminated(signum, frame):
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (e.g. a test runner's worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], Any] = args.handler
    with _logging_to_stderr(args.verbose, args.quiet), _warnings_to_stderr(args.quiet) as messages, \
            _terminate_as_exception():
        warnings.simplefilter("always")
        # pip-installed PyTensor cannot link BLAS; our models use none, so this is noise.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        try:
            result = handler(args)
        except BayesScalingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted: nothing was written (an earlier result folder is unchanged)", file=sys.stderr)
            return 130
        except _Terminated:
            print("terminated: nothing was written (an earlier result folder is unchanged)", file=sys.stderr)
            return 143
        except OSError as exc:  # a file the user named cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
            return EXIT_USAGE
        except Exception as exc:  # a bug: say so plainly; -v shows where
            print(f"error: unexpected {type(exc).__name__}: {exc}\nThis is a bug in bayes-scaling "
                  f"{__version__}; please report it with the command line "
                  f"{'and the traceback above' if args.verbose else '(rerun with -v for the traceback)'}.",
                  file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
            return EXIT_FAILED
    if getattr(args, "json", False):
        payload = dict(result) if isinstance(result, dict) else {"result": result}
        payload["warnings"] = messages
        print(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False))
    return EXIT_OK


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def _warnings_to_stderr(quiet: bool) -> Iterator[list[str]]:
    """Print each warning once, when it happens, as ``warning: …``; yield the list of messages
    (for ``--json``).  Deprecation noise from dependencies is dropped."""
    noise = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    messages: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if issubclass(category, noise) or text in messages:
            return
        messages.append(text)
        if not quiet:
            print(f"warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield messages


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
