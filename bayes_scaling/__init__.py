"""bayes_scaling: Bayesian analysis of neural scaling laws and of training energy.

The public API is re-exported here; see ``ARCHITECTURE.md`` for the module map.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from .errors import BayesScalingError, DataWarning, InputError, RunTableError
from .datasets import cite, list_datasets, load_dataset
from .runs import RunTable, read_runs

try:
    __version__ = version("bayes-scaling")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "BayesScalingError",
    "DataWarning",
    "InputError",
    "RunTable",
    "RunTableError",
    "cite",
    "list_datasets",
    "load_dataset",
    "read_runs",
]
