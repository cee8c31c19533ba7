"""Compile a PyMC model for nutpie so that the next process loads it from disk.

``nutpie.compile_pymc_model`` spends most of a fresh process's compile time (5-6 s of 8 s
on the Chinchilla law) building two small numba C callbacks around PyTensor's compiled
log density and its "expand" function.  Those callbacks close over run-time objects, so
numba cannot cache them, and every process builds them again; PyTensor's own numba
functions *are* cached on disk.

This module builds the same two C callbacks from generated source whose only free
objects are PyTensor's cached functions, and registers them with PyTensor's numba cache
locator under a key made of that source and PyTensor's own cache keys.  A later process
then loads them from PyTensor's compile directory (``pytensor.config.base_compiledir``,
which is per worker in :mod:`bayes_scaling.batch`) instead of compiling.  The result is a
``nutpie`` ``CompiledPyMCModel`` like the one nutpie builds: the same log density, the same
initial points, the same ``with_data``, so the draws are bit-identical for a seed (tested).

Numba code compiled afresh and the same code loaded from the cache are not bit-identical: on
the Chinchilla law they differed in the last bit of a gradient component, and NUTS took other
draws (numba/numba#10617 reports fresh and cached code optimized differently).  So that the
first process on a cold compile directory draws what every later one does, a cold compile
happens in a child process (:func:`_compile_in_child`), and this process loads the result from
the cache like the later ones (tested).  ``BAYES_SCALING_COMPILE_IN_CHILD=0`` turns that off.

Before that, PyTensor rewrites the log density's graph and its gradient (about 1.5 s of a
2 s build for the Chinchilla law, in every process).  The rewritten graphs are kept too, as
pickles in ``bayes_scaling-graphs/`` of the compile directory, keyed by the model's graph as
PyTensor prints it (operations, constants and types — not the data, which enter as shared
variables) and the versions of the compile toolchain; a later process rebuilds the two
functions from them without rewriting, and with the current data.  The rebuilt functions are
the same graphs, so PyTensor's numba cache serves them and they compute bit for bit what the
rewritten ones do (tested).

It relies on nutpie internals (``_make_functions``, ``_rv_dict_to_flat_array_wrapper``,
``CompiledPyMCModel``, the layout of the user-data record).  Anything unexpected raises
:class:`CacheUnavailable`, and the caller falls back to ``nutpie.compile_pymc_model``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ['compile_cached', 'CacheUnavailable']

log = logging.getLogger(__name__)


class CacheUnavailable(RuntimeError):
    """The disk-cached path cannot build this model; use nutpie's own compile."""


_ADDRESS = None


def _address_intrinsic():
    """A numba intrinsic turning an integer address into a ``void*`` (defined once, lazily)."""
    global _ADDRESS
    if _ADDRESS is None:
        from numba.core import cgutils, types
        from numba.extending import intrinsic

        @intrinsic
        def address_as_pointer(typingctx, address):
            def codegen(context, builder, signature, args):
                return builder.inttoptr(args[0], cgutils.voidptr_t)

            return types.voidptr(address), codegen

        _ADDRESS = address_as_pointer
    return _ADDRESS


def _unpack_lines(ndims: list[int], read: list[tuple[int, str]]) -> tuple[list[str], int]:
    """Source lines viewing the shared arrays a function reads; and the number of user-data words.

    nutpie's user-data record holds, for n shared arrays, n data addresses, n sizes, then
    each array's shape: all 8-byte unsigned words, packed.  ``ndims`` are the ranks of all n
    arrays; ``read`` the (position among them, dtype name) of those the function reads, in order.
    """
    n = len(ndims)
    starts = np.cumsum([2 * n, *ndims]).tolist()
    lines = []
    for k, (i, dtype) in enumerate(read):
        shape = ", ".join(f"np.intp(words[{starts[i] + j}])" for j in range(ndims[i]))
        shape = f"({shape}{',' if ndims[i] == 1 else ''})"
        lines.append(f"        s{k} = numba.carray(as_pointer(words[{i}]), {shape}, np.{dtype})")
    return lines, starts[-1]


_LOGP_SOURCE = """
def {name}(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
{unpack}
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
        value, grad = inner(x{args})
        logp[()] = value
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(value):
            return 4
    except Exception:
        return 1
    return 0
"""

_EXPAND_SOURCE = """
def {name}(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        words = numba.carray(user_data_, ({n_words},), np.uint64)
{unpack}
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
        (values,) = inner(x{args})
        out[...] = values
    except Exception:
        return -2
    return 0
"""


def _cached_cfunc(template: str, kind: str, pytensor_fn, shared_vars: list, signature, **fields):
    """A numba C callback around a PyTensor numba function, cached in PyTensor's numba cache."""
    import numba
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    inner = pytensor_fn.vm.jit_fn
    inner_key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    if inner_key is None:
        raise CacheUnavailable(f"PyTensor gave no cache key for the {kind} function")
    read = [(shared_vars.index(var), np.dtype(var.type.dtype).name) for var in pytensor_fn.get_shared()]
    unpack, n_words = _unpack_lines([var.type.ndim for var in shared_vars], read)
    args = "".join(f", s{k}" for k in range(len(read)))
    body = template.format(name=f"bayes_scaling_{kind}", n_words=n_words, unpack="\n".join(unpack),
                           args=args, **fields)
    # the module's name is in the key: a cached callback records it, and one made under another (an
    # earlier layout's) cannot be loaded here
    key = hashlib.sha256(f"{body}\n{inner_key}\n{signature}\n{__name__}\nv1".encode()).hexdigest()
    py_func = compile_numba_function_src(
        body, f"bayes_scaling_{kind}",
        global_env={"__name__": __name__, "numba": numba, "np": np, "inner": inner,
                    "as_pointer": _address_intrinsic()},
        cache_key=f"bayes_scaling_{kind}_{key}")
    return numba.cfunc(signature, cache=True)(py_func)


def _check_callback(logp_c, logp_fn, point: np.ndarray, user_data: np.ndarray, shared: list) -> None:
    """The C callback must give PyTensor's log density and gradient at a point, bit for bit."""
    import ctypes

    x = np.ascontiguousarray(point, dtype=np.float64)
    grad, value = np.empty_like(x), np.empty((), dtype=np.float64)
    as_double = ctypes.POINTER(ctypes.c_double)
    code = logp_c.ctypes(x.size, x.ctypes.data_as(as_double), grad.ctypes.data_as(as_double),
                         value.ctypes.data_as(as_double), ctypes.c_void_p(user_data.ctypes.data))
    expected_value, expected_grad = logp_fn.vm.jit_fn(x, *shared)
    if code != 0 or not (np.array_equal(value, expected_value) and np.array_equal(grad, expected_grad)):
        raise CacheUnavailable(f"the cached log density disagrees with PyTensor's (code {code})")


#: Bump when what the graph files hold changes (2: the package moved into domains, and the graphs
#: pickle references to its modules by their dotted paths; 3: each file has its SHA-256 beside it).
_GRAPH_FORMAT = "3"
_TOOLCHAIN = ("pytensor", "pymc", "nutpie", "numba", "numpy")


def require_compile_dir() -> Path:
    """PyTensor's compile directory, checked before any work: a folder that cannot be made or
    written (or a file in its place) is the user's environment, said as such (exit 2).

    Returns
    -------
    pathlib.Path
        The compile directory.

    Raises
    ------
    InputError
        When PyTensor cannot use it.
    """
    from bayes_scaling.errors import InputError

    advice = ("point it at a writable folder, e.g. PYTENSOR_FLAGS=base_compiledir=$HOME/.pytensor, "
              "or fix the folder's permissions")
    try:
        import pytensor

        folder = Path(pytensor.config.compiledir)
    except ValueError as exc:  # PyTensor refuses a compile directory it cannot create or write
        raise InputError(f"PyTensor's compile directory cannot be used: {exc} ({advice})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"PyTensor's compile directory {folder} is not writable ({advice})")
    return folder


def graph_folder() -> Path:
    """Where rewritten graphs are kept: in PyTensor's compile directory, beside its numba cache."""
    import pytensor

    return Path(pytensor.config.compiledir) / "bayes_scaling-graphs"


def graph_key(model) -> str:
    """What the rewritten graphs of ``model`` depend on: its log density and the variables a draw
    records, as PyTensor prints them with their types, every constant's values in full (the print
    abbreviates long arrays), the sizes of the free variables, and the compile toolchain's
    versions.  Not the data: those are shared variables, printed by name only."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors
    from pytensor.printing import debugprint

    from bayes_scaling._provenance import package_versions

    outputs = [model.logp(), *model.unobserved_value_vars]
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    # the free variables' sizes: a dimension's length is a shared variable too (PyMC's coords), printed
    # by name, but the rewritten graphs are specialised to the number of values they sample
    sizes = [(name, np.shape(value)) for name, value in model.initial_point().items()]
    digest = hashlib.sha256(repr((_GRAPH_FORMAT, package_versions(_TOOLCHAIN), names, sizes)).encode())
    digest.update(debugprint(outputs, file="str", print_type=True).encode())
    for var in ancestors(outputs):
        if isinstance(var, Constant):
            value = np.asarray(var.data)
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _functions(model, initial_point_fn) -> tuple:
    """nutpie's ``_make_functions`` for the numba backend, its rewritten graphs kept on disk.

    On a cold compile directory the numba code is compiled by a child process from the kept graphs,
    and this process loads it from the cache like every later one (:func:`_compile_in_child`)."""
    from nutpie.compile_pymc import _make_functions

    path = graph_folder() / f"{graph_key(model)}.pkl"
    if path.is_file() and (reason := untrusted(path, path.read_bytes())):
        log.warning("not loading the kept graphs %s: %s; rewriting them", path, reason)
        if reason.startswith(_NOT_PRIVATE):  # a folder others can write is no place to keep code either
            return _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                                   pymc_initial_point_fn=initial_point_fn)
    elif path.is_file():
        try:
            return _rebuilt_functions(path, _model_data(model), initial_point_fn, n_free=len(model.free_RVs))
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: build anew
            log.info("rewritten graphs in %s not usable (%s: %s); rewriting", path, type(exc).__name__, exc)
    made = _make_functions(model, mode="NUMBA", compute_grad=True, join_expanded=True,
                           pymc_initial_point_fn=initial_point_fn)
    n_dim, n_expanded, logp_fn, expand_fn, _, shape_info, reparameterized = made
    stored = {"format": _GRAPH_FORMAT, "n_dim": n_dim, "n_expanded": n_expanded, "n_free": len(model.free_RVs),
              "shape_info": shape_info, "reparameterized": reparameterized,
              "graphs": [(fn.maker.fgraph.inputs, fn.maker.fgraph.outputs) for fn in (logp_fn, expand_fn)]}
    try:
        from bayes_scaling.io.outputs import atomic_file

        blob = _pickled_without_data(stored, [*logp_fn.get_shared(), *expand_fn.get_shared()])
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_bytes(blob)
        with atomic_file(_digest_path(path)) as tmp:
            tmp.write_text(hashlib.sha256(blob).hexdigest())
    except Exception as exc:  # noqa: BLE001 - not keeping them only costs the next process time
        log.info("could not keep the rewritten graphs in %s (%s: %s)", path, type(exc).__name__, exc)
        return made
    data = {var.name: np.asarray(var.get_value()) for var in (*logp_fn.get_shared(), *expand_fn.get_shared())}
    if _compile_in_child(path, data, made[4](0)):
        try:
            return _rebuilt_functions(path, _model_data(model), initial_point_fn, n_free=len(model.free_RVs))
        except Exception as exc:  # noqa: BLE001 - the functions made here are as correct
            log.info("could not rebuild from %s (%s: %s)", path, type(exc).__name__, exc)
    return made


_NOT_PRIVATE = "it is not private to this user"


def _digest_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def untrusted(path: Path, blob: bytes) -> str | None:
    """Why the kept graphs in ``path`` must not be unpickled (None: they may be): a pickle runs code,
    so it is loaded only from a file and folder this user owns that no one else can write (as ssh
    and pip treat their own files), and only if its bytes are the ones this package wrote (the
    SHA-256 kept beside it)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    for item in (path, path.parent):
        info = item.stat()
        if uid is not None and info.st_uid != uid:
            return f"{_NOT_PRIVATE} ({item} is owned by uid {info.st_uid}, not {uid})"
        if info.st_mode & 0o022:
            return f"{_NOT_PRIVATE} ({item} is writable by its group or others: chmod go-w {item})"
    digest = _digest_path(path)
    if not digest.is_file() or digest.read_text().strip() != hashlib.sha256(blob).hexdigest():
        return "its bytes are not the ones written here (no SHA-256 beside it, or another one)"
    return None


def _model_data(model) -> Callable[[str], np.ndarray]:
    """The value of the model's data variable (``pm.Data``) of a name: what a rebuilt graph is fed."""
    def value(name: str) -> np.ndarray:
        return np.asarray(model[name].get_value())

    return value


def _pickled_without_data(stored: dict, shared: list) -> bytes:
    """``stored`` pickled with every shared variable emptied: a user's runs are not copied into
    the compile directory (a rebuild is given the model's own data)."""
    values = {var: var.get_value(borrow=True) for var in shared}
    try:
        for var in values:
            var.set_value(np.zeros((0,) * var.type.ndim, dtype=var.type.dtype))
        return pickle.dumps(stored, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        for var, value in values.items():
            var.set_value(value, borrow=True)


def _rebuilt_functions(path: Path, data: Callable[[str], np.ndarray], initial_point_fn, *,
                       n_free: int | None) -> tuple:
    """The functions of :func:`_functions` from kept rewritten graphs, fed ``data(name)`` for each data
    variable: the model's current data, or (:func:`_compile_from_stdin`) what the parent process
    sent.  ``n_free``: the model's number of free variables, checked against the file's (None: not
    checked); without ``initial_point_fn`` the point function is None."""
    import pytensor
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper
    from pytensor.compile.mode import Mode
    from pytensor.compile.sharedvalue import SharedVariable

    blob = path.read_bytes()
    reason = untrusted(path, blob)
    if reason:
        raise CacheUnavailable(reason)
    stored = pickle.loads(blob)  # noqa: S301 - checked by untrusted(): ours, unchanged since we wrote it
    if stored.get("format") != _GRAPH_FORMAT or n_free not in (None, stored["n_free"]):
        raise CacheUnavailable("a graph file of another format or model")
    functions = []
    for inputs, outputs in stored["graphs"]:
        explicit = []
        for var in inputs:
            if not isinstance(var, SharedVariable):
                explicit.append(var)
                continue
            value = data(var.name)  # the model's data, by its pm.Data name
            if value.ndim != var.type.ndim or value.dtype != np.dtype(var.type.dtype):
                raise CacheUnavailable(f"data {var.name!r} does not fit the kept graph")
            var.set_value(value)
        functions.append(pytensor.function(explicit, outputs, mode=Mode(linker="numba", optimizer=None),
                                           accept_inplace=True, on_unused_input="ignore"))
    names, _, shapes = stored["shape_info"]
    n_free = stored["n_free"]
    point_fn = None if initial_point_fn is None else _rv_dict_to_flat_array_wrapper(
        initial_point_fn, names=names[:n_free], shapes=shapes[:n_free])
    log.debug("rebuilt the log density and expand functions from %s", path)
    return (stored["n_dim"], stored["n_expanded"], *functions, point_fn, stored["shape_info"],
            stored["reparameterized"])


def _with_lock(func):
    lock = threading.Lock()

    @wraps(func)
    def locked(*args, **kwargs):
        with lock:
            return func(*args, **kwargs)

    return locked


def compile_cached(model, *, initial_points: dict[str, float] | None = None,
                   jitter_rvs: set | None = None) -> Any:
    """Compile ``model`` for ``nutpie.sample`` with C callbacks cached on disk.

    Parameters
    ----------
    model
        A PyMC model.
    initial_points, jitter_rvs
        As ``nutpie.compile_pymc_model``: values of free variables to start at, and the
        variables whose start is jittered (default: all free variables).

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel

    Raises
    ------
    CacheUnavailable
        When this nutpie or PyTensor does not offer what the cached path needs.
    """
    try:
        import numba  # noqa: F401 - used by _callbacks
        from nutpie.compile_pymc import (  # noqa: F401 - _make_functions, _rv_dict_…, make_user_data: used below
            CompiledPyMCModel,
            _make_functions,
            _prepare_dims_and_coords,
            _rv_dict_to_flat_array_wrapper,
            make_user_data,
        )
        from pymc.initial_point import make_initial_point_fn
    except ImportError as exc:  # a nutpie without these internals
        raise CacheUnavailable(str(exc)) from exc

    initial_point_fn = _with_lock(make_initial_point_fn(
        model=model, overrides=initial_points, default_strategy="support_point",
        jitter_rvs=set(model.free_RVs) if jitter_rvs is None else jitter_rvs, return_transformed=True))
    n_dim, n_expanded, logp_fn, expand_fn, point_fn, shape_info, reparameterized = _functions(model, initial_point_fn)

    logp_c, expand_c, keys, shared_data, user_data = _callbacks(n_dim, n_expanded, logp_fn, expand_fn, point_fn(0))
    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c, initial_point_func=point_fn,
        shared_data=shared_data, shared_var_keys=keys, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=logp_fn, expand_func=expand_fn,
        reparameterized_names=reparameterized)


def _callbacks(n_dim: int, n_expanded: int, logp_fn, expand_fn, point: np.ndarray) -> tuple:
    """The two C callbacks over the functions' shared data, checked at ``point`` against PyTensor's
    log density: (logp, expand, shared-variable keys, shared data, nutpie's user-data record)."""
    import numba
    from nutpie.compile_pymc import make_user_data

    shared_vars = list(dict.fromkeys([*logp_fn.get_shared(), *expand_fn.get_shared()]))
    keys = {var: f"shared{i}" for i, var in enumerate(shared_vars)}
    shared_data = {}
    for var in shared_vars:
        value = np.array(var.get_value(), order="C", copy=True)
        value.flags.writeable = False
        shared_data[keys[var]] = value
    user_data = make_user_data(keys, shared_data)
    words = 2 * len(shared_vars) + sum(v.ndim for v in shared_data.values())
    if user_data.dtype.itemsize != 8 * words:
        raise CacheUnavailable("nutpie's user-data layout is not the one this module reads")

    c = numba.types
    logp_sig = c.int64(c.uint64, c.CPointer(c.double), c.CPointer(c.double), c.CPointer(c.double), c.voidptr)
    expand_sig = c.int64(c.uint64, c.uint64, c.CPointer(c.double), c.CPointer(c.double), c.voidptr)
    logp_c = _cached_cfunc(_LOGP_SOURCE, "logp", logp_fn, shared_vars, logp_sig, n_dim=n_dim)
    expand_c = _cached_cfunc(_EXPAND_SOURCE, "expand", expand_fn, shared_vars, expand_sig,
                             n_dim=n_dim, n_expanded=n_expanded)
    _check_callback(logp_c, logp_fn, point, user_data, [shared_data[keys[v]] for v in logp_fn.get_shared()])
    return logp_c, expand_c, keys, shared_data, user_data


#: How long a child process may take to compile a model's numba code (it takes 10-30 s).
_CHILD_TIMEOUT_S = 600
#: Set to 0 to compile in this process: a cold compile is ~7 s faster, and a first process may
#: then draw other draws than later ones.  The test suite does, but for tests/test_compiled.py.
COMPILE_IN_CHILD_ENV = "BAYES_SCALING_COMPILE_IN_CHILD"


def _compile_in_child(path: Path, data: dict[str, np.ndarray], point: np.ndarray) -> bool:
    """Compile the numba code of the graphs kept in ``path`` in a child process, which stores it in
    PyTensor's compile directory; True when it did.

    Why: numba's freshly compiled code and the same code loaded from its cache can differ in the
    last bit of a result (measured: one gradient component of the Chinchilla law's log density;
    numba/numba#10617), and NUTS then takes other draws.  Every later process loads the cache, so
    a first process that compiled for itself would be the only one to draw differently from a
    seed.  With the code compiled elsewhere, this process loads it from the cache like the others.
    """
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    if os.environ.get(COMPILE_IN_CHILD_ENV, "1").strip() == "0":
        return False
    # the child must write where this process's numba cache reads: <base_compiledir>/numba, as
    # PyTensor fixed it when it was imported here
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
             if f.strip() and not f.strip().startswith("base_compiledir=")]
    env = os.environ | {"PYTENSOR_FLAGS": ",".join([*flags, f"base_compiledir={Path(NUMBA_CACHE_PATH).parent}"])}
    request = pickle.dumps({"path": str(path), "data": data, "point": np.asarray(point)})
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", "from bayes_scaling.sampling.compiled import _compile_from_stdin; "
                               "_compile_from_stdin()"], input=request, env=env, capture_output=True,
                              timeout=_CHILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        failed = f"{type(exc).__name__}: {exc}"
    else:
        if done.returncode == 0:
            log.debug("compiled %s in a child process in %.1f s", path.name, time.perf_counter() - started)
            return True
        failed = f"exit {done.returncode}: " + " ".join(done.stderr.decode(errors="replace").strip().splitlines()[-1:])
    # compiling here is as correct; only a later process may then draw other draws from the same seed
    log.warning("compiling in a child process failed (%s); compiling in this one, whose draws may differ in "
                "Monte Carlo noise from a later process's (set %s=0 to always compile here)", failed,
                COMPILE_IN_CHILD_ENV)
    return False


def _compile_from_stdin() -> None:
    """The child of :func:`_compile_in_child`: rebuild the kept graphs with the parent's data, compile
    and check the callbacks exactly as the parent will, so that their code lands in the cache."""
    request = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - sent by our own parent process
    data = request["data"]
    n_dim, n_expanded, logp_fn, expand_fn, *_ = _rebuilt_functions(Path(request["path"]), data.__getitem__, None,
                                                                   n_free=None)
    _callbacks(n_dim, n_expanded, logp_fn, expand_fn, request["point"])
