"""The report's configuration: a TOML file checked key by key (:class:`ReportConfig`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL
from bayes_scaling.sampling.settings import SAMPLER_DEFAULTS


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
        isoflop = true                 # an isoFLOP section (Approach 2) when the runs form such a design
        downstream = true              # task accuracy of the tasks below, or a dataset's declared ones
        tasks = []                     # task accuracy columns of a file, e.g. ["hellaswag"]
        chance = { hellaswag = 0.25 }  # … and their chance levels (a dataset's own, else 0)
        pooling = "shared"             # with a group column: shared, partial or separate exponents
        group = ""                     # … and the group the forecasts are for
        level = 0.9
        draws = 1000
        tune = 1000
        chains = 4
        seed = 0

    Parameters
    ----------
    data
        A dataset name or a CSV/Parquet file of runs.
    columns, scale
        For a file: which columns are N, D, C, loss …, and their units.
    law, likelihood
        The main law and the likelihood of every fit.
    prior_set, priors
        ``"default"`` or ``"literature"`` priors of the main law, and overrides by name.
    compare_laws
        The laws compared with it (LOO, leave-future-out weights, the law average).
    backtest
        Also refit every law below compute cuts and score it (slower).
    sensitivity
        The headline forecast under the other likelihoods and the literature priors.
    budgets
        Compute budgets of the forecasts (FLOP).
    years
        Years whose expected new chip trains each budget.
    target_losses
        Losses whose compute and energy are forecast.
    hardware
        A named chip instead of each year's expected chip.
    carbon_intensity
        kg CO2e per kWh as ``"mean"`` or ``"mean:sd"`` ("" for none).
    level
        Probability of the credible intervals.
    draws, tune, chains, seed
        Sampler settings.
    pooling, group
        With a group column: how exponents are pooled, and the group forecast.
    tokens_served
        Tokens served over a model's life, for the lifetime-optimal model.
    figure_formats
        File formats of the figures.
    isoflop
        Add the isoFLOP analysis (Approach 2, :mod:`bayes_scaling.isoflop`) beside the parametric fit
        when the runs form an isoFLOP design: at least three budgets of three or more runs.
    downstream
        Forecast task accuracy (two steps, :mod:`bayes_scaling.downstream`) of ``tasks``, or of the
        tasks a registered dataset declares (the Gadre et al. runs).
    tasks
        Task accuracy columns of the runs (default: the dataset's declared tasks; none for a file).
    chance
        Chance level by task column (default: the dataset's task table, else 0).
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
    draws: int = SAMPLER_DEFAULTS.draws
    tune: int = SAMPLER_DEFAULTS.tune
    chains: int = SAMPLER_DEFAULTS.chains
    seed: int = SAMPLER_DEFAULTS.seed
    pooling: str = "shared"
    group: str = ""
    tokens_served: list[float] = field(default_factory=lambda: [1e11, 1e12, 1e13, 1e14])
    figure_formats: list[str] = field(default_factory=lambda: ["png", "pdf"])
    isoflop: bool = True
    downstream: bool = True
    tasks: list[str] = field(default_factory=list)
    chance: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every key as a JSON-ready dict.

        Returns
        -------
        dict
        """
        return dataclasses.asdict(self)

    def validate(self, source: str = "the report configuration") -> ReportConfig:
        """Check every value (types of list and table elements too) before any work starts.

        Raises :class:`InputError` naming the key, the value and what was expected.

        Parameters
        ----------
        source
            Named in messages.

        Returns
        -------
        ReportConfig
        """
        from bayes_scaling.energy.training import Carbon, EnergyModel
        from bayes_scaling.laws.registry import law_names
        from bayes_scaling.model.likelihoods import LIKELIHOODS
        from bayes_scaling.model.pymc_model import POOLING
        from bayes_scaling.priors import Prior

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
        if not all(isinstance(v, str) for v in self.tasks):
            raise bad("tasks", 'a list of column names, e.g. ["hellaswag", "arc_easy"]')
        if not all(number(v) and 0 <= v < 1 for v in self.chance.values()):
            raise bad("chance", "a table of chance levels in [0, 1), e.g. { hellaswag = 0.25 }")
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
        from bayes_scaling.plots.style import FIGURE_FORMATS

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
    """Read a TOML configuration; unknown keys and wrong types are errors naming the key.

    Parameters
    ----------
    path
        A TOML file (None: the defaults).

    Returns
    -------
    ReportConfig
    """
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

