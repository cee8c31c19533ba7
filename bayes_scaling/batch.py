"""Batches of fits — laws × datasets × compute cuts × seeds — through one executor.

A :class:`FitTask` names what to fit (a run table, as plain data, and settings); never a
compiled model, so a task can travel to another process or machine.  :func:`run_batch`
runs tasks

* in this process, one after another (``executor="local"``, the default: on a small machine
  the fastest, as every fit of one structure reuses one compiled model);
* on local worker processes with joblib (``executor="joblib"``, ``jobs=``);
* on a Dask cluster (``executor=`` a ``distributed.Client`` or a scheduler address such as
  ``"tcp://10.0.0.5:8786"``; needs the ``dask`` extra).

Each worker process compiles into a PyTensor compile directory of its own (PyTensor's
compilation is not safe across processes sharing one: pymc-devs/pymc#7819, #6818).  Results
come back as one table, in task order, identical whichever executor ran them (same seeds →
bit-identical draws), with progress reported through ``progress(done, total, task)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.reading import read_runs
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError

__all__ = ['FitTask', 'tasks_for', 'run_task', 'run_batch', 'EXECUTORS']

log = logging.getLogger(__name__)

EXECUTORS = ("local", "joblib")
_COMPILEDIR_ENV = "PYTENSOR_FLAGS"


@dataclass(frozen=True)
class FitTask:
    """One fit: the runs (columns N, D, C, loss …, as a dict of lists), what to fit, how.

    Parameters
    ----------
    label
        A name for the task's row.
    runs
        Columns N, D, C, loss … as lists.
    source
        The runs' name.
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    cut
        Fit only the runs with C ≤ cut (None: all).
    seed
        Random seed; the same seed gives the same result.
    settings
        Other :func:`~bayes_scaling.fit` options.
    """

    label: str
    runs: dict[str, list]
    source: str
    law: str = "chinchilla"
    likelihood: str = "student-t"
    cut: float | None = None
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def run_table(self) -> RunTable:
        """The task's runs as a RunTable.

        Returns
        -------
        RunTable
            The task's runs (below its cut).
        """
        table = read_runs(pd.DataFrame(self.runs), name=self.source)
        if self.cut is not None:
            table = table.subset(table.C <= self.cut, label=f"C <= {self.cut:.3g}")
        return table


def tasks_for(datasets: dict[str, RunTable], *, laws: Sequence[str] = ("chinchilla",),
              likelihoods: Sequence[str] = ("student-t",), cuts: Sequence[float | None] = (None,),
              seeds: Sequence[int] = (0,), settings: dict[str, Any] | None = None) -> list[FitTask]:
    """The product laws × likelihoods × datasets × cuts × seeds as tasks.

    Parameters
    ----------
    datasets
        Run tables by name.
    laws, likelihoods
        Names to combine.
    cuts
        Compute cuts in FLOP (fit the runs with C ≤ cut); None fits every run.
    seeds
        Sampler seeds.
    settings
        Other :func:`~bayes_scaling.fit` options shared by every task (not the seed).

    Returns
    -------
    list of FitTask

    Raises
    ------
    InputError
        For a seed in ``settings``, or a task that cannot be fitted (checked before any fit).
    """
    if "seed" in (settings or {}):
        raise InputError("give seeds with seeds=, not in settings")
    tasks = []
    for name, runs in datasets.items():
        data = {c: runs.data[c].tolist() for c in runs.data.columns if c in ("N", "D", "C", "loss", "group",
                                                                              "unique_tokens")}
        for law in laws:
            for lik in likelihoods:
                for cut in cuts:
                    for seed in seeds:
                        label = f"{name} / {law} / {lik} / {'all runs' if cut is None else f'C <= {cut:.3g}'} / seed {seed}"
                        tasks.append(FitTask(label, data, name, law, lik, cut, int(seed), dict(settings or {})))
    _preflight(tasks)
    return tasks


def _preflight(tasks: list[FitTask]) -> None:
    """Refuse the batch before any fit when one of its tasks cannot be fitted, naming the task."""
    from bayes_scaling.posterior.law_only import check_fittable

    checked = set()
    for task in tasks:
        key = (task.source, task.law, task.cut, task.settings.get("pooling", "shared"))
        if key in checked:  # seeds and likelihoods do not change what can be fitted
            continue
        checked.add(key)
        try:
            check_fittable(task.run_table(), task.law, pooling=key[3])
        except InputError as exc:
            raise InputError(f"batch task {task.label}: {exc} (no task was run)") from None


def _own_compiledir() -> None:
    """Before PyTensor is imported in a worker process: a compile directory of its own."""
    import sys

    if "pytensor" in sys.modules:
        return
    folder = os.path.join(tempfile.gettempdir(), f"bayes_scaling-pytensor-{os.getpid()}")
    flags = os.environ.get(_COMPILEDIR_ENV, "")
    if "base_compiledir" not in flags:
        os.environ[_COMPILEDIR_ENV] = ",".join(filter(None, [flags, f"base_compiledir={folder}"]))


def run_task(task: FitTask) -> dict[str, Any]:
    """Fit one task; returns a row: posterior summaries of the law's parameters, diagnostics, a draws hash.

    Parameters
    ----------
    task
        A :class:`FitTask`.

    Returns
    -------
    dict
        The task's row of :func:`run_batch`'s table.
    """
    _own_compiledir()
    import warnings

    from bayes_scaling.fitting import fit
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    runs = task.run_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # reported in the row
        result = fit(runs, law=task.law, likelihood=task.likelihood, seed=task.seed, **task.settings)
    row: dict[str, Any] = {"task": task.label, "dataset": task.source, "law": task.law,
                           "likelihood": task.likelihood, "cut": task.cut, "seed": task.seed, "runs": len(runs)}
    digest = hashlib.sha256()
    for name in result.law.param_names:
        draws = result.draws(name)
        digest.update(np.ascontiguousarray(draws).tobytes())
        if draws.ndim == 1:
            row[f"{name}_median"] = float(np.median(draws))
            row[f"{name}_sd"] = float(np.std(draws, ddof=1))
    row.update(rhat_max=result.diagnostics.rhat_max, ess_bulk_min=result.diagnostics.ess_bulk_min,
               divergences=result.diagnostics.divergences, diagnostics_ok=result.diagnostics.ok,
               draws_sha256=digest.hexdigest(), wall_s=result.timing.get("total_s", float("nan")),
               worker_pid=os.getpid())
    return row


def _progress_wrapper(progress, total):
    done = [0]

    def report(task: FitTask) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, task)
        log.info("[%d/%d] %s", done[0], total, task.label)

    return report


def run_batch(tasks: Iterable[FitTask], *, executor: Any = "local", jobs: int = 2,
              progress: Callable[[int, int, FitTask], None] | None = None) -> pd.DataFrame:
    """Run every task; one row per task, in task order (see the module docstring for executors).

    Parameters
    ----------
    tasks
        From :func:`tasks_for`.
    executor
        ``"local"`` (this process), ``"joblib"`` (``jobs`` worker processes), a Dask scheduler address
        or a ``distributed.Client``.
    jobs
        Worker processes for joblib.
    progress
        Called after each task with (done, total, task).

    Returns
    -------
    pandas.DataFrame
        One row per task: its dataset, law, likelihood, cut and seed, the posterior summaries of the
        law's parameters, the diagnostics and a hash of the draws.

    Raises
    ------
    InputError
        For no tasks or an unknown executor.
    """
    tasks = list(tasks)
    if not tasks:
        raise InputError("the batch has no tasks")
    report = _progress_wrapper(progress, len(tasks))
    if executor == "local":
        rows = []
        for task in tasks:
            rows.append(run_task(task))
            report(task)
    elif executor == "joblib":
        from joblib import Parallel, delayed

        rows = []
        parallel = Parallel(n_jobs=jobs, return_as="generator")
        for task, row in zip(tasks, parallel(delayed(run_task)(t) for t in tasks), strict=True):
            rows.append(row)
            report(task)
    else:
        rows = _run_on_dask(tasks, executor, report)
    return pd.DataFrame(rows)


#: How long to wait for a Dask scheduler given by its address before refusing the batch.
SCHEDULER_TIMEOUT = "10s"


def _run_on_dask(tasks: list[FitTask], executor: Any, report) -> list[dict[str, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("a Dask executor needs dask[distributed]: pip install 'bayes-scaling[dask]'") from None
    own = isinstance(executor, str)
    try:
        client = Client(executor, timeout=SCHEDULER_TIMEOUT) if own else executor
    except (OSError, ValueError, TypeError) as exc:  # unreachable, or an address Dask cannot parse
        raise InputError(f"cannot reach the Dask scheduler at {executor}: {exc}") from None
    if not isinstance(client, Client):
        raise InputError(f"executor must be 'local', 'joblib', a Dask Client or a scheduler address, not {executor!r}")
    try:
        futures = client.map(run_task, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(tasks)
        for future in as_completed(futures):
            i = index[future.key]
            rows[i] = future.result()
            report(tasks[i])
        return [r for r in rows if r is not None]
    finally:
        if own:
            client.close()

