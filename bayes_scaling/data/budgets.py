"""The compute budgets an isoFLOP design shares: runs whose log10 C lie close together form one budget."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BUDGET_GAP", "budget_labels", "data_budgets"]

#: Runs within this many decades of compute of a neighbour share a budget.
BUDGET_GAP = 0.05


def budget_labels(compute: Any, *, gap: float = BUDGET_GAP, min_runs: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Which budget each run belongs to, and each budget's compute (the median C of its runs).

    Runs sorted by compute form one budget while each lies within ``gap`` decades of the previous
    one; budgets with fewer than ``min_runs`` runs are not budgets (label -1).

    Parameters
    ----------
    compute
        Training compute of each run (FLOP).
    gap
        Runs within this many decades of each other share a budget.
    min_runs
        Fewest runs a budget has.

    Returns
    -------
    tuple of numpy.ndarray
        (labels, one per run in the input order: 0, 1, … by budget from the smallest, -1 for a run
        in no budget; the budgets' compute in FLOP, smallest first).

    Examples
    --------
    >>> labels, budgets = budget_labels([1e20, 1.01e20, 0.99e20, 1e21, 1.02e21, 1e21, 5e22])
    >>> labels.tolist(), [f"{b:.2g}" for b in budgets]
    ([0, 0, 0, 1, 1, 1, -1], ['1e+20', '1e+21'])
    """
    c = np.asarray(compute, dtype=float)
    order = np.argsort(c, kind="stable")
    log_c = np.log10(c[order])
    cluster = np.concatenate([[0], np.cumsum(np.diff(log_c) > gap)]) if c.size else np.array([], int)
    labels_sorted = np.full(c.size, -1)
    budgets = []
    for k in np.unique(cluster):
        members = cluster == k
        if members.sum() >= min_runs:
            labels_sorted[members] = len(budgets)
            budgets.append(float(np.median(c[order][members])))
    labels = np.empty(c.size, dtype=int)
    labels[order] = labels_sorted
    return labels, np.asarray(budgets)


def data_budgets(runs, *, most: int = 6, gap: float = BUDGET_GAP) -> list[float]:
    """The ``most`` most populated budgets of ``runs`` (≥ 3 runs each), smallest first; evenly spaced
    budgets of the data's range when the runs share none.

    Parameters
    ----------
    runs
        Training runs (anything with a ``C`` column or attribute).
    most
        At most this many budgets.
    gap
        Runs within this many decades of each other share a budget.

    Returns
    -------
    list of float
        The budgets in FLOP, smallest first.
    """
    c = np.asarray(runs.C, dtype=float)
    labels, budgets = budget_labels(c, gap=gap)
    if not budgets.size:
        return list(np.geomspace(c.min(), c.max(), min(most, 5)))
    counts = np.bincount(labels[labels >= 0], minlength=budgets.size)
    keep = np.argsort(-counts, kind="stable")[:most]
    return sorted(float(budgets[k]) for k in keep)
