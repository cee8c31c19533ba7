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

import base64
import dataclasses
import html
import json
import logging
import math
import os
import platform
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .intervals import DEFAULT_LEVEL, central

__all__ = ["ReportConfig", "run_report", "load_config"]

log = logging.getLogger(__name__)


@dataclass
class ReportConfig:
    """Every choice of the report (TOML keys have the same names).

    Example ``report.toml``::

        data = "chinchilla"            # dataset name or a CSV/Parquet path
        columns = { N = "params_M" }   # for a file: which columns are N, D, C, loss …
        scale = { N = "M" }            # … and their units
        law = "chinchilla"
        likelihood = "student-t"
        prior_set = "default"
        priors = { alpha = "LogNormal(mu=-1.08, sigma=0.3)" }
        compare_laws = ["chinchilla", "kaplan-nd", "compute"]
        backtest = false
        sensitivity = true             # the headline forecast under other likelihoods and priors
        budgets = [1e22, 1e23, 1e24, 1e25, 1e26, 1e27]
        years = [2025, 2026, 2027, 2028, 2029, 2030]
        target_losses = [2.0, 1.95, 1.9]
        hardware = ""                  # a named chip instead of the expected chip of each year
        carbon_intensity = "0.4:0.1"   # kg CO2e/kWh (mean[:sd]); "" for none
        tokens_served = [1e11, 1e12, 1e13, 1e14]  # lifetime-optimal model for the first target loss
        figure_formats = ["png", "pdf"]  # "svg" too on request; the page shows the PNGs
        pooling = "shared"             # with a group column: shared, partial or separate exponents
        group = ""                     # … and the group the forecasts are for
        level = 0.9
        draws = 1000
        tune = 1000
        chains = 4
        seed = 0
    """

    data: str = "chinchilla"
    columns: dict[str, str] = field(default_factory=dict)
    scale: dict[str, str] = field(default_factory=dict)
    law: str = "chinchilla"
    likelihood: str = "student-t"
    prior_set: str = "default"
    priors: dict[str, str] = field(default_factory=dict)
    compare_laws: list[str] = field(default_factory=lambda: ["chinchilla", "kaplan-nd", "compute"])
    backtest: bool = False
    sensitivity: bool = True
    budgets: list[float] = field(default_factory=lambda: [1e22, 1e23, 1e24, 1e25, 1e26, 1e27])
    years: list[float] = field(default_factory=lambda: [2025, 2026, 2027, 2028, 2029, 2030])
    target_losses: list[float] = field(default_factory=lambda: [2.0, 1.95, 1.9])
    hardware: str = ""
    carbon_intensity: str = "0.4:0.1"
    level: float = DEFAULT_LEVEL
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    pooling: str = "shared"
    group: str = ""
    tokens_served: list[float] = field(default_factory=lambda: [1e11, 1e12, 1e13, 1e14])
    figure_formats: list[str] = field(default_factory=lambda: ["png", "pdf"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, source: str = "the report configuration") -> ReportConfig:
        """Check every value (types of list and table elements too) before any work starts.

        Raises :class:`InputError` naming the key, the value and what was expected.
        """
        from .energy import Carbon, EnergyModel
        from .laws import law_names
        from .likelihoods import LIKELIHOODS
        from .model import POOLING
        from .priors import Prior

        def bad(key: str, expected: str) -> InputError:
            return InputError(f"{source}: {key} = {getattr(self, key)!r}: expected {expected}")

        def number(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        for key in ("columns", "scale"):
            if not all(isinstance(v, str) for v in getattr(self, key).values()):
                raise bad(key, 'a table of text values, e.g. {N = "params"}')
        for name, spec in self.priors.items():
            try:
                Prior.parse(spec)
            except InputError as exc:
                raise InputError(f"{source}: priors.{name}: {exc}") from None
        choices = {"law": law_names(), "likelihood": list(LIKELIHOODS), "prior_set": ["default", "literature"],
                   "pooling": list(POOLING)}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise bad(key, f"one of {', '.join(allowed)}")
        if not self.compare_laws or not all(law in law_names() for law in self.compare_laws):
            raise bad("compare_laws", f"a list of laws among {', '.join(law_names())}")
        for key in ("budgets", "target_losses", "tokens_served"):
            if not all(number(v) and v > 0 for v in getattr(self, key)):
                raise bad(key, "a list of positive numbers")
        if not self.budgets:
            raise bad("budgets", "at least one compute budget (FLOP)")
        if not self.years and not self.hardware:
            raise bad("years", "at least one year (or a named chip in hardware)")
        if not all(number(v) for v in self.years):
            raise bad("years", "a list of years, e.g. [2025, 2030]")
        if not (number(self.level) and 0 < self.level < 1):
            raise bad("level", "a credible level strictly between 0 and 1, e.g. 0.9")
        for key in ("draws", "tune", "chains"):
            if not (isinstance(getattr(self, key), int) and getattr(self, key) >= 1):
                raise bad(key, "a whole number ≥ 1")
        if self.seed < 0:
            raise bad("seed", "a whole number ≥ 0")
        from .plots import FIGURE_FORMATS

        if "png" not in self.figure_formats or not set(self.figure_formats) <= set(FIGURE_FORMATS):
            raise bad("figure_formats", f"a list of formats among {', '.join(FIGURE_FORMATS)}, with png "
                                        "(the page shows the PNGs)")
        if self.carbon_intensity:
            Carbon.parse(self.carbon_intensity)
        trend = EnergyModel.fit(draws=10, seed=0).trend
        if self.hardware:
            trend.named(self.hardware)
        for year in self.years:
            trend.check_year(float(year))
        return self


def load_config(path: str | os.PathLike | None) -> ReportConfig:
    """Read a TOML configuration; unknown keys and wrong types are errors naming the key."""
    if path is None:
        return ReportConfig()
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: configuration file not found")
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML: {exc}") from None
    known = {f.name: f for f in dataclasses.fields(ReportConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
    defaults = ReportConfig()
    for key, value in raw.items():
        expected = type(getattr(defaults, key))
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int)) or (
            expected is list and isinstance(value, list))
        if not ok or (isinstance(value, bool) and expected is not bool):
            raise InputError(f"{source}: key {key!r} should be a {expected.__name__}, got {value!r}")
    return ReportConfig(**raw).validate(str(source))


def _figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table_html(frame: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    from .tables import format_number

    data = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in data.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_number(v, digits))}</td>" for v in row) + "</tr>"
                   for row in data.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.5}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.8rem 0;display:block;overflow-x:auto}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}img{max-width:100%;width:720px}figcaption{font-size:.85rem;color:#555}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px}pre{padding:.6rem;overflow-x:auto}
.ok{color:#1b7f3a}.bad{color:#b3261e}
"""


def run_report(config: ReportConfig, out: str | os.PathLike, *, force: bool = False,
               config_path: str | None = None) -> dict[str, Any]:
    """Run the analysis and write the report into ``out``, all or nothing; returns the manifest.

    The configuration, the runs and the output folder are checked before any fitting.  The
    report is built in a staging folder and moved into place only when complete (see
    :func:`bayes_scaling.outputs.output_folder`): an interrupted or failed run leaves ``out`` as it was.
    """
    from .datasets import runs_from
    from .outputs import check_output_folder, output_folder

    config.validate()
    target = Path(out)
    inputs = [p for p in (config_path, config.data) if p]
    check_output_folder(target, force=force, inputs=inputs)
    log.info("[1/6] reading %s", config.data)
    runs = runs_from(config.data, columns=config.columns, scale=config.scale)
    groups = [str(g) for g in runs.groups]
    if groups and config.group not in groups:
        raise InputError(f"{config.data} has groups ({', '.join(map(str, groups))}); set group = \"...\" in the "
                         f"configuration to say which one the forecasts are for (and pooling, default shared)")
    if config.group and not groups:
        raise InputError(f"group = {config.group!r}, but {config.data} has no group column")
    with output_folder(target, force=force, command="bayes-scaling report", inputs=inputs) as root:
        return _build_report(config, runs, root, target, config_path)


class _Build:
    """What the report's steps share: the configuration, the runs, the folders and each step's results."""

    def __init__(self, config: ReportConfig, runs, root: Path, target: Path, config_path: str | None):
        self.config, self.runs, self.root, self.target, self.config_path = config, runs, root, target, config_path
        self.laws = [config.law, *(law for law in config.compare_laws if law != config.law)]
        self.figures, self.tables = root / "figures", root / "tables"
        self.figures.mkdir()
        self.tables.mkdir()
        self.times: dict[str, float] = {}
        self._clock = time.perf_counter()
        self.settings = {"draws": config.draws, "tune": config.tune, "chains": config.chains, "seed": config.seed,
                         "pooling": config.pooling}

    def step(self, i: int, text: str) -> None:
        log.info("[%d/%d] %s", i, _STEPS, text)

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._clock, 2)
        self._clock = now

    def table(self, frame: pd.DataFrame, name: str, caption: str, *, index: bool = False) -> None:
        from .tables import write_table

        write_table(frame, self.tables / name, index=index, caption=caption)


_STEPS = 6


def _build_report(config: ReportConfig, runs, root: Path, target: Path, config_path: str | None) -> dict[str, Any]:
    b = _Build(config, runs, root, target, config_path)
    b.tick("data_s")
    _fit_and_compare(b)
    _forecasts(b)
    _sensitivity(b)
    _energy(b)
    b.step(6, f"writing figures and the report to {target}")
    _figures(b)
    _references(b)
    b.tick("write_s")
    manifest = _manifest(b)
    _write_html(b, manifest)
    return manifest


def _fit_and_compare(b: _Build) -> None:
    """Fit every law (the main one first), compare them by LOO and, if asked, by back-tests."""
    from .cache import cached_fit, default_fit_cache
    from .compare import backtest, loo_table

    config = b.config
    cache = default_fit_cache()  # not in the report: a report stays small, the cache serves every run
    b.fits = {}
    for i, law in enumerate(b.laws):
        what = "fitting" if i == 0 else "comparing laws: fitting"
        b.step(2 if i == 0 else 3, f"{what} {law} / {config.likelihood} to {len(b.runs)} runs "
                                   f"({config.chains} chains x {config.draws} draws)")
        extra = {"prior_set": config.prior_set, "priors": config.priors} if law == config.law else {}
        b.fits[law], _ = cached_fit(b.runs, law=law, likelihood=config.likelihood, cache_dir=cache,
                                    settings={**b.settings, **extra})
        if law == config.law:
            b.tick("fit_s")
    b.main = b.fits[config.law]
    b.main.save(b.root / "fit.nc")
    b.summary = b.main.summary(level=config.level)
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
    from .averaging import default_forecaster
    from .compare import backtest_check
    from .forecast import forecast_table, target_table

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
    b.forecast = forecast_table(b.fc, config.budgets, level=config.level)
    b.table(b.forecast, "forecast", f"Loss forecasts at compute-optimal allocation ({config.level:.0%} intervals)")
    b.targets = target_table(b.fc, config.target_losses, level=config.level) if config.target_losses else None
    if b.targets is not None:
        b.table(b.targets, "target_loss", "Compute to reach target losses")
    b.tick("forecast_s")


def _sensitivity(b: _Build) -> None:
    """The headline forecast at two budgets under the other likelihoods and the literature priors:
    one row per variant of the main law (each with its own back-tests, which rescale its
    structural error as they do the main fit's), beside the headline and the main law alone."""
    from .cache import cached_fit, default_fit_cache
    from .forecast import Forecaster, forecast_table
    from .likelihoods import LIKELIHOODS

    b.sensitivity = None
    if not b.config.sensitivity:
        return
    config = b.config
    budgets = sorted({config.budgets[len(config.budgets) // 2], config.budgets[-1]})
    variants: dict[str, Any] = {f"headline ({_forecast_label(b.fc)})": b.fc,
                                f"{config.law} law alone": Forecaster(b.main, group=config.group or None,
                                                                      seed=config.seed)}
    options = [(f"{lik} likelihood", {"likelihood": lik}) for lik in LIKELIHOODS if lik != config.likelihood]
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
        table = forecast_table(fc, budgets, level=config.level)
        rows.append({"variant": label, **{f"loss_{c:.0e}{suffix}": table[f"loss{suffix}"].iloc[i]
                                          for i, c in enumerate(budgets) for suffix in ("", "_lower", "_upper")}})
    b.sensitivity = pd.DataFrame(rows)
    b.table(b.sensitivity, "sensitivity", f"The expected loss at {', '.join(f'{c:.0e}' for c in budgets)} FLOP under "
                                          f"other likelihoods and priors ({config.level:.0%} intervals)")


def _energy(b: _Build) -> None:
    """Training energy of the budgets and of the targets, its calibration, growth and serving."""
    from .energy import Carbon, EnergyModel, budget_table, calibrate, energy_grid, growth_scenario, target_loss_table

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
    b.calibration = calibrate(seed=config.seed)
    b.table(b.calibration.drop(columns=[c for c in b.calibration.columns if c.startswith("inside_")]),
            "energy_calibration", "Leave-one-out energy calibration")
    b.growth = growth_scenario(b.energy, seed=config.seed)
    b.serving_html = _serving_section(config, b.main, b.tables)
    b.tick("energy_s")


def _figure_makers(b: _Build) -> dict[str, tuple[Any, str]]:
    """Name → (a function drawing the figure, its caption)."""
    from .datasets import load_dataset
    from .fit import literature_values, prior_predictive
    from .plots import (plot_allocation, plot_backtest, plot_calibration, plot_efficiency_trend,
                        plot_energy_vs_compute, plot_isoflop, plot_loo, plot_loss_forecast, plot_pair,
                        plot_posterior_vs_published, plot_ppc, plot_prior_predictive, plot_residuals, plot_trace)

    config, runs, main, fc = b.config, b.runs, b.main, b.fc
    grid = np.geomspace(min(runs.C.min(), min(config.budgets)) / 2, max(config.budgets) * 2, 60)
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
        "energy_calibration": (lambda: plot_calibration(b.calibration),
                               "Leave-one-out predictive intervals against reported training energy"),
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
    return made


def _figures(b: _Build) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_figure, style

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
    from .datasets import bibtex_entries
    from .tables import write_text_atomic

    keys = {*b.main.law.citation, *cite_keys_of(b.config.data), *_CITED}
    for result in b.fits.values():
        keys |= set(result.law.citation)
    write_text_atomic(b.root / "references.bib", bibtex_entries(sorted(keys)))


def _manifest(b: _Build) -> dict[str, Any]:
    from . import __version__
    from .fit import config_hash, package_versions
    from .tables import write_text_atomic

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


def _serving_section(config: ReportConfig, main, tables: Path) -> str:
    """Measured serving energy and the lifetime-optimal allocation: tables written, HTML returned."""
    import warnings

    from .errors import DataWarning
    from .forecast import Forecaster, compact
    from .inference import InferenceEnergy
    from .lifetime import lifetime_table
    from .remote import RemoteDataError
    from .tables import write_table

    parts = ["<h2>Serving</h2>"]
    log.info("serving: fitting the inference-energy model to the ML.ENERGY measurements")
    try:
        measured = InferenceEnergy.fit(draws=500, seed=config.seed)
    except RemoteDataError as exc:  # offline, without the files: the section says so, the report goes on
        warnings.warn(DataWarning(f"the report's serving section leaves out measured inference energy: {exc}"),
                      stacklevel=2)
        parts.append("<p class=bad>Measured inference energy is left out: the ML.ENERGY measurements (dataset "
                     "<code>ml-energy-llm</code>) could not be obtained on this machine. "
                     "<code>bayes-scaling datasets show ml-energy-llm</code> says how to provide them.</p>")
    else:
        coefficients = measured.summary(level=config.level)
        write_table(coefficients, tables / "inference_energy",
                    caption="Regression of GPU energy per output token (log J) on the ML.ENERGY measurements")
        parts += ["<p>GPU energy per output token from a hierarchical regression of the 565 serving configurations "
                  "of the ML.ENERGY leaderboard v3 (27 LLMs on H100 and B200; coefficients on log J per token). "
                  "Left-out models are predicted with 87% of their configurations inside the 90% intervals "
                  "(<code>bayes-scaling energy --inference-calibration</code>).</p>",
                  _table_html(coefficients, index=True)]
    if config.target_losses and config.tokens_served and {"N", "D"} <= set(main.law.inputs):
        target = config.target_losses[0]
        fc = Forecaster(main, group=config.group or None, max_draws=1000, seed=config.seed)
        life = lifetime_table(fc, target_loss=target, tokens_served=config.tokens_served, level=config.level)
        write_table(life, tables / "lifetime", index=False,
                    caption=f"Lifetime-optimal model for loss {target:g}: training + serving compute")
        columns = [c for c in life.columns if not c.startswith(("training_", "serving_", "D"))]
        parts += [f"<h3>The model size that is optimal over a model's life (loss {target:g})</h3>",
                  "<p>For every posterior draw, the N and D that reach the target loss at the least training "
                  "(6·N·D) plus serving (2·N per token) compute; tokens served = 0 is Chinchilla-optimal. As serving "
                  "grows the optimum moves to smaller models trained on more tokens (Sardana et al. 2024, with "
                  "point estimates).</p>", _table_html(compact(life[columns]))]
    return "".join(parts)


def _references_html(bib: Path) -> str:
    """The references of ``references.bib`` as a list: authors, year, title, venue."""
    import re

    items = []
    for entry in re.split(r"\n(?=@)", bib.read_text(encoding="utf-8").strip()):
        fields = {k.lower(): " ".join(v.replace("{", "").replace("}", "").split())
                  for k, v in re.findall(r"(\w+)\s*=\s*(\{(?:[^{}]|\{[^{}]*\})*\})", entry)}
        authors = fields.get("author", "").split(" and ")
        names = [a.split(",")[0].strip() for a in authors if a.strip()]
        who = names[0] + (" et al." if len(names) > 2 else f" and {names[1]}" if len(names) == 2 else "") \
            if names else ""
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("url") or ""
        items.append(f"<li>{html.escape(who)} ({html.escape(fields.get('year', 'n.d.'))}). "
                     f"<i>{html.escape(fields.get('title', ''))}</i>. {html.escape(venue)}</li>")
    return "<ol>" + "".join(items) + "</ol>"


def cite_keys_of(data: str) -> list[str]:
    """Citation keys of a registered dataset ([] for a user's file)."""
    from .datasets import dataset_info

    try:
        return list(dataset_info(data).citation)
    except InputError:
        return []


def _forecast_label(fc) -> str:
    """Which law(s) a report's forecasts come from, in words."""
    return fc.law.name if fc.law.name.startswith("law average") else f"{fc.law.name} law"


def _weights_html(weights: pd.DataFrame | None, main_law: str) -> str:
    if weights is None:
        return f"<p>Forecasts are the {html.escape(main_law)} law's.</p>"
    shares = ", ".join(f"{html.escape(k.split(' / ')[0])} {w:.2f}" for k, w in weights["stacking_weight"].items())
    return (f"<p>Forecasts are a <b>law average</b>: each fitted law contributes posterior draws in proportion to "
            f"its leave-future-out stacking weight ({shares}), learned from how well it forecast the runs beyond "
            f"compute cuts of these data (the fits' own back-tests; table <code>law_weights</code>). "
            f"<i>decades_beyond_data</i> says how far each forecast extrapolates past the largest run.</p>")


def _check_html(b: _Build) -> str:
    """The extrapolation check beside the headline forecast: how the main law's forecasts held up
    on these runs' own back-tests."""
    if not len(b.check) or b.config.law not in b.check.index:
        return ("<p>No back-test of these runs was possible (too few runs to cut, or runs with groups): "
                "nothing here checks the intervals beyond the data on this dataset.</p>")
    r = b.check.loc[b.config.law]
    return (f"<p><b>Checked on these runs:</b> fitted below compute cuts and forecasting the {r['held_out']:.0f} "
            f"runs above ({r['cuts']:.0f} cuts, up to {r['max_decades']:.1f} decades out), the {b.config.law} "
            f"law's 90% intervals held {r['coverage_90']:.0%} of them and its 50% intervals {r['coverage_50']:.0%} "
            f"(median 90% width {r['width_90_pct']:.1f}% of loss, mean error {r['bias_pct']:+.2f}%). Every "
            f"law's check is in the table <code>backtest_check</code>.</p>")


def _structural_html(fit) -> str:
    """What the main fit's structural error is, in words."""
    if fit.structural is None:
        return "<p>The law is taken as exact beyond the data (no structural error).</p>"
    backtests = fit.structural.info.get("internal_backtests", 0)
    learned = f"its size learned from {backtests} back-tests of these runs" if backtests else "for a new dataset"
    return (f"<p><b>Structural error</b> of the {html.escape(fit.law.name)} law beyond its largest run "
            f"({fit.structural.c_ref:.3g} FLOP), from the population of published back-tests, {learned}: "
            f"{html.escape(fit.structural.describe())} (medians [5%, 95%]). ρ scales the spread of every forecast "
            f"about the law of a central posterior draw; see the README's <i>How honest are the intervals?</i></p>")


def _write_html(b: _Build, manifest: dict[str, Any]) -> None:
    """index.html: every section in order, figures embedded."""
    from .tables import write_text_atomic

    parts = [*_html_forecast(b), *_html_fit_and_comparison(b), *_html_energy(b), b.serving_html,
             *_html_references_and_reproduce(b, manifest)]
    write_text_atomic(b.root / "index.html", "\n".join(p for p in parts if p))


def _fig(b: _Build, name: str) -> str:
    return _figure_html(b.figures / f"{name}.png", b.captions[name]) if name in b.captions else ""


def _html_forecast(b: _Build) -> list[str]:
    from .forecast import compact

    config, runs, main, diag = b.config, b.runs, b.main, b.main.diagnostics
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>bayes_scaling report: {html.escape(runs.source)}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Bayesian scaling-law report: {html.escape(runs.source)}</h1>",
        f"<p>{len(runs)} training runs; law <b>{html.escape(main.law.formula)}</b> with a "
        f"{html.escape(main.likelihood.name)} likelihood on log loss; {diag.chains} chains × {diag.draws} draws "
        f"(NUTS). Intervals are {config.level:.0%} equal-tailed unless stated.</p>",
        "<h2>Headline forecast</h2>",
        _weights_html(b.weights, main.law.name),
        _table_html(compact(b.forecast)),
        _check_html(b),
        "<p><i>loss</i> is the expected loss at the compute-optimal allocation; <i>loss_pred</i> the loss of a "
        "single new run, including the fitted run-to-run scatter.</p>",
        _structural_html(main),
        _fig(b, "loss_forecast"), _fig(b, "allocation"),
    ]
    if b.sensitivity is not None:
        parts += ["<h3>How much the forecast depends on the choices</h3>", _table_html(compact(b.sensitivity)),
                  "<p>The expected loss under the other likelihoods and the literature-centred priors (the main law, "
                  "refitted), beside the headline forecast.</p>"]
    if b.targets is not None:
        parts += ["<h2>Compute to reach a target loss</h2>", _table_html(compact(b.targets)),
                  "<p>Intervals are over the posterior draws for which the target is reachable; "
                  "<i>p_reachable</i> is the probability that it is reachable at all.</p>"]
    return parts


def _html_fit_and_comparison(b: _Build) -> list[str]:
    diag = b.main.diagnostics
    status = '<span class="ok">all checks passed</span>' if diag.ok else \
        '<span class="bad">problems: ' + html.escape("; ".join(diag.problems)) + "</span>"
    parts = ["<h2>Fit</h2>", f"<p>Diagnostics: {html.escape(str(diag).splitlines()[0])} — {status}</p>",
             _table_html(b.summary, index=True, digits=4), _fig(b, "published"), _fig(b, "ppc"), _fig(b, "residuals"),
             _fig(b, "prior_predictive"), _fig(b, "pair"), _fig(b, "trace"), _fig(b, "isoflop")]
    if b.loo is not None:
        parts += ["<h2>Comparing laws</h2>", _table_html(b.loo, index=True), _fig(b, "loo"),
                  "<p>PSIS-LOO expected log predictive density on log loss (higher is better) and stacking weights. "
                  "LOO measures how well a law predicts a run <i>inside</i> the data (interpolation); the forecasts "
                  "use the leave-future-out weights below. "
                  "Runs with Pareto k &gt; 0.7 make LOO unreliable for that model.</p>"]
        if b.weights is not None:
            parts += ["<h3>Leave-future-out: how the laws forecast</h3>", _table_html(b.weights, index=True),
                      f"<p>{html.escape(b.weights.attrs.get('method', ''))}; expected log predictive density of "
                      f"the held-out runs (higher is better) and stacking weights.</p>"]
        if "warning" in b.loo.attrs:
            parts.append(f"<p class=bad>{html.escape(b.loo.attrs['warning'])}</p>")
    if b.bt is not None:
        parts += ["<h3>Back-tests</h3>", _table_html(b.bt.drop(columns=["cached"])), _fig(b, "backtest")]
    return parts


def _html_energy(b: _Build) -> list[str]:
    from .forecast import compact

    h = np.array(central(b.energy.trend.yearly_factor, 0.9))[[1, 0, 2]]  # median, lower, upper
    g = np.array(central(b.growth["energy_growth"], 0.9))[[1, 0, 2]]
    cov = b.calibration.attrs["coverage"]
    parts = [
        "<h2>Energy</h2>",
        (f"<p>Hardware efficiency improves ×{h[0]:.2f} per year [{h[1]:.2f}, {h[2]:.2f}] (90%). With training "
         f"compute growing 4–5× per year, frontier training energy grows ×{g[0]:.2f} per year "
         f"[{g[1]:.2f}, {g[2]:.2f}].</p>"),
        "<p>Training energy (MWh) of each compute budget (FLOP, rows) on the expected new chip of each year "
        "(columns):</p>",
        _table_html(compact(b.energy_grid)),
    ]
    if b.energy_targets is not None:
        parts += ["<h3>Energy to reach the target losses</h3>", _table_html(compact(b.energy_targets))]
    return [*parts, _fig(b, "energy_vs_compute"), _fig(b, "efficiency_trend"),
            (f"<h3>Calibration</h3><p>Leaving each published run out in turn: {cov['0.9']:.0%} of reported energies "
             f"inside their 90% interval, {cov['0.5']:.0%} inside 50%; median absolute log error "
             f"{b.calibration.attrs['median_abs_log_error']:.2f}.</p>"), _fig(b, "energy_calibration")]


def _html_references_and_reproduce(b: _Build, manifest: dict[str, Any]) -> list[str]:
    return ["<h2>References</h2>", _references_html(b.root / "references.bib"),
            "<h2>Reproduce</h2>",
            (f"<p>With bayes_scaling {html.escape(manifest['bayes_scaling'])} installed from its repository "
             f"(<code>pip install .</code> in a clone; versions of every dependency are in "
             f"<code>manifest.json</code>):</p><pre>{html.escape(manifest['command'])}</pre>"),
            (f"<p>Configuration hash <code>{manifest['config_hash'][:16]}</code>, data fingerprint "
             f"<code>{manifest['data']['fingerprint'][:16]}</code>; versions, seeds and wall times are in "
             "<code>manifest.json</code>. Tables are in <code>tables/</code> (CSV, Markdown, LaTeX), figures in "
             "<code>figures/</code> (PNG, PDF, SVG), references in <code>references.bib</code>, the fit in "
             "<code>fit.nc</code>.</p>"),
            "<pre>" + html.escape(json.dumps(b.config.to_dict(), indent=2)) + "</pre>",
            "</body></html>"]
