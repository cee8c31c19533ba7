"""The on-disk cache folder of fits and of a fit's internal back-tests, and its keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from bayes_scaling._provenance import package_versions, source_digest

__all__ = ["FIT_CACHE_ENV", "DISPLAY_ONLY", "default_fit_cache", "cache_key"]


#: Environment variable naming the folder of cached fits (default: the user cache directory).
FIT_CACHE_ENV = "BAYES_SCALING_FIT_CACHE"


#: fit() options that change nothing in its result (left out of cache keys).
DISPLAY_ONLY = ("progress", "strict", "cache_dir")


def default_fit_cache() -> Path:
    """Where cached fits live unless a command is told otherwise: ``$BAYES_SCALING_FIT_CACHE``, or
    ``fits/`` in the user cache directory (keys hold data, settings, priors and versions, so one
    cache serves every report and comparison safely)."""
    env = os.environ.get(FIT_CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("bayes_scaling")) / "fits"



def cache_key(*parts: Any) -> str:
    """The key of a cached result made from ``parts`` (JSON-serializable: what was computed, the
    data's fingerprint, every setting), the installed package versions and this package's source:
    an entry is not reused after an upgrade or an edit of the code.

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
