"""``bayes-scaling energy``: training and serving energy with intervals."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from bayes_scaling.cli._common import (
    _add_output_options,
    _resolve_fit_path,
    credible_level,
    finite_number,
    log,
    positive_int,
    positive_number,
    seed_number,
)
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import check_output_folder, output_folder
from bayes_scaling.options import DEFAULT_LEVEL


def _cmd_energy(args: argparse.Namespace) -> dict[str, Any]:

    from bayes_scaling.energy.calibration import calibrate, calibration_summary
    from bayes_scaling.energy.tables import budget_table, run_table, target_loss_table
    from bayes_scaling.energy.training import Carbon, EnergyModel, growth_scenario
    from bayes_scaling.energy.utilization import TrainingRun
    from bayes_scaling.io.tables import write_table

    carbon = Carbon.parse(args.carbon_intensity) if args.carbon_intensity else None
    precisions = ["bf16", "fp8"] if args.precision == "both" else [args.precision]
    if args.target_loss and not args.fit:
        raise InputError("--target-loss needs --fit FIT_DIR (the loss posterior that says how much compute)")
    if args.tokens_served and not args.params and not (args.fit and args.target_loss):
        raise InputError("--tokens-served needs --params N (the model that serves them), or --fit and "
                         "--target-loss (the lifetime-optimal model that reaches that loss)")
    years = args.year or ([] if args.hardware else [2025])
    if args.hardware and args.year and len(args.year) > 1:
        raise InputError("with --hardware, --year is the year of the run: give one")
    run = TrainingRun(active_params=args.params, total_params=args.total_params, devices=args.devices,
                      year=args.year[0] if args.hardware and args.year else None,
                      precision="fp8" if args.precision == "fp8" else "bf16")
    out = Path(args.out) if args.out else None
    inputs = [_resolve_fit_path(args.fit)] if args.fit else []
    if out is not None:
        check_output_folder(out, force=args.force, inputs=inputs)
    model = EnergyModel.fit(draws=args.draws, seed=args.seed)
    h = model.trend.yearly_factor
    payload: dict[str, Any] = {
        "level": args.level,
        "hardware_trend": {"yearly_factor": _median_lower_upper(h, args.level),
                           "doubling_time_years": _median_lower_upper(model.trend.doubling_time, args.level)},
    }
    payload["factors"] = energy_factor_summary(model, args.level, year=(years or [2025])[0])
    tables: dict[str, Any] = {}
    if args.flop:
        tables["energy_budgets"] = budget_table(model, args.flop, years=years, hardware=args.hardware,
                                                precisions=precisions, carbon=carbon, level=args.level, run=run)
        tables["training_runs"] = run_table(model, args.flop, years=years, hardware=args.hardware,
                                            precisions=precisions, run=run, level=args.level)
    if args.target_loss:
        from bayes_scaling.forecast.forecaster import Forecaster
        from bayes_scaling.posterior.load import load_fit

        forecaster = Forecaster(load_fit(inputs[0]))
        for y in (years or [None]):
            key = "energy_targets" + (f"_{y:g}" if y else "")
            tables[key] = target_loss_table(model, forecaster, args.target_loss, year=y, hardware=args.hardware,
                                            precision=precisions[0], carbon=carbon, level=args.level)
    if args.tokens_served or args.inference_calibration or args.outlook:
        _inference_tables(args, model, years, precisions, inputs, tables, payload)
    if args.growth:
        g = growth_scenario(model, compute_growth=tuple(args.compute_growth), seed=args.seed)
        payload["growth"] = {k: _median_lower_upper(v, args.level) for k, v in g.items()}
    if args.calibration:
        tables["energy_calibration"] = calibrate(draws=min(args.draws, 2000), seed=args.seed,
                                                 holdout=args.calibration, progress=log.info)
        tables["energy_calibration_summary"] = calibration_summary(tables["energy_calibration"])
        payload["calibration_holdout"] = args.calibration
    for name, table in tables.items():
        payload[name] = table.to_dict(orient="records")
    if out is not None:
        with output_folder(out, force=args.force, command="bayes-scaling energy", inputs=inputs) as stage:
            for name, table in tables.items():
                write_table(table, stage / name, index=False, caption=name.replace("_", " "))
            _energy_figures(model, stage, tables.get("energy_calibration"), args.level,
                            inference=tables.get("inference_calibration"))
    if not args.json:
        _print_energy(args, payload, tables, out)
    return payload


def _print_energy(args: argparse.Namespace, payload: dict[str, Any], tables: dict[str, Any], out: Path | None) -> None:
    """The energy command's results as text."""
    from bayes_scaling.forecast.tables import compact
    from bayes_scaling.io.tables import to_markdown

    med, lo, hi = payload["hardware_trend"]["yearly_factor"]
    dmed, dlo, dhi = payload["hardware_trend"]["doubling_time_years"]
    print(f"Hardware efficiency (peak FLOP/J) improves x{med:.2f} per year [{lo:.2f}, {hi:.2f}], "
          f"doubling every {dmed:.1f} years [{dlo:.1f}, {dhi:.1f}] ({args.level:.0%} intervals)")
    print("Factors (median [interval]; posterior predictive for a new run, or the stated prior):")
    for name, (fmed, flo, fhi, kind) in payload["factors"].items():
        print(f"  {name:<28} {fmed:.3g} [{flo:.3g}, {fhi:.3g}]  ({kind})")
    for name, table in tables.items():
        if name in ("inference_calibration", "energy_calibration"):
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
    if "calibration_holdout" in payload:
        summary = tables["energy_calibration_summary"]
        for r in summary[summary["group"] == "all"].to_dict(orient="records"):
            what = {"device_hours": "device-hours", "energy_mwh": "energies"}.get(r["quantity"], r["quantity"])
            print(f"calibration (leave one {payload['calibration_holdout']} out): {r['coverage_90']:.0%} of "
                  f"{r['runs']} reported {what} inside the 90% interval, {r['coverage_50']:.0%} inside 50%; "
                  f"median reported / forecast {r['median_ratio']:.2f}")
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
              f"90%; see bayes_scaling.energy.outlook)")
    if "inference_basis" in payload:
        print(f"serving energy per token: {payload['inference_basis']}")
    if out is None and not tables:
        print("ask for --flop, --target-loss (with --fit), --tokens-served (with --params), --growth or "
              "--calibration; --out DIR writes tables and figures")
    elif out is not None:
        print(f"wrote tables and figures to {out}")


def _inference_tables(args: argparse.Namespace, model, years, precisions, inputs, tables: dict[str, Any],
                      payload: dict[str, Any]) -> None:
    """Serving energy of a model, the lifetime-optimal allocation, and the measured model's calibration."""
    import numpy as np

    from bayes_scaling.data.remote import RemoteDataError
    from bayes_scaling.energy.serving import InferenceEnergy, leave_one_model_out
    from bayes_scaling.energy.tables import inference_table

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
        from bayes_scaling.forecast.forecaster import Forecaster
        from bayes_scaling.forecast.lifetime import ServingCost, lifetime_table
        from bayes_scaling.posterior.load import load_fit

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
        from bayes_scaling.energy.outlook import serving_outlook

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

    from bayes_scaling.energy.training import INFERENCE_MFU

    rng = np.random.default_rng(0)
    factors = {
        "training utilization (MFU, a run of 1e24 FLOP)": (model.utilization(rng, year=year, flop=1e24),
                                                            "posterior predictive"),
        "power / TDP": (model.power_ratio(rng), "prior"),
        "PUE": (model.pue(rng), "prior"),
        "inference utilization": (special.expit(rng.normal(*INFERENCE_MFU, model.draws)), "prior"),
        "FP8 / BF16 peak ratio": (10 ** model.trend.fp8_ratio.predictive(rng), "posterior predictive"),
        f"FLOP/J of a new {year:g} chip": (model.trend.new_chip(year, rng), "posterior predictive"),
    }
    return {k: (*_median_lower_upper(v, level), kind) for k, (v, kind) in factors.items()}


def _median_lower_upper(draws, level: float) -> list[float]:
    """[median, lower, upper] of the equal-tailed ``level`` interval, as the JSON payload lists them."""
    from bayes_scaling.intervals import central

    lo, med, hi = central(draws, level)
    return [float(med), float(lo), float(hi)]


def _energy_figures(model, out: Path, calibration, level: float, *, inference=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bayes_scaling.data.datasets import load_dataset
    from bayes_scaling.plots.calibration import plot_calibration
    from bayes_scaling.plots.energy import (
        plot_efficiency_trend,
        plot_energy_vs_compute,
        plot_inference_calibration,
    )
    from bayes_scaling.plots.style import save_figure, style

    (out / "figures").mkdir()
    with style():
        figures = [("energy_vs_compute", lambda: plot_energy_vs_compute(
                        model, np.geomspace(1e21, 1e27, 40), level=level, published=load_dataset("training-energy"))),
                   ("efficiency_trend", lambda: plot_efficiency_trend(model, level=level))]
        if calibration is not None:
            figures += [("hours_calibration", lambda: plot_calibration(calibration, quantity="device_hours")),
                        ("energy_calibration", lambda: plot_calibration(calibration, quantity="energy_mwh"))]
        if inference is not None:
            figures.append(("inference_calibration", lambda: plot_inference_calibration(inference)))
        for name, make in figures:
            fig = make()
            save_figure(fig, out / "figures" / name)
            plt.close(fig)


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("energy", help="training and inference energy (MWh) and emissions, with intervals",
                       description="Energy = FLOP / (peak FLOP/J x utilization) x (power/TDP) x PUE, every factor "
                                   "uncertain (see bayes_scaling.energy for the priors and their sources).")
    p.add_argument("--flop", type=positive_number, nargs="+", help="training compute budgets (FLOP)")
    p.add_argument("--year", type=finite_number, nargs="+",
                   help="without --hardware: year(s) of the hardware, a new chip of that year (default 2025); with "
                        "--hardware: the year of the run (default: the chip's release plus the usual lag)")
    p.add_argument("--hardware", help="a named chip from the accelerators dataset, e.g. 'H100 SXM5'")
    p.add_argument("--devices", type=positive_number,
                   help="accelerators the run uses at once (default: the usual count for its size)")
    p.add_argument("--precision", choices=("bf16", "fp8", "both"), default="bf16", help="peak rate used")
    p.add_argument("--carbon-intensity", metavar="KG_PER_KWH[:SD]", help="e.g. 0.4 or 0.4:0.1 (kg CO2e/kWh)")
    p.add_argument("--target-loss", type=positive_number, nargs="+", help="energy to reach these losses (needs --fit)")
    p.add_argument("--fit", help="fit folder or fit.nc for --target-loss")
    p.add_argument("--params", type=positive_number,
                   help="active parameters of the model: its training utilization, and the model served for "
                        "--tokens-served (default for training: a size drawn from the compute)")
    p.add_argument("--total-params", type=positive_number,
                   help="total parameters of a mixture-of-experts model (default: --params, dense)")
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
    p.add_argument("--calibration", nargs="?", const="run", choices=("run", "lab"),
                   help="check device-hours and energy against the published runs, leaving one run (default) or "
                        "one lab out")
    p.add_argument("--level", type=credible_level, default=DEFAULT_LEVEL,
                   help=f"interval level (default {DEFAULT_LEVEL:g})")
    p.add_argument("--draws", type=positive_int, default=4000, help="Monte Carlo draws (default 4000)")
    p.add_argument("--seed", type=seed_number, default=0)
    _add_output_options(p, required=False, default="print only, write no files")
    p.set_defaults(handler=_cmd_energy)
