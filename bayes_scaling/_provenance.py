"""What a result depends on besides its inputs: package versions, hashes of configurations and
of this package's source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def package_versions(packages: Sequence[str] = ("bayes-scaling", "pymc", "pytensor", "arviz", "numpy", "nutpie")
                     ) -> dict[str, str]:
    """Installed versions of bayes_scaling and the libraries its results depend on (or of ``packages``).

    Parameters
    ----------
    packages
        Distribution names.

    Returns
    -------
    dict of str to str
        Versions by name (``"not installed"`` for missing ones).
    """
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the configuration as canonical JSON.

    Parameters
    ----------
    config
        A JSON-serializable configuration.

    Returns
    -------
    str
        A hex SHA-256.
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: Bundled data a fit's result depends on (the structural error starts from this population):
#: rebuilt by ``datasets/build/``, they change a development install without a version.
_FIT_DATA = ("extrapolation-population.csv",)


@cache
def source_digest() -> str:
    """SHA-256 of this package's Python source and of the bundled data fits depend on
    (:data:`_FIT_DATA`): a development install changes them without a version."""
    from bayes_scaling._paths import data_dir

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        digest.update(path.read_bytes())
    for name in _FIT_DATA:
        digest.update(name.encode())
        digest.update((data_dir() / name).read_bytes())
    return digest.hexdigest()

