"""Writing results without losing anything: atomic files and all-or-nothing output folders.

Two tools, used by every command and by the public API:

* :func:`atomic_file` — write one file through a temporary sibling and rename it into
  place, so a reader never sees half a file and a failure leaves the old file (or none).
* :func:`output_folder` — build a whole result folder in a hidden staging folder beside
  it and move it into place only when everything succeeded.  A lock keeps two runs from
  writing the same folder; ``force`` replaces only what bayes_scaling wrote there before
  (recorded in a marker file), never an input and never a user's own files.

An interrupted or failed run leaves the previous folder as it was, or no folder, and the
next run just works (stale staging folders of dead runs are removed under the lock).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from bayes_scaling.errors import InputError

try:  # POSIX: the lock is released by the kernel when its holder dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ['MARKER', 'atomic_file', 'check_output_folder', 'output_folder', 'free_folder', 'write_text_atomic', 'write_netcdf', 'read_marked_tree', 'Stopped', 'request_stop', 'clear_stop']

log = logging.getLogger(__name__)

#: The file in every output folder that lists what bayes_scaling wrote there.
MARKER = ".bayes-scaling.json"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any failure (an exception, an interrupt) the temporary file is removed and
    ``path`` keeps its previous content.  The temporary name keeps the suffix, so
    writers that choose a format by extension still work.

    Parameters
    ----------
    path
        The file to write.

    Yields
    ------
    pathlib.Path
        The temporary file to write into.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def new_file_target(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """The path a result file is written to, refused when it exists (unless ``overwrite``) or when
    its folder does not.

    Parameters
    ----------
    path
        The file.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        When the file exists and ``overwrite`` is not set, or its folder does not exist.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; pass overwrite=True (command line: --force) to replace it")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent} is not a folder")
    return target


def read_marked_tree(path: str | os.PathLike, *, kind: str, what: str, writer: str):
    """Read a netCDF DataTree that a writer marked with ``attrs["kind"] = kind``, loaded into memory.

    Parameters
    ----------
    path
        The file.
    kind
        The mark its writer puts in its attributes.
    what, writer
        What such a file is and what writes it, for the error.

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    InputError
        When the file is missing, unreadable or not of that kind.
    """
    import xarray as xr

    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    try:
        tree = xr.open_datatree(str(source)).load()
    except (OSError, ValueError) as exc:
        raise InputError(f"{source} is not a readable netCDF file ({exc})") from None
    if tree.attrs.get("kind") != kind:
        raise InputError(f"{source} is not {what} ({writer} writes them)")
    return tree


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically.

    Parameters
    ----------
    path
        The file to write.
    text
        Its content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def write_netcdf(tree, path: str | os.PathLike) -> Path:
    """Write an xarray DataTree (or Dataset) to ``path`` as netCDF-4, atomically.

    The file is made in memory and then written as bytes: a full disk is then an ``OSError`` of an
    ordinary write, where HDF5 failing in the middle of its own writes left broken objects whose
    clean-up crashed the process (a segmentation fault).

    Parameters
    ----------
    tree
        The DataTree or Dataset.
    path
        The file to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = bytes(tree.to_netcdf())  # a copy: the view's buffer must not outlive a failed write
    target = Path(path)
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)
    return target


def free_folder(path: str | os.PathLike) -> Path:
    """``path`` if it does not exist or is empty, else the first free ``path-2``, ``path-3``, …

    Parameters
    ----------
    path
        The folder wanted.

    Returns
    -------
    pathlib.Path
        A folder name that does not exist or names an empty folder.
    """
    base = Path(path)
    candidate, n = base, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class _FolderLock:
    """An exclusive, non-blocking lock on an output folder's name (a hidden file beside it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder.parent / f".{_short(folder.name)}.lock"
        self.handle = None

    def acquire(self) -> None:
        for _ in range(20):
            handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
            if fcntl is None:  # pragma: no cover
                self.handle = handle
                return
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip()
                handle.close()
                raise InputError(f"{self.folder} is being written by another bayes-scaling run"
                                 f"{f' (process {holder})' if holder else ''}; wait for it to finish, or "
                                 f"choose another output folder") from None
            # The previous holder may have removed the file between our open and our lock.
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(str(os.getpid()))
                    handle.flush()
                except OSError:  # a full disk: no lock, no lock file left behind
                    with contextlib.suppress(OSError):
                        handle.close()  # flushes again, and fails again
                    with contextlib.suppress(OSError):
                        self.path.unlink()
                    raise
                self.handle = handle
                return
            handle.close()
        raise InputError(f"could not lock {self.path}")  # pragma: no cover

    def release(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.handle.close()
            self.handle = None


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that bayes_scaling did not write there (per the marker files)."""
    ours: set[str] = set()
    for marker in folder.rglob(MARKER):
        base = marker.parent.relative_to(folder)
        try:
            listed = json.loads(marker.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            continue
        ours |= {str(base / name) for name in listed} | {str(base / MARKER)}
    return [f for f in _files_under(folder) if f not in ours]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_output_folder(target: str | os.PathLike, *, force: bool = False,
                        inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raise :class:`InputError` now if :func:`output_folder` would refuse ``target`` (so a long
    command fails before its work, not after).

    Parameters
    ----------
    target, force, inputs
        As for :func:`output_folder`.

    Returns
    -------
    None

    Raises
    ------
    InputError
        For the current folder (or one holding it), a file, a symbolic link, a folder holding an
        input, or one that ``force`` may not replace.
    """
    target = Path(target)
    if target.is_symlink():  # dangling or not: results are staged beside it and renamed, which a link defeats
        raise InputError(f"{target} is a symbolic link (to {os.readlink(target)}); results go into a folder of "
                         f"their own: name a real folder, e.g. the link's target")
    if not target.name or target.resolve() == Path.cwd().resolve() or Path.cwd().resolve().is_relative_to(
            target.resolve()):
        raise InputError(f"{target} is the current folder (or holds it); results go into a folder of their "
                         f"own, e.g. --out results")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is not a folder; choose another output folder")
    for item in inputs:
        path = Path(item)
        if path.exists() and _inside(path, target):
            raise InputError(f"the output folder {target} holds this command's input {path}; results never "
                             f"replace inputs: choose another output folder")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise InputError(f"{target} is not empty; choose another folder or pass --force to replace the "
                             f"results bayes-scaling wrote there")
        foreign = _foreign_files(target)
        if foreign:
            listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise InputError(f"{target} holds files that bayes-scaling did not write ({listed}); --force replaces "
                             f"only earlier results: move those files or choose another output folder")


#: The longest folder name used as is in the hidden lock, staging and replaced names beside it (a file
#: name holds at most 255 bytes; those add up to 25); a longer one is cut and given a hash of the whole.
_NAME_ROOM = 200


def _short(name: str) -> str:
    """``name``, or for a long one its first part and a hash of all of it: hidden sibling names that
    fit in a file name whatever the folder's name (a valid 245-character ``--out`` included)."""
    if len(name.encode()) <= _NAME_ROOM:
        return name
    import hashlib

    cut = name.encode()[:_NAME_ROOM - 17].decode(errors="ignore")
    return f"{cut}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _remove_stale(target: Path) -> None:
    for pattern in (f".{_short(target.name)}.staging-*", f".{_short(target.name)}.replaced-*"):
        for stale in target.parent.glob(pattern):
            log.info("removing %s, left by an interrupted run", stale)
            shutil.rmtree(stale, ignore_errors=True)


class Stopped(BaseException):
    """A stop was asked for (SIGTERM on the command line): raised so that result folders are left as
    they were, like Ctrl-C."""


_stop_requested = False


def request_stop() -> None:
    """Record a stop request, then raise :class:`Stopped`.

    A signal handler's exception lands wherever the main thread is; inside a finalizer
    (``__del__``, run by the garbage collector) Python ignores it and carries on.  The request
    is therefore recorded first, and :func:`output_folder` honours it before it commits.

    Returns
    -------
    None
        It never returns.

    Raises
    ------
    Stopped
        Always.
    """
    global _stop_requested
    _stop_requested = True
    raise Stopped()


def clear_stop() -> None:
    """Forget an earlier stop request (a new command starts).

    Returns
    -------
    None
    """
    global _stop_requested
    _stop_requested = False


#: The errors of a disk that is full, over quota, or of a file size limit (ulimit -f): the results
#: cannot be written, through no bug.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, *, force: bool = False, command: str = "",
                  inputs: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Build a result folder all-or-nothing; yields the staging folder to write into.

    Parameters
    ----------
    path
        The folder the results end up in.  It must not exist or be empty unless ``force``.
    force
        Replace a folder of earlier bayes_scaling results.  Files that bayes_scaling did
        not write there (a user's data, notes) make it refuse rather than delete them.
    command
        What wrote the folder, recorded in its marker file.
    inputs
        Files the command reads; the output folder may not contain any of them.

    Yields
    ------
    pathlib.Path
        The staging folder to write the results into.

    Raises
    ------
    InputError
        When the folder is in use by another run, is not empty (without ``force``), holds
        files that are not earlier results, holds an input, or cannot be written.

    Notes
    -----
    The staging folder is a hidden sibling of ``path``.  Only when the body finishes
    without an exception is it renamed onto ``path`` (an earlier result folder is moved
    aside first and deleted after).  On an exception or interrupt it is deleted and
    ``path`` is left as it was, also when a stop was requested (:func:`request_stop`) but its
    exception was swallowed on the way.
    """
    target = Path(path)
    inputs = list(inputs)
    check_output_folder(target, force=force, inputs=inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = _FolderLock(target)
        lock.acquire()
    except OSError as exc:
        raise InputError(f"cannot write to {target.parent}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        _remove_stale(target)
        stage = target.parent / f".{_short(target.name)}.staging-{os.getpid()}"
        try:
            stage.mkdir()
        except OSError as exc:
            raise InputError(f"cannot write to {target.parent}: {exc.strerror.lower()}") from None
        try:
            try:
                yield stage
            except OSError as exc:
                if exc.errno not in _NO_SPACE:
                    raise
                reason = (exc.strerror or os.strerror(exc.errno)).lower()
                raise InputError(f"cannot write the results to {target}: {reason}; nothing was "
                                 f"written (an earlier result folder is unchanged)") from None
            files = _files_under(stage)
            (stage / MARKER).write_text(json.dumps(
                {"written_by": command or "bayes_scaling", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "files": files}, indent=1), encoding="utf-8")
            check_output_folder(target, force=force, inputs=inputs)  # nothing changed while we worked
            if _stop_requested:  # a stop whose exception something swallowed: still nothing is written
                raise Stopped()
            _swap_into_place(stage, target)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    finally:
        lock.release()


def _swap_into_place(stage: Path, target: Path) -> None:
    old = None
    if target.is_dir():
        old = target.parent / f".{_short(target.name)}.replaced-{os.getpid()}"
        os.replace(target, old)
    try:
        os.replace(stage, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
