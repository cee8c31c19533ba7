"""Remote datasets: downloaded once from a pinned URL, verified by SHA-256, cached.

The cache folder is, in order of precedence: the ``cache_dir`` argument, the
``BAYES_SCALING_DATA_DIR`` environment variable, or the user cache directory that
``pooch`` chooses for this operating system.  A file is stored at the same relative path
as in the registry (e.g. ``epoch-research/analyzing-chinchilla/9225883/…``), so a folder
of files fetched by hand can serve as the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from bayes_scaling.errors import BayesScalingError

__all__ = ['CACHE_ENV', 'cache_dir', 'fetch', 'sha256_of', 'RemoteDataError']

log = logging.getLogger(__name__)

CACHE_ENV = "BAYES_SCALING_DATA_DIR"


class RemoteDataError(BayesScalingError):
    """A remote dataset could not be obtained or failed verification."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The dataset cache folder in force (see the module docstring).

    Parameters
    ----------
    override
        A folder to use instead.

    Returns
    -------
    pathlib.Path
    """
    if override is not None:
        return Path(override)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("bayes_scaling"))


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks.

    Parameters
    ----------
    path
        A file.

    Returns
    -------
    str
        Its hex SHA-256.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _by_hand(url: str, target: Path) -> str:
    return (f"To provide it by hand, download {url} and save it as {target} "
            f"(or point {CACHE_ENV} at a folder holding it under the same relative path).")


def fetch(url: str, sha256: str, relative_path: str, *, cache: str | os.PathLike | None = None,
          download: bool = True) -> Path:
    """Return the local path of a verified copy of ``url``, downloading it if needed.

    Raises
    ------
    RemoteDataError
        The cached copy has the wrong hash, or there is no cached copy and it cannot be
        downloaded (no network, ``download=False``) or the download has the wrong hash.
        The message names the URL and says how to provide the file by hand.

    Parameters
    ----------
    url
        The pinned URL.
    sha256
        Its SHA-256.
    relative_path
        Its path inside the cache.
    cache
        The cache folder.
    download
        Whether it may be downloaded.

    Returns
    -------
    pathlib.Path
        A verified local copy.
    """
    root = cache_dir(cache)
    target = root / relative_path
    if target.is_file():
        actual = sha256_of(target)
        if actual != sha256:
            raise RemoteDataError(
                f"the cached copy {target} of {url} has SHA-256 {actual}, expected {sha256}; "
                f"it was changed or truncated. Delete it to download it again. " + _by_hand(url, target))
        log.debug("using cached %s", target)
        return target
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None or target.is_dir():
        where = f"{blocking} is a file where a folder is needed" if blocking else f"{target} is a folder"
        raise RemoteDataError(f"the dataset cache cannot hold {relative_path}: {where}; remove it or set "
                              f"{CACHE_ENV} to another folder")
    if not download:
        raise RemoteDataError(f"{url} is not in the dataset cache and downloading is off. " + _by_hand(url, target))
    import pooch

    log.info("downloading %s to %s", url, target)
    try:
        path = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=target.name,
                              path=target.parent, progressbar=False)
    except ValueError as exc:  # pooch's hash mismatch
        raise RemoteDataError(f"the download of {url} does not match its pinned SHA-256 {sha256} "
                              f"({exc}). " + _by_hand(url, target)) from None
    except Exception as exc:  # network errors come as requests/urllib exceptions
        raise RemoteDataError(f"could not download {url}: {type(exc).__name__}: {exc}. "
                              + _by_hand(url, target)) from None
    return Path(path)
