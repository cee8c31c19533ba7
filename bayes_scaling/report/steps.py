"""``bayes-scaling report``: the whole analysis in one command, written for a paper.

With no configuration it analyses the bundled ``chinchilla`` runs: fits the default law
and likelihood, compares the laws by LOO, forecasts loss and the compute-optimal
allocation from 10^22 to 10^27 FLOP, and the training energy of those budgets for the
years 2025–2030 and of reaching a few target losses.  A TOML file changes any choice
(see :class:`ReportConfig`).  It writes::

    DIR/index.html       one self-contained page (figures embedded)
    DIR/figures/         every figure as PDF, SVG and PNG
    DIR/tables/          CSV, Markdown and LaTeX (booktabs)
    DIR/references.bib   the datasets' and methods' references
    DIR/fit.nc           the main fit (reload with bayes_scaling.load_fit)
    DIR/manifest.json    versions, seeds, configuration and its hash, data fingerprints, wall times

"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.report.config import ReportConfig
from bayes_scaling.report.html import _forecast_label, _write_html, cite_keys_of
from bayes_scaling.report.state import STEPS, _Build

__all__ = ['run_report']


log = logging.getLogger(__name__)


def run_report(config: ReportConfig, out: str | os.PathLike, *, force: bool = False,
               config_path: str | None = None) -> dict[str, Any]:
    """Run the analysis and write the report into ``out``, all or nothing; returns the manifest.

    The configuration, the runs and the output folder are checked before any fitting.  The
    report is built in a staging folder and moved into place only when complete (see
    :func:`bayes_scaling.io.outputs.output_folder`): an interrupted or failed run leaves ``out`` as it was.

    Parameters
    ----------
    config
        A :class:`~bayes_scaling.report.config.ReportConfig` (``load_config(path)`` reads a TOML file).
    out
        The report folder; it must not exist, or be empty, unless ``force``.
    force
        Replace an earlier report in ``out`` (only what bayes-scaling wrote there).
    config_path
        The TOML file the configuration came from, recorded in the manifest.

    Returns
    -------
    dict
        The manifest (also ``out/manifest.json``): versions, seeds, configuration hash, data
        fingerprint, wall times.

    Raises
    ------
    InputError
        For a bad configuration, runs or output folder, before any fitting.
    """
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.io.outputs import check_output_folder, output_folder

    config.validate()
    target = Path(out)
    inputs = [p for p in (config_path, config.data) if p]
    check_output_folder(target, force=force, inputs=inputs)
    log.info("[1/%d] reading %s", STEPS, config.data)
    runs = runs_from(config.data, columns=config.columns, scale=config.scale)
    groups = [str(g) for g in runs.groups]
    if groups and config.group not in groups:
        raise InputError(f"{config.data} has groups ({', '.join(map(str, groups))}); set group = \"...\" in the "
                         f"configuration to say which one the forecasts are for (and pooling, default shared)")
    if config.group and not groups:
        raise InputError(f"group = {config.group!r}, but {config.data} has no group column")
    with output_folder(target, force=force, command="bayes-scaling report", inputs=inputs) as root:
        return _build_report(config, runs, root, target, config_path)


def _build_report(config: ReportConfig, runs, root: Path, target: Path, config_path: str | None) -> dict[str, Any]:
    b = _Build(config, runs, root, target, config_path)
    b.tick("data_s")
    _fit_and_compare(b)
    _forecasts(b)
    _sensitivity(b)
    _energy(b)
    _isoflop(b)
    _downstream(b)
    b.step(8, f"writing figures and the report to {target}")
    _figures(b)
    _references(b)
    b.tick("write_s")
    manifest = _manifest(b)
    _write_html(b, manifest)
    return manifest


def _fit_and_compare(b: _Build) -> None:
    """Fit every law (the main one first), compare them by LOO and, if asked, by back-tests."""
    from bayes_scaling.compare.backtest import backtest
    from bayes_scaling.compare.grid import fit_grid
    from bayes_scaling.compare.loo import loo_table
    from bayes_scaling.io.cache import default_fit_cache

    config = b.config
    cache = default_fit_cache()  # not in the report: a report stays small, the cache serves every run
    b.fits = {}
    for i, law in enumerate(b.laws):
        what = "fitting" if i == 0 else "comparing laws: fitting"
        b.step(2 if i == 0 else 3, f"{what} {law} / {config.likelihood} to {len(b.runs)} runs "
                                   f"({config.chains} chains x {config.draws} draws)")
        main = {config.law: {"prior_set": config.prior_set, "priors": config.priors}}
        b.fits |= {law: fit for fit in fit_grid(b.runs, [law], [config.likelihood], cache_dir=cache,
                                                 settings=b.settings, overrides=main).values()}
        if law == config.law:
            b.tick("fit_s")
    b.main = b.fits[config.law]
    b.main.save(b.root / "fit.nc")
    b.summary = b.main.summary(ci_prob=config.level)
    b.table(b.summary, "parameters", f"Posterior of the {b.main.law.title} law", index=True)
    b.loo = loo_table({f"{k} / {config.likelihood}": v for k, v in b.fits.items()}) if len(b.fits) > 1 else None
    if b.loo is not None:
        b.table(b.loo, "loo", "PSIS-LOO comparison of the laws", index=True)
    b.bt = None
    if config.backtest:
        b.step(3, "back-testing (fit below compute cuts, score the runs above)")
        b.bt = backtest(b.runs, laws=b.laws, likelihoods=[config.likelihood], cache_dir=cache, settings=b.settings,
                        bootstrap=30, progress=log.info)
        b.table(b.bt, "backtest", "Extrapolation back-tests")
    b.tick("compare_s")


def _forecasts(b: _Build) -> None:
    """Loss, allocation and compute for the targets, from the law average (or the main law)."""
    from bayes_scaling.compare.backtest import backtest_check
    from bayes_scaling.forecast.averaging import default_forecaster
    from bayes_scaling.forecast.tables import forecast_table, target_table

    config = b.config
    b.step(4, "forecasting loss and allocation")
    b.fc, b.weights = default_forecaster(b.fits, main=config.law, group=config.group or None, seed=config.seed)
    if b.weights is not None:
        b.table(b.weights, "law_weights", "Leave-future-out comparison of the laws: their forecasts of the runs "
                                          "beyond compute cuts (the weights of the law average)", index=True)
    b.check = backtest_check(b.fits)
    if len(b.check):
        b.table(b.check, "backtest_check", "How each law's forecasts held up on these runs: its fit's back-tests "
                                           "below compute cuts, scored with the population's structural error", index=True)
    b.forecast = forecast_table(b.fc, config.budgets, ci_prob=config.level)
    b.table(b.forecast, "forecast", f"Loss forecasts at compute-optimal allocation ({config.level:.0%} intervals)")
    b.targets = target_table(b.fc, config.target_losses, ci_prob=config.level) if config.target_losses else None
    if b.targets is not None:
        b.table(b.targets, "target_loss", "Compute to reach target losses")
    b.tick("forecast_s")


def _sensitivity(b: _Build) -> None:
    """The headline forecast at two budgets under the other likelihoods and the literature priors:
    one row per variant of the main law (each with its own back-tests, which rescale its
    structural error as they do the main fit's), beside the headline and the main law alone."""
    from bayes_scaling.fitting import cached_fit
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.forecast.tables import forecast_table
    from bayes_scaling.io.cache import default_fit_cache
    from bayes_scaling.model.likelihoods import LIKELIHOODS

    b.sensitivity = None
    if not b.config.sensitivity:
        return
    config = b.config
    budgets = sorted({config.budgets[len(config.budgets) // 2], config.budgets[-1]})
    variants: dict[str, Any] = {f"headline ({_forecast_label(b.fc)})": b.fc,
                                f"{config.law} law alone": Forecaster(b.main, group=config.group or None,
                                                                      seed=config.seed)}
    # The expected loss of each variant is compared: only likelihoods whose law is the runs' centre
    options = [(f"{lik} likelihood", {"likelihood": lik}) for lik, kind in LIKELIHOODS.items()
               if lik != config.likelihood and kind.law_is_centre]
    if config.prior_set != "literature":
        options.append(("literature priors", {"prior_set": "literature"}))
    for label, change in options:
        settings = {**b.settings, "prior_set": config.prior_set, "priors": config.priors}
        settings.update({k: v for k, v in change.items() if k != "likelihood"})
        log.info("sensitivity: %s", label)
        try:
            result, _ = cached_fit(b.runs, law=config.law, likelihood=change.get("likelihood", config.likelihood),
                                   cache_dir=default_fit_cache(), settings=settings)
        except InputError as exc:  # e.g. a law without published fits has no literature priors
            log.info("sensitivity: %s left out: %s", label, exc)
            continue
        variants[f"{config.law} law, {label}"] = Forecaster(result, group=config.group or None, seed=config.seed)
    rows = []
    for label, fc in variants.items():
        table = forecast_table(fc, budgets, ci_prob=config.level)
        rows.append({"variant": label, **{f"loss_{c:.0e}{suffix}": table[f"loss{suffix}"].iloc[i]
                                          for i, c in enumerate(budgets) for suffix in ("", "_lower", "_upper")}})
    b.sensitivity = pd.DataFrame(rows)
    b.table(b.sensitivity, "sensitivity", f"The expected loss at {', '.join(f'{c:.0e}' for c in budgets)} FLOP under "
                                          f"other likelihoods and priors ({config.level:.0%} intervals)")


def _energy(b: _Build) -> None:
    """Training energy of the budgets and of the targets, its calibration, growth and serving."""
    from bayes_scaling.energy.calibration import calibrate, calibration_summary
    from bayes_scaling.energy.tables import budget_table, energy_grid, target_loss_table
    from bayes_scaling.energy.training import Carbon, EnergyModel, growth_scenario

    config = b.config
    b.step(5, "energy")
    carbon = Carbon.parse(config.carbon_intensity) if config.carbon_intensity else None
    b.energy = EnergyModel.fit(draws=4000, seed=config.seed)
    hw = config.hardware or None
    b.energy_budgets = budget_table(b.energy, config.budgets, years=[] if hw else config.years, hardware=hw,
                                    carbon=carbon, level=config.level)
    b.table(b.energy_budgets, "energy_budgets",
            f"Training energy of the compute budgets ({config.level:.0%} intervals)")
    b.energy_grid = energy_grid(b.energy_budgets)
    b.table(b.energy_grid, "energy_grid", "Training energy (MWh) of each compute budget (FLOP) on "
                                          + ("the expected new chip of each year" if not hw else hw))
    b.energy_targets = None
    if config.target_losses:
        b.energy_targets = target_loss_table(b.energy, b.fc, config.target_losses, year=None if hw else config.years[0],
                                             hardware=hw, carbon=carbon, level=config.level)
        b.table(b.energy_targets, "energy_targets", "Energy to reach target losses")
    b.calibration = calibrate(draws=2000, seed=config.seed)
    b.table(b.calibration.drop(columns=[c for c in b.calibration.columns if c.startswith("inside_")]),
            "energy_calibration", "Leave-one-run-out check of device-hours and energy on published runs")
    b.calibration_summary = calibration_summary(b.calibration)
    b.table(b.calibration_summary, "energy_calibration_summary",
            "Leave-one-run-out: coverage and median reported / forecast ratio by quantity and model size")
    b.growth = growth_scenario(b.energy, seed=config.seed)
    _serving(b)
    b.tick("energy_s")


def _isoflop(b: _Build) -> None:
    """Approach 2 beside the parametric fit, when the runs form an isoFLOP design (at least three
    budgets of three or more runs): the optima's power law, N*, D*, L* at the budgets, and N*
    from both approaches with the probability that they differ by more than 0.1 in log10 N*."""
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.isoflop.checks import compare_approaches
    from bayes_scaling.isoflop.model import (
        MIN_BUDGETS,
        MIN_RUNS_PER_BUDGET,
        design_of,
        fit_isoflop,
    )

    config = b.config
    b.isoflop, b.isoflop_optimum, b.isoflop_comparison = None, None, None
    if not config.isoflop or not {"N", "D"} <= set(b.main.law.inputs) or b.runs.has_groups:
        return
    _, _, budgets, design = design_of(b.runs)
    if budgets.size < MIN_BUDGETS:
        log.info("isoFLOP: the runs share %d budgets of %d or more runs (%d needed): no isoFLOP section",
                 budgets.size, MIN_RUNS_PER_BUDGET, MIN_BUDGETS)
        return
    b.step(6, f"isoFLOP analysis (Approach 2): {budgets.size} {'compute slices' if design == 'slices' else 'budgets'}")
    b.isoflop = fit_isoflop(b.runs, draws=config.draws, tune=config.tune, chains=config.chains, seed=config.seed)
    b.isoflop_optimum = b.isoflop.table(config.budgets, level=config.level, seed=config.seed)
    b.table(b.isoflop_optimum, "isoflop_optimum", f"The compute-optimal N, D and loss from the budgets' optima "
                                                  f"(Approach 2; {config.level:.0%} intervals)")
    parametric = Forecaster(b.main, seed=config.seed)
    b.isoflop_comparison = compare_approaches(b.isoflop, parametric, config.budgets, tolerance=0.1,
                                              level=config.level, seed=config.seed)
    b.table(b.isoflop_comparison, "isoflop_comparison", f"N* from the budgets' optima (Approach 2) and from the "
                                                        f"parametric fit (Approach 3), and the probability that they "
                                                        f"differ by more than 0.1 in log10 N* ({config.level:.0%} "
                                                        f"intervals)")
    b.tick("isoflop_s")


def _downstream(b: _Build) -> None:
    """Task accuracy at the budgets' compute-optimal allocations, when the runs carry task columns:
    step 2 fitted to every run, step 1 the headline forecast."""
    from bayes_scaling.data.tasks import declared_tasks
    from bayes_scaling.downstream.model import fit_downstream

    config = b.config
    b.downstream, b.downstream_forecast = None, None
    tasks = (config.tasks or declared_tasks(b.runs)) if config.downstream else []
    if not tasks or not {"N", "D"} <= set(b.fc.law.inputs):
        return
    b.step(7, f"task accuracy: {len(tasks)} task columns")
    fit = fit_downstream(b.runs, tasks, chance=config.chance or None, law=b.fc, draws=config.draws,
                         tune=config.tune, chains=config.chains, seed=config.seed)
    b.downstream = fit
    b.table(fit.tasks, "downstream_tasks", "The task columns: chance level, questions and whether each is forecast "
                                           "(tasks whose best runs are near chance are not)")
    if fit.tree is None:
        b.tick("downstream_s")
        return
    n, d = b.forecast["N"].to_numpy(), b.forecast["D"].to_numpy()
    table = fit.table(N=n, D=d, level=config.level, seed=config.seed)
    table = table[table["status"] == "fitted"].drop(columns=["observed", "inside", "status"])
    b.downstream_forecast = table.reset_index(drop=True)
    b.table(b.downstream_forecast, "downstream_forecast",
            f"Task accuracy of a new run at each budget's compute-optimal allocation (median N and D; "
            f"{config.level:.0%} intervals)")
    b.tick("downstream_s")


def _serving(b: _Build) -> None:
    """Measured serving energy and the lifetime-optimal allocation: tables written, results kept on ``b``."""
    import warnings

    from bayes_scaling.data.remote import RemoteDataError
    from bayes_scaling.energy.serving import InferenceEnergy
    from bayes_scaling.errors import DataWarning
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.forecast.lifetime import lifetime_table

    config = b.config
    b.serving_coefficients, b.serving_missing, b.lifetime = None, None, None
    log.info("serving: fitting the inference-energy model to the ML.ENERGY measurements")
    try:
        measured = InferenceEnergy.fit(draws=500, seed=config.seed)
    except RemoteDataError as exc:  # offline, without the files: the section says so, the report goes on
        warnings.warn(DataWarning(f"the report's serving section leaves out measured inference energy: {exc}"),
                      stacklevel=2)
        b.serving_missing = str(exc)
    else:
        b.serving_coefficients = measured.summary(level=config.level)
        b.table(b.serving_coefficients, "inference_energy", index=True,
                caption="Regression of GPU energy per output token (log J) on the ML.ENERGY measurements")
    if config.target_losses and config.tokens_served and {"N", "D"} <= set(b.main.law.inputs):
        target = config.target_losses[0]
        fc = Forecaster(b.main, group=config.group or None, max_draws=1000, seed=config.seed)
        b.lifetime = lifetime_table(fc, target_loss=target, tokens_served=config.tokens_served, level=config.level)
        b.lifetime.attrs["target_loss"] = target
        b.table(b.lifetime, "lifetime", caption=f"Lifetime-optimal model for loss {target:g}: training + serving compute")


def _figure_makers(b: _Build) -> dict[str, tuple[Any, str]]:
    """Name → (a function drawing the figure, its caption)."""
    from bayes_scaling.data.datasets import load_dataset
    from bayes_scaling.model.spec import literature_values, prior_predictive
    from bayes_scaling.plots.calibration import (
        plot_backtest,
        plot_calibration,
        plot_loo,
    )
    from bayes_scaling.plots.downstream import plot_task_panels
    from bayes_scaling.plots.energy import plot_efficiency_trend, plot_energy_vs_compute
    from bayes_scaling.plots.forecast import (
        plot_allocation,
        plot_isoflop,
        plot_loss_forecast,
    )
    from bayes_scaling.plots.posterior import (
        plot_pair,
        plot_posterior_vs_published,
        plot_ppc,
        plot_prior_predictive,
        plot_residuals,
        plot_trace,
    )

    config, runs, main, fc = b.config, b.runs, b.main, b.fc
    # the curve starts where the fitted runs do (a fit near the frontier says nothing of smaller budgets)
    grid = np.geomspace(min(main.runs.C.min(), min(config.budgets)) / 2, max(config.budgets) * 2, 60)
    made = {
        "ppc": (lambda: plot_ppc(main), "Posterior predictive check of the fitted runs"),
        "trace": (lambda: plot_trace(main), "Traces of the posterior draws"),
        "pair": (lambda: plot_pair(main), "Joint posterior of the law's parameters"),
        "residuals": (lambda: plot_residuals(main, level=config.level),
                      "Residuals of log loss against N, D and C: a trend says where the law's form misses"),
        "prior_predictive": (lambda: plot_prior_predictive(prior_predictive(
            runs, law=config.law, likelihood=config.likelihood, priors=config.priors,
            prior_set=config.prior_set, seed=config.seed)), "Prior predictive check"),
        "loss_forecast": (lambda: plot_loss_forecast(fc, grid, runs=runs, levels=(0.5, config.level),
                                                     predictive_level=config.level),
                          f"Loss at compute-optimal allocation ({_forecast_label(fc)}): posterior median, 50% and "
                          f"{config.level:.0%} intervals of the expected loss and the {config.level:.0%} interval of "
                          f"a new run (structural error beyond the data included), with the training runs and the "
                          f"published Approach 3 fit; the dashed line marks where the data end"),
        "energy_vs_compute": (lambda: plot_energy_vs_compute(b.energy, grid[grid >= 1e20],
                                                             years=(2020, config.years[0], config.years[-1]),
                                                             level=config.level,
                                                             published=load_dataset("training-energy")),
                              "Training energy against compute, with published runs"),
        "efficiency_trend": (lambda: plot_efficiency_trend(b.energy, level=config.level),
                             "Peak FLOP per joule of ML accelerators and the fitted trend"),
        "hours_calibration": (lambda: plot_calibration(b.calibration, quantity="device_hours"),
                              "Leave-one-run-out predictive intervals against reported device-hours"),
        "energy_calibration": (lambda: plot_calibration(b.calibration, quantity="energy_mwh"),
                               "Leave-one-run-out predictive intervals against reported training energy"),
    }
    if literature_values(main.law):
        made["published"] = (lambda: plot_posterior_vs_published(main, level=config.level),
                             "The posterior of each parameter against the published fit of the same law")
    if {"N", "D"} <= set(fc.law.inputs):
        made["allocation"] = (lambda: plot_allocation(fc, grid, level=config.level),
                              "Compute-optimal parameters and tokens")
        made["isoflop"] = (lambda: plot_isoflop(fc, runs=runs, level=config.level), "IsoFLOP profiles")
    if b.loo is not None:
        made["loo"] = (lambda: plot_loo(b.loo), "Leave-one-out comparison of the laws")
    if b.bt is not None:
        made["backtest"] = (lambda: plot_backtest(b.bt), "Back-test CRPS against extrapolation distance")
    made |= _isoflop_figures(b)
    if b.downstream_forecast is not None:
        made["downstream"] = (lambda: plot_task_panels(b.downstream, N=np.asarray(b.forecast["N"]),
                                                       D=np.asarray(b.forecast["D"]), level=config.level,
                                                       seed=config.seed),
                              f"Task accuracy against compute: the fitted runs, and the median and "
                              f"{config.level:.0%} interval of a new run at each budget's compute-optimal allocation; "
                              f"the dotted line is chance")
    return made


def _isoflop_figures(b: _Build) -> dict[str, tuple[Any, str]]:
    """The isoFLOP section's figures (none without the section)."""
    from bayes_scaling.plots.isoflop import plot_isoflop_profiles, plot_optimum_law

    if b.isoflop is None:
        return {}
    level = b.config.level
    return {
        "isoflop_profiles": (lambda: plot_isoflop_profiles(b.isoflop, level=level),
                             f"Each budget's runs with its fitted profile ({level:.0%} band) and its optimum "
                             f"(Approach 2)"),
        "isoflop_optimum": (lambda: plot_optimum_law(b.isoflop, b.config.budgets, comparison=b.isoflop_comparison,
                                                     level=level),
                            f"N*(C): the budgets' optima and their power law (Approach 2) beside the parametric "
                            f"fit's allocation (Approach 3), {level:.0%} intervals"),
    }


def _figures(b: _Build) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.plots.style import save_figure, style

    b.captions = {}
    with style():
        for name, (make, caption) in _figure_makers(b).items():
            fig = make()
            save_figure(fig, b.figures / name, formats=b.config.figure_formats)
            plt.close(fig)
            b.captions[name] = caption


#: Works every report cites (the law's own and the data's are added).
_CITED = ("hoffmann2022training", "besiroglu2024chinchilla", "seyboldt2024nutpie", "abrilpla2023pymc",
          "kumar2019arviz", "hoffman2014nuts", "vehtari2017loo", "yao2018stacking", "epoch2024hardware",
          "patterson2021carbon", "touvron2023llama", "luccioni2022bloom", "chowdhery2022palm", "narayanan2021megatron",
          "lescao2022bloom", "dubey2024llama3", "touvron2023llama2", "meta2024llama31card", "chung2025mlenergy",
          "sardana2024beyond")


def _references(b: _Build) -> None:
    from bayes_scaling.data.datasets import bibtex_entries
    from bayes_scaling.io.outputs import write_text_atomic

    keys = {*b.main.law.citation, *cite_keys_of(b.config.data), *_CITED}
    for result in b.fits.values():
        keys |= set(result.law.citation)
    write_text_atomic(b.root / "references.bib", bibtex_entries(sorted(keys)))


def _manifest(b: _Build) -> dict[str, Any]:
    from bayes_scaling._provenance import config_hash, package_versions
    from bayes_scaling._version import __version__
    from bayes_scaling.io.outputs import write_text_atomic

    config = b.config
    manifest = {
        "bayes_scaling": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": f"bayes-scaling report{' --config ' + b.config_path if b.config_path else ''} --out {b.target}",
        "config": config.to_dict(),
        "config_hash": config_hash(config.to_dict()),
        "data": {"source": b.runs.source, "rows": len(b.runs), "fingerprint": b.runs.fingerprint()},
        "fit": {"config_hash": b.main.config_hash, "diagnostics": b.main.diagnostics.to_dict()},
        "versions": {**package_versions(), "python": platform.python_version()},
        "seeds": {"fit": config.seed, "energy": config.seed},
        "wall_times_s": b.times,
        "loo": None if b.loo is None else b.loo.reset_index().to_dict(orient="records"),
        "forecast": {"by": _forecast_label(b.fc),
                     "law_weights": None if b.weights is None else b.weights["stacking_weight"].to_dict()},
    }
    write_text_atomic(b.root / "manifest.json", json.dumps(manifest, indent=2, default=str))
    return manifest

