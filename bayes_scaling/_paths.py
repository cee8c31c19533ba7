"""Where the package's data files are.

The repository keeps curated data in its top-level ``datasets/`` folder.  A wheel installs
that folder as ``bayes_scaling/_datasets``; a source checkout or an editable install reads
it in place.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bayes_scaling.errors import BayesScalingError

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir() -> Path:
    """The folder holding ``registry.toml`` and the embedded datasets."""
    for candidate in (_PACKAGE / "_datasets", _PACKAGE.parent / "datasets"):
        if (candidate / "registry.toml").is_file():
            return candidate
    raise BayesScalingError(
        f"the bundled datasets are missing (looked in {_PACKAGE / '_datasets'} and "
        f"{_PACKAGE.parent / 'datasets'}); reinstall bayes-scaling")
