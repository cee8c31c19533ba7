"""Loading a saved fit: format, hashes, data fingerprint and the caller's expectations checked.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bayes_scaling._provenance import config_hash
from bayes_scaling.errors import DataWarning
from bayes_scaling.posterior.fit_result import (
    Fit,
    _derive_groups,
    _diagnosed,
    structural_from_groups,
    structural_groups,
)
from bayes_scaling.posterior.fitfile import (
    _ATTR,
    CONVERTIBLE_FORMATS,
    DERIVED_GROUPS,
    FORMAT_VERSION,
    STRUCTURAL_GROUP,
    FitFileError,
    _read_tree,
    draws_hash,
)
from bayes_scaling.sampling.diagnostics import check_sampling


def _convert_format_1(tree, source: Path):
    """Format 1 (ArviZ 0.x InferenceData) has the same groups; keep only the kept sample stats."""
    import xarray as xr

    from bayes_scaling.sampling.nuts import KEPT_STATS

    warnings.warn(f"{source}: fit-file format 1 (bayes_scaling 0.1) converted on load; its posterior draws "
                  f"carry no hash and cannot be verified. Save the fit again to write format {FORMAT_VERSION}.",
                  DataWarning, stacklevel=3)
    groups = {name: tree[name].to_dataset() for name in tree.children}
    if "sample_stats" in groups:
        stats = groups["sample_stats"]
        groups["sample_stats"] = stats[[n for n in KEPT_STATS if n in stats.data_vars]]
    return xr.DataTree.from_dict(groups)


def _convert_format_2(tree):
    """Format 2 kept the structural error along a flat ``sample`` dimension, its back-tests beside it:
    the same numbers, regrouped with (chain, draw) dimensions (lossless; no warning)."""
    import xarray as xr

    post = tree["posterior"]
    structural = structural_from_groups(tree[STRUCTURAL_GROUP])
    groups = {name: tree[name].to_dataset() for name in tree.children if name != STRUCTURAL_GROUP}
    groups |= structural_groups(structural, post.sizes["chain"], post.sizes["draw"])
    return xr.DataTree.from_dict(groups)


def load_fit(path: str | os.PathLike, *, law: str | None = None, likelihood: str | None = None,
             pooling: str | None = None, fingerprint: str | None = None) -> Fit:
    """Load a fit saved by :meth:`Fit.save`.

    Parameters
    ----------
    path
        The ``fit.nc`` file.
    law, likelihood, pooling, fingerprint
        What the caller expects (None: anything); a file made for another law, likelihood,
        pooling or data (its runs' fingerprint) is refused.

    Returns
    -------
    Fit
        The same draws, configuration and diagnostics as when it was saved.

    Raises
    ------
    FitFileError
        With the reason and the file name: not a fit file, modified since it was written (its
        hashes), another format version, or not what the caller expects.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import bayes_scaling as bs
    >>> fit = bs.fit("chinchilla", draws=200, tune=300, chains=2, backtests=False, seed=3)
    >>> path = fit.save(pathlib.Path(tempfile.mkdtemp()) / "fit.nc")
    >>> again = bs.load_fit(path, law="chinchilla")
    >>> bool((again.draws("alpha") == fit.draws("alpha")).all())
    True
    """
    source = Path(path)
    if source.is_dir():  # a fit's output folder (bayes-scaling fit --out DIR), as the command line takes
        if not (source / "fit.nc").is_file():
            raise FitFileError(f"{source}: a folder without a fit.nc; give the fit file, or the folder "
                               f"`bayes-scaling fit --out` wrote")
        source = source / "fit.nc"
    if not source.is_file():
        raise FitFileError(f"{source}: no such fit file")
    idata = _read_tree(source)
    attrs = dict(idata["posterior"].attrs) if "posterior" in idata.children else {}
    if _ATTR + "config" not in attrs:
        raise FitFileError(f"{source}: a netCDF file, but not one written by bayes_scaling (no configuration)")
    try:
        fmt = int(attrs.get(_ATTR + "format", -1))
    except (TypeError, ValueError):
        raise FitFileError(f"{source}: its format attribute {attrs[_ATTR + 'format']!r} is not a format version; "
                           f"the file was modified") from None
    try:
        config = json.loads(attrs[_ATTR + "config"])
    except (TypeError, ValueError):
        raise FitFileError(f"{source}: its stored configuration is not valid JSON; the file was modified") from None
    if not isinstance(config, dict):
        raise FitFileError(f"{source}: its stored configuration is not a table of settings; the file was modified")
    try:
        return _checked_fit(source, idata, attrs, fmt, config, law=law, likelihood=likelihood, pooling=pooling,
                            fingerprint=fingerprint)
    except KeyError as exc:
        raise FitFileError(f"{source}: its stored configuration lacks {exc}; the file was modified or written by "
                           f"an incompatible version") from None


def _checked_fit(source: Path, idata, attrs: Mapping[str, Any], fmt: int, config: dict[str, Any], *,
                 law: str | None, likelihood: str | None, pooling: str | None, fingerprint: str | None) -> Fit:
    if fmt != FORMAT_VERSION and fmt not in CONVERTIBLE_FORMATS:
        raise FitFileError(f"{source}: written in fit-file format {fmt} by bayes_scaling "
                           f"{config.get('versions', {}).get('bayes-scaling', '?')}; this version reads formats "
                           f"{', '.join(map(str, (*CONVERTIBLE_FORMATS, FORMAT_VERSION)))}. Re-run the fit, or use "
                           f"a matching bayes_scaling.")
    if config_hash(config) != attrs.get(_ATTR + "config_hash"):
        raise FitFileError(f"{source}: the stored configuration does not match its hash; the file was modified")
    if fmt >= 2:  # format 2's hash covers its own layout: checked before it is converted
        if draws_hash(idata) != attrs.get(_ATTR + "draws_hash"):
            raise FitFileError(f"{source}: the posterior draws do not match their hash; the file was modified")
    if fmt == 1:
        idata = _convert_format_1(idata, source)
    if STRUCTURAL_GROUP in idata.children and "sample" in idata[STRUCTURAL_GROUP].dims:
        idata = _convert_format_2(idata)
    expected = {"law": law, "likelihood": likelihood, "pooling": pooling}
    actual = {"law": config["law"], "likelihood": config["likelihood"]["name"], "pooling": config["pooling"]}
    for key, want in expected.items():
        if want is not None and want != actual[key]:
            raise FitFileError(f"{source}: holds a fit with {key} {actual[key]!r}, not the expected {want!r}")
    timing = json.loads(attrs.get(_ATTR + "timing", "{}"))
    diagnostics = (check_sampling(idata, _diagnosed(idata, config), label=str(source))
                   if "sample_stats" in idata.children else None)
    result = Fit(idata=idata, config=config, diagnostics=diagnostics, timing=timing)
    if not all(group in idata.children for group in DERIVED_GROUPS):
        _derive_groups(result, result.runs, config["sampler"]["seed"])
    actual_fp = result.runs.fingerprint()
    if actual_fp != config["data"]["fingerprint"]:
        raise FitFileError(f"{source}: the stored runs do not match the configuration's data fingerprint")
    if fingerprint is not None and fingerprint != actual_fp:
        raise FitFileError(f"{source}: fitted to other data (fingerprint {actual_fp[:12]}…, "
                           f"expected {fingerprint[:12]}…)")
    return result

