"""bayes_scaling: Bayesian analysis of neural scaling laws and of training energy.

The public API is re-exported here; see ``ARCHITECTURE.md`` for the module map.
"""

from __future__ import annotations

import logging

from bayes_scaling._version import __version__
from bayes_scaling.compare.backtest import backtest, backtest_check
from bayes_scaling.compare.lfo import lfo_table, lfo_weights
from bayes_scaling.compare.loo import loo_table
from bayes_scaling.data.datasets import cite, list_datasets, load_dataset
from bayes_scaling.data.reading import read_runs
from bayes_scaling.data.runs import RunTable
from bayes_scaling.energy.training import EnergyModel
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

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "LAWS",
    "BayesScalingError",
    "Fit",
    "Forecaster",
    "LawAverage",
    "EnergyModel",
    "ReportConfig",
    "Prior",
    "SamplingError",
    "SamplingWarning",
    "DataWarning",
    "InputError",
    "RunTable",
    "RunTableError",
    "cite",
    "fit",
    "get_law",
    "register_law",
    "list_datasets",
    "load_fit",
    "load_dataset",
    "read_runs",
    "summarize",
    "backtest",
    "backtest_check",
    "lfo_table",
    "lfo_weights",
    "loo_table",
    "run_report",
]
