"""The on-disk cache folder of fits and of a fit's internal back-tests, and its keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from bayes_scaling._provenance import package_versions, source_digest

__all__ = ["FIT_CACHE_ENV", "DISPLAY_ONLY", "UNWRITABLE", "default_fit_cache", "cache_key", "content_digest"]


#: Environment variable naming the folder of cached fits (default: the user cache directory).
FIT_CACHE_ENV = "BAYES_SCALING_FIT_CACHE"


#: fit() options that change nothing in its result (left out of cache keys).
DISPLAY_ONLY = ("progress", "strict", "cache_dir")


def default_fit_cache() -> Path:
    """Where cached fits live unless a command is told otherwise: ``$BAYES_SCALING_FIT_CACHE``, or
    ``fits/`` in the user cache directory (keys hold data, settings, priors and versions, so one
    cache serves every report and comparison safely).

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get(FIT_CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("bayes_scaling")) / "fits"



#: What a cache entry's failure to be written says: the result stands, the cache is optional.
UNWRITABLE = "could not write the cache entry {path} ({error}); the result is kept and used (--no-cache skips the cache)"


def content_digest(arrays: dict[str, Any]) -> str:
    """SHA-256 of named arrays (names sorted; dtype, shape and bytes of each): what an entry stores to
    prove its content has not changed since it was written.

    Parameters
    ----------
    arrays
        Arrays by name.

    Returns
    -------
    str
        A hex SHA-256.
    """
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(arrays):
        values = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{values.dtype.str}|{values.shape}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def cache_key(*parts: Any) -> str:
    """The key of a cached result made from ``parts`` (JSON-serializable: what was computed, the
    data's fingerprint, every setting), the installed package versions and this package's source:
    an entry is not reused after an upgrade or an edit of the code.

    Parameters
    ----------
    *parts
        What identifies the result.

    Returns
    -------
    str
        16 hex digits.

    Examples
    --------
    >>> from bayes_scaling.io.cache import cache_key
    >>> len(cache_key("fit", "a1b2", {"draws": 1000}))
    16
    >>> cache_key("fit", {"seed": 1}) == cache_key("fit", {"seed": 2})
    False
    """
    text = json.dumps([*parts, package_versions(), source_digest()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
