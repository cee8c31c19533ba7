"""Run NUTS: nutpie where it is installed, PyMC's sampler otherwise (or by choice).

nutpie is run with its low-rank mass-matrix adaptation, which learns the posterior
correlations that remain after centring; on the Chinchilla law it needs about a seventh
of the gradient evaluations of a diagonal mass matrix (see benchmarks/bench_fit.py).

"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from bayes_scaling.sampling.settings import SamplerSettings

__all__ = ['run_sampler', 'clear_compiled_models', 'compiled_nutpie_model']


log = logging.getLogger(__name__)

#: Without a progress bar (no terminal), a long sampling logs its progress this often (seconds).
PROGRESS_EVERY_S = 15.0


class ProgressLog:
    """nutpie's progress callback where no bar is shown: every :data:`PROGRESS_EVERY_S` seconds, one
    log line with the share of draws done, the phase and the divergences, so that a long fit (a
    thousand groups, a log file, a batch worker) says it is working.  Called on nutpie's thread."""

    def __init__(self, every: float | None = None):
        self.every = PROGRESS_EVERY_S if every is None else every
        self.start = time.monotonic()
        self.last = self.start

    def __call__(self, chains) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        done = sum(c.finished_draws for c in chains)
        total = sum(c.total_draws for c in chains) or 1
        tuning = sum(bool(c.tuning) for c in chains)
        log.info("sampling: %.0f%% of the draws after %.0f s (%d of %d chains tuning, %d divergences)",
                 100 * done / total, now - self.start, tuning, len(chains), sum(c.divergences for c in chains))


#: Sample statistics kept in a fit (what the diagnostics and figures read); the samplers
#: return about twenty more (nutpie's include Python objects that netCDF cannot store).
KEPT_STATS = ("diverging", "maxdepth_reached", "reached_max_treedepth", "tree_depth", "depth", "n_steps",
              "step_size", "energy", "energy_error", "lp", "logp", "acceptance_rate", "mean_tree_accept")


def _posterior_and_stats(tree):
    """An ArviZ 1 DataTree with only the ``posterior`` and the kept ``sample_stats``."""
    import xarray as xr

    stats = tree["sample_stats"].to_dataset()
    stats = stats[[name for name in KEPT_STATS if name in stats.data_vars]]
    return xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(), "sample_stats": stats})


#: nutpie models compiled in this process, by structure key (see ``model.structure_key``).
_COMPILED: dict[str, Any] = {}


def clear_compiled_models() -> None:
    """Forget the compiled models of this process (the next fit of each structure compiles).

    Returns
    -------
    None
    """
    _COMPILED.clear()


def compiled_nutpie_model(build: Callable[[], Any], key: str | None, data: dict[str, Any] | None,
                           initial_points: dict[str, float] | None, *, jitter: bool = False):
    """A compiled nutpie model: reused from the process-wide cache with the new data, or compiled.

    A fresh compile loads its C callbacks from PyTensor's compile directory when an earlier
    process built them (:mod:`bayes_scaling.sampling.compiled`), else builds and stores them there.

    Parameters
    ----------
    build
        Builds the PyMC model.
    key
        The compiled model's structure key (None: not cached).
    data
        Values of the model's data variables by name.
    initial_points
        Where chains start (None: NUTS's default).
    jitter
        Jitter each chain's start about ``initial_points`` (PyMC's uniform(−1, 1) on the
        unconstrained scale), so that chains start apart and R-hat can see them disagree.

    Returns
    -------
    nutpie compiled model
    """
    import nutpie

    from bayes_scaling.sampling.compiled import CacheUnavailable, compile_cached

    if key is not None and initial_points is None and key in _COMPILED:
        log.debug("reusing the compiled model for %s", key)
        compiled = _COMPILED[key]
        used = {var.name for var in compiled.shared_var_keys}  # data the graph does not read is not kept
        return compiled.with_data(**{k: v for k, v in (data or {}).items() if k in used}), True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        model = build()
        start = {} if initial_points is None else {"initial_points": initial_points,
                                                   "jitter_rvs": None if jitter else set()}
        try:
            compiled = compile_cached(model, **start)
        except CacheUnavailable as exc:
            log.info("compiling without the disk cache: %s", exc)
            compiled = nutpie.compile_pymc_model(model, **start)
        except Exception as exc:  # noqa: BLE001 - nutpie's own compile is always a correct fallback
            log.warning("the disk-cached compile failed (%s: %s); compiling with nutpie", type(exc).__name__, exc)
            compiled = nutpie.compile_pymc_model(model, **start)
    if key is not None and initial_points is None:
        _COMPILED[key] = compiled
    return compiled, False


def run_sampler(build: Callable[[], Any], settings: SamplerSettings, *, key: str | None = None,
                data: dict[str, Any] | None = None, initial_points: dict[str, float] | None = None,
                jitter: bool = False):
    """Sample the model that ``build()`` returns; returns (DataTree with ``posterior`` and ``sample_stats``, timings).

    With nutpie, a model compiled earlier in this process for the same structure ``key`` is
    reused with ``data`` swapped in (``build`` is then not called). ``initial_points`` (values
    of free variables by name) start every chain there, jittered only with ``jitter`` (such a
    model is not cached); by default chains start at jittered prior support points.

    Parameters
    ----------
    build
        Builds the PyMC model.
    settings
        Options of the (re)fits: sampler settings, priors, window …
    key
        The compiled model's structure key (None: not cached).
    data
        Values of the model's data variables by name.
    initial_points
        Where chains start (None: NUTS's default).
    jitter
        Jitter each chain's start about ``initial_points``.

    Returns
    -------
    tuple
        (DataTree, timings).
    """
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    which = settings.resolved_sampler()
    timing: dict[str, float] = {}
    if which == "nutpie":
        import nutpie

        start = time.perf_counter()
        compiled, reused = compiled_nutpie_model(build, key, data, initial_points, jitter=jitter)
        timing["compile_s"] = time.perf_counter() - start
        timing["compiled_model_reused"] = float(reused)
        start = time.perf_counter()
        tree = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                             seed=settings.seed, cores=cores, progress_bar=settings.progress,
                             progress_callback=None if settings.progress else ProgressLog(),
                             save_warmup=False, target_accept=settings.target_accept, adaptation="low_rank")
        timing["sample_s"] = time.perf_counter() - start
    else:
        import pymc as pm

        start = time.perf_counter()
        with build():
            # PyMC 6 hands NUTS to nutpie when it is installed: ask for its own sampler by name.
            tree = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=cores,
                             random_seed=settings.seed, initvals=initial_points,
                             **({"init": "jitter+adapt_diag" if jitter else "adapt_diag"} if initial_points is not None else {}), target_accept=settings.target_accept,
                             progressbar=settings.progress, compute_convergence_checks=False,
                             nuts_sampler="pymc")
        # PyMC compiles inside pm.sample; report the whole as sampling time.
        timing["compile_s"] = 0.0
        timing["sample_s"] = time.perf_counter() - start
    log.info("sampled with %s: compile %.1f s, sampling %.1f s", which, timing["compile_s"], timing["sample_s"])
    return _posterior_and_stats(tree), timing

