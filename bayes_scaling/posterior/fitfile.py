"""The fit file: one netCDF file holding an ArviZ 1 DataTree, the configuration as JSON and
SHA-256 hashes of the configuration and of the draws; its format versions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bayes_scaling.errors import InputError

#: 3: the structural error's draws have (chain, draw) dimensions and its kept back-tests a group of
#: their own; 2 kept both in one group along a flat ``sample`` dimension; 1 (bayes_scaling 0.1) had
#: no hash of the draws.
FORMAT_VERSION = 3


#: Older formats that load_fit converts.
CONVERTIBLE_FORMATS = (1, 2)


_ATTR = "bayes_scaling_"


#: The DataTree group holding the draws of the structural error (b, τ, ω, ρ), dimensions (chain, draw).
STRUCTURAL_GROUP = "structural_error"
#: The group of the fit's own back-tests that the structural error learned from (one row per held-out run).
BACKTESTS_GROUP = "structural_backtests"
#: A fit near the frontier (``window``) that left runs out: the law's parameters fitted to every run,
#: (chain, draw), from which its compute-optimal allocation is computed.
ALLOCATION_GROUP = "allocation_posterior"


#: Groups a fit file leaves out because they follow from the draws, the runs and the seed.
DERIVED_GROUPS = ("log_likelihood", "posterior_predictive", "prior", "prior_predictive")


class FitFileError(InputError):
    """A saved fit cannot be loaded: not a fit file, modified, or made for another model."""


def draws_hash(tree) -> str:
    """SHA-256 of the posterior draws, of the structural-error draws and of the allocation's
    (every variable, sorted by name, as float64 bytes).

    Parameters
    ----------
    tree
        A fit's DataTree.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    for group in ("posterior", STRUCTURAL_GROUP, BACKTESTS_GROUP, ALLOCATION_GROUP):
        if group not in tree.children:
            continue
        node = tree[group]
        for name in sorted(node.data_vars):
            values = np.ascontiguousarray(np.asarray(node[name].values, dtype=float))
            digest.update(f"{group}/{name}{values.shape}".encode())
            digest.update(values.tobytes())
        digest.update(str(node.attrs.get("meta", "")).encode())
    return digest.hexdigest()


def _read_tree(source: Path):
    """The whole DataTree of a netCDF file, in memory, with the file closed again."""
    import xarray as xr

    try:
        with xr.open_datatree(str(source)) as opened:
            return opened.load().copy(deep=True)
    except Exception as exc:  # netCDF/HDF5 raise many types for non-netCDF input
        raise FitFileError(f"{source}: not a readable netCDF fit file ({type(exc).__name__}: {exc})") from None

