"""bayes_scaling: Bayesian analysis of neural scaling laws and of the energy AI consumes.

The public API is re-exported here; see ``ARCHITECTURE.md`` for the packages it comes from.  The
names are imported on first use (PEP 562), so ``import bayes_scaling`` and the command line's
``--help`` do not pay for PyMC, PyTensor and ArviZ until something needs them.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from bayes_scaling._version import __version__

#: Where each public name lives.
_PUBLIC = {
    "backtest": "bayes_scaling.compare.backtest", "backtest_check": "bayes_scaling.compare.backtest",
    "lfo_table": "bayes_scaling.compare.lfo", "lfo_weights": "bayes_scaling.compare.lfo",
    "loo_table": "bayes_scaling.compare.loo",
    "cite": "bayes_scaling.data.datasets", "list_datasets": "bayes_scaling.data.datasets",
    "load_dataset": "bayes_scaling.data.datasets", "read_runs": "bayes_scaling.data.reading",
    "RunTable": "bayes_scaling.data.runs", "EnergyModel": "bayes_scaling.energy.training",
    "TrainingRun": "bayes_scaling.energy.utilization",
    "BayesScalingError": "bayes_scaling.errors", "DataWarning": "bayes_scaling.errors",
    "InputError": "bayes_scaling.errors", "RunTableError": "bayes_scaling.errors",
    "fit": "bayes_scaling.fitting", "LawAverage": "bayes_scaling.forecast.averaging",
    "Forecaster": "bayes_scaling.forecast.forecaster", "summarize": "bayes_scaling.intervals",
    "LAWS": "bayes_scaling.laws.registry", "get_law": "bayes_scaling.laws.registry",
    "register_law": "bayes_scaling.laws.registry", "Fit": "bayes_scaling.posterior.fit_result",
    "load_fit": "bayes_scaling.posterior.load", "Prior": "bayes_scaling.priors",
    "ReportConfig": "bayes_scaling.report.config", "run_report": "bayes_scaling.report.steps",
    "SamplingError": "bayes_scaling.sampling.diagnostics", "SamplingWarning": "bayes_scaling.sampling.diagnostics",
}

__all__ = ["__version__", *_PUBLIC]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    """A public name, imported from its module on first use (and kept here)."""
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_scaling' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


if TYPE_CHECKING:  # what type checkers and IDEs see
    from bayes_scaling.compare.backtest import backtest, backtest_check
    from bayes_scaling.compare.lfo import lfo_table, lfo_weights
    from bayes_scaling.compare.loo import loo_table
    from bayes_scaling.data.datasets import cite, list_datasets, load_dataset
    from bayes_scaling.data.reading import read_runs
    from bayes_scaling.data.runs import RunTable
    from bayes_scaling.energy.training import EnergyModel
    from bayes_scaling.energy.utilization import TrainingRun
    from bayes_scaling.errors import BayesScalingError, DataWarning, InputError, RunTableError
    from bayes_scaling.fitting import fit
    from bayes_scaling.forecast.averaging import LawAverage
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.intervals import summarize
    from bayes_scaling.laws.registry import LAWS, get_law, register_law
    from bayes_scaling.posterior.fit_result import Fit
    from bayes_scaling.posterior.load import load_fit
    from bayes_scaling.priors import Prior
    from bayes_scaling.report.config import ReportConfig
    from bayes_scaling.report.steps import run_report
    from bayes_scaling.sampling.diagnostics import SamplingError, SamplingWarning
