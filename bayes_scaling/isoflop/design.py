"""How runs form an isoFLOP design: exact budgets, or compute slices where the grid is irregular.

A ladder trains several sizes at each of a few exact budgets: runs whose compute lies within
``gap`` decades share a budget (:func:`~bayes_scaling.data.budgets.budget_labels`).  Studies that
train a grid of sizes × token counts instead (the (Mis)Fitting study) have at most two or three
sizes at any one compute; their runs are grouped into *compute slices* of :data:`SLICE_WIDTH`
decades, and the isoFLOP model centres each run's profile at the run's own compute (its optimum
moves along N* ∝ C^a within the slice), so a slice is a budget whose runs need not share one
compute.

Repeats at one (N, D) — a learning-rate sweep — enter as their lowest loss, as labs read a tuned
ladder: the others are runs the sweep rejected, not noisy copies of the tuned one.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bayes_scaling.data.budgets import budget_labels

__all__ = ["MIN_SIZES", "MIN_SPAN", "SLICE_WIDTH", "best_of_repeats", "is_profile", "isoflop_budgets"]

log = logging.getLogger(__name__)

#: Width of a compute slice in decades (an irregular grid's runs within it form one budget).
SLICE_WIDTH = 0.25
#: Fewest distinct model sizes a budget needs (a curve with its optimum has three parameters).
MIN_SIZES = 3
#: Least spread of a budget's sizes, in decades of N (a factor of 1.26, below the smallest step of
#: the published ladders here): sizes closer than that are one size in several shapes or repeats
#: (Gemstones' shapes of nearly one size, trained on one token count, share a compute), whose
#: losses differ by shape and noise more than by size — no isoFLOP profile.
MIN_SPAN = 0.1
#: Exact budgets are used when they hold at least this share of the runs; else compute slices.
MIN_SHARE_EXACT = 0.5


def best_of_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """The run of lowest loss at each (N, D), in the input's order.

    Parameters
    ----------
    frame
        Runs with ``N``, ``D`` and ``loss`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per distinct (N, D), index reset; ``attrs["repeats_dropped"]`` counts the others.

    Examples
    --------
    >>> runs = pd.DataFrame({"N": [1e8, 1e8, 2e8], "D": [1e9, 1e9, 1e9], "loss": [3.2, 3.1, 3.0]})
    >>> best_of_repeats(runs)["loss"].tolist()
    [3.1, 3.0]
    """
    best = frame.groupby(["N", "D"], sort=False)["loss"].idxmin()
    kept = frame.loc[np.sort(best.to_numpy())].reset_index(drop=True)
    kept.attrs["repeats_dropped"] = int(len(frame) - len(kept))
    return kept


def _profiles(log_n: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Which budgets hold a profile: :data:`MIN_SIZES` sizes spread over :data:`MIN_SPAN` decades."""
    return np.array([is_profile(log_n[labels == k]) for k in range(count)], dtype=bool)


def is_profile(log_n: np.ndarray) -> bool:
    """Whether runs of these log10 sizes can show a profile's optimum: :data:`MIN_SIZES` distinct sizes
    spread over :data:`MIN_SPAN` decades.

    Parameters
    ----------
    log_n
        log10 N of a budget's runs.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_profile(np.log10([1e8, 2e8, 4e8])), is_profile(np.log10([1.00e8, 1.02e8, 1.04e8]))
    (True, False)
    """
    return bool(np.unique(log_n).size >= MIN_SIZES and np.ptp(log_n) >= MIN_SPAN)


def _keep(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    remap = np.full(keep.size + 1, -1)  # the last entry maps a run in no budget (-1) to -1
    remap[:-1][keep] = np.arange(int(keep.sum()))
    return remap[labels]


def isoflop_budgets(compute, n_params, *, gap: float, min_runs: int = 3,
                    slice_width: float = SLICE_WIDTH) -> tuple[np.ndarray, np.ndarray, str]:
    """Which budget each run belongs to, each budget's compute, and the kind of design.

    Exact budgets (runs within ``gap`` decades, at least ``min_runs`` runs of :data:`MIN_SIZES`
    sizes spread over :data:`MIN_SPAN` decades of N) when they hold at least half the runs; else
    slices of ``slice_width`` decades of compute (multiples of it in log10 C), each with at least
    ``min_runs`` runs of as many sizes as widely spread, whose compute is the geometric mean of its runs'.

    Parameters
    ----------
    compute, n_params
        Each run's compute (FLOP) and parameters.
    gap
        Runs within this many decades share an exact budget.
    min_runs
        Fewest runs of a budget.
    slice_width
        Width of a compute slice (decades).

    Returns
    -------
    tuple
        (labels: 0, 1, … by budget from the smallest, -1 for a run in none; the budgets' compute in
        FLOP; ``"exact"`` or ``"slices"``).

    Examples
    --------
    >>> c = [1e20, 1e20, 1e20, 1e21, 1e21, 1e21, 1e22, 1e22, 1e22]
    >>> labels, budgets, kind = isoflop_budgets(c, [1e9, 2e9, 4e9] * 3, gap=0.02)
    >>> labels.tolist(), kind
    ([0, 0, 0, 1, 1, 1, 2, 2, 2], 'exact')
    >>> c = [1.0e20, 1.3e20, 1.6e20, 1.1e21, 1.4e21, 1.2e21]
    >>> labels, budgets, kind = isoflop_budgets(c, [1e9, 2e9, 4e9] * 2, gap=0.02)
    >>> labels.tolist(), kind, [f"{b:.2g}" for b in budgets]
    ([0, 0, 0, 1, 1, 1], 'slices', ['1.3e+20', '1.2e+21'])
    """
    c = np.asarray(compute, dtype=float)
    log_n = np.log10(np.asarray(n_params, dtype=float))
    labels, budgets = budget_labels(c, gap=gap, min_runs=min_runs)
    keep = _profiles(log_n, labels, budgets.size)
    labels, budgets = _keep(labels, keep), budgets[keep]
    if c.size == 0 or (labels >= 0).mean() >= MIN_SHARE_EXACT:
        return labels, budgets, "exact"
    log_c = np.log10(c)
    bins = np.floor(log_c / slice_width + 1e-9).astype(int)
    labels = np.full(c.size, -1)
    budgets = []
    for b in np.unique(bins):
        members = bins == b
        if members.sum() >= min_runs and is_profile(log_n[members]):
            labels[members] = len(budgets)
            budgets.append(float(10 ** log_c[members].mean()))
    log.debug("isoFLOP design: the runs share few exact budgets; %d compute slices of %.2g decades hold %d of "
             "%d runs", len(budgets), slice_width, int((labels >= 0).sum()), c.size)
    return labels, np.asarray(budgets), "slices"
