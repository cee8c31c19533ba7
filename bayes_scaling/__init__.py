"""bayes_scaling: Bayesian analysis of neural scaling laws and of training energy.

The public API is re-exported here; see ``ARCHITECTURE.md`` for the module map.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from .errors import BayesScalingError, DataWarning, InputError, RunTableError
from .datasets import cite, list_datasets, load_dataset
from .diagnostics import SamplingError, SamplingWarning
from .fit import Fit, fit, load_fit
from .forecast import Forecaster, summarize
from .averaging import LawAverage
from .compare import backtest, backtest_check, lfo_table, lfo_weights, loo_table
from .energy import EnergyModel
from .report import ReportConfig, run_report
from .laws import LAWS, get_law, register_law
from .priors import Prior
from .runs import RunTable, read_runs

try:
    __version__ = version("bayes-scaling")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

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
