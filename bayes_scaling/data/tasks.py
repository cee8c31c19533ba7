"""Downstream tasks of a run table: which columns hold task accuracies, each task's chance level
and size, and (optionally) a task loss column.

A run table carries a task as a column of accuracies in [0, 1] (one per run; empty where the run
was not evaluated). What the column alone does not say — the accuracy of guessing (``chance``) and
the number of questions (``items``, whose binomial noise the model knows) — comes from the caller,
or from the task table a registered dataset names (``tasks = "gadre-tasks"`` in the registry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import NUMERIC_COLUMNS, RunTable
from bayes_scaling.errors import InputError, Problem, RunTableError

__all__ = ["declared_tasks", "default_tasks", "task_accuracies", "task_columns", "task_table"]


def task_columns(runs: RunTable) -> list[str]:
    """The columns of ``runs`` that look like task accuracies: numeric, every value in [0, 1], not a
    run column (``N``, ``D``, ``C``, ``loss`` …).

    Parameters
    ----------
    runs
        The runs.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from bayes_scaling.data.reading import read_runs
    >>> runs = read_runs(pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [2e9, 4e9, 8e9], "loss": [3.1, 2.9, 2.7],
    ...                                "hellaswag": [0.30, 0.34, 0.39]}), min_runs=3)
    >>> task_columns(runs)
    ['hellaswag']
    """
    out = []
    for name in runs.data.columns:
        if name in NUMERIC_COLUMNS or name == "group":
            continue
        values = pd.to_numeric(runs.data[name], errors="coerce")
        present = values.dropna()
        if len(present) and present.notna().sum() == runs.data[name].notna().sum() \
                and present.between(0.0, 1.0).all() and present.nunique() > 1:
            out.append(str(name))
    return out


def declared_tasks(runs: RunTable) -> list[str]:
    """The task columns a registered dataset declares (its task table names them); empty for a
    dataset without one or a file, whose columns in [0, 1] need not be tasks (a fraction, a
    colour distance).

    Parameters
    ----------
    runs
        The runs.

    Returns
    -------
    list of str
        The declared tasks that are columns of ``runs``, in the runs' column order.
    """
    reference = _dataset_tasks(runs)
    return [str(c) for c in runs.data.columns if c in reference.index]


def default_tasks(runs: RunTable) -> list[str]:
    """The tasks taken when none are named: a dataset's declared tasks, else every column
    :func:`task_columns` finds (logged, since a column in [0, 1] need not be a task).

    Parameters
    ----------
    runs
        The runs.

    Returns
    -------
    list of str
    """
    import logging

    declared = declared_tasks(runs)
    if declared:
        return declared
    found = task_columns(runs)
    if found:
        logging.getLogger(__name__).info("%s: taking %s as task accuracy columns (name them to choose)", runs.source,
                                         ", ".join(found))
    return found


def task_table(runs: RunTable, tasks: Sequence[str] | None = None, *, chance: Mapping[str, float] | float | None = None,
               items: Mapping[str, float] | float | None = None) -> pd.DataFrame:
    """One row per task: ``task``, ``chance`` (accuracy of guessing), ``items`` (questions; NaN when
    unknown) and ``chance_source`` (``"given"``, the dataset's task table, or ``"assumed 0"``).

    Parameters
    ----------
    runs
        The runs, with one accuracy column per task.
    tasks
        The task columns (default: :func:`default_tasks`).
    chance
        Chance levels: one for every task, or by task. Tasks without one take the dataset's task
        table's, else 0 (a generative task's), which is logged.
    items
        Questions per task, likewise (unknown: the model learns the noise alone).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        When a task is not a column of the runs, or a chance level is outside [0, 1).
    """
    import logging

    log = logging.getLogger(__name__)
    names = list(tasks) if tasks else default_tasks(runs)
    if not names:
        raise InputError(f"{runs.source}: no task accuracy columns (numeric, in [0, 1]); name them with --task COL")
    missing = [t for t in names if t not in runs.data.columns]
    if missing:
        known = task_columns(runs)
        raise InputError(f"{runs.source}: no column {', '.join(map(repr, missing))}; task columns found: "
                         f"{', '.join(known) if known else 'none'}")
    reference = _dataset_tasks(runs)
    rows = []
    for task in names:
        level, source = _lookup(chance, task)
        if level is None and task in reference.index:
            level, source = float(reference.loc[task, "chance"]), str(runs.provenance.get("tasks"))
        if level is None:
            level, source = 0.0, "assumed 0"
            log.info("task %s: no chance level given; 0 assumed (give one for a multiple-choice task)", task)
        if not 0.0 <= level < 1.0:
            raise InputError(f"task {task}: chance level {level} is not in [0, 1)")
        size, _ = _lookup(items, task)
        if size is None and task in reference.index:
            size = float(reference.loc[task, "items"])
        rows.append({"task": task, "chance": float(level), "items": float(size) if size else np.nan,
                     "chance_source": source})
    return pd.DataFrame(rows)


def task_accuracies(runs: RunTable, tasks: Sequence[str]) -> np.ndarray:
    """The accuracies of ``tasks``, (runs, tasks), NaN where a run was not evaluated.

    Parameters
    ----------
    runs
        The runs.
    tasks
        Task columns.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    RunTableError
        Naming each row and column whose value is not a number in [0, 1].
    """
    problems = []
    out = np.full((len(runs), len(tasks)), np.nan)
    for j, task in enumerate(tasks):
        raw = runs.data[task]
        values = pd.to_numeric(raw, errors="coerce")
        for i in np.flatnonzero((values.isna() & raw.notna()).to_numpy() | ~values.between(0, 1).to_numpy()
                                & values.notna().to_numpy()):
            problems.append(Problem(row=int(i), column=task,
                                    message=f"{raw.iloc[i]} is not an accuracy in [0, 1] (a percentage? divide by "
                                            "100)"))
        out[:, j] = values.to_numpy(dtype=float)
    if problems:
        from pathlib import Path

        raise RunTableError(runs.source, problems, is_file=Path(runs.source).is_file())
    return out


def _lookup(value: Mapping[str, float] | float | None, task: str) -> tuple[float | None, str]:
    if value is None:
        return None, ""
    if isinstance(value, Mapping):
        return (float(value[task]), "given") if task in value else (None, "")
    return float(value), "given"


def _dataset_tasks(runs: RunTable) -> pd.DataFrame:
    name = runs.provenance.get("tasks") if runs.provenance else None
    if not name:
        return pd.DataFrame(columns=["chance", "items"])
    from bayes_scaling.data.datasets import load_dataset

    table: Any = load_dataset(str(name))
    return table.set_index("task")
