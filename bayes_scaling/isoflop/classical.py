"""The classical isoFLOP fit and one budget's own optimum.

:func:`naive_isoflop` is Approach 2 as papers run it: a least-squares parabola in log10 N through
each budget's runs, its vertex, and a least-squares line through the vertices in log–log (the
baseline whose bias on skewed grids the Bayesian model is checked against).

:func:`budget_optimum` is the optimum of one budget from its runs alone, with its uncertainty: the
quadratic regression loss = b0 + b1·x + b2·x² is linear in b, so its posterior under a flat prior
and an unknown noise variance is a multivariate Student-t, sampled exactly; each draw's vertex
(−b1 / 2b2) is a draw of the budget's optimum. A back-test scores forecasts against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError

__all__ = ["naive_isoflop", "budget_optimum"]


def naive_isoflop(runs: pd.DataFrame, budgets: np.ndarray) -> dict[str, object]:
    """Per-budget least-squares parabolas in log10 N, their vertices, and the power law through them.

    Parameters
    ----------
    runs
        ``N``, ``loss`` and ``budget`` (index into ``budgets``) per run.
    budgets
        Compute of each budget (FLOP).

    Returns
    -------
    dict
        ``vertices`` (DataFrame: ``C``, ``N``, ``loss``, ``curvature``; NaN where a budget's parabola
        opens downward or the budget has fewer than three sizes), ``a`` (N* ∝ C^a) and ``intercept`` (log10 N* at log10 C = 0).

    Raises
    ------
    InputError
        With fewer than two budgets whose parabola has a minimum.
    """
    rows = []
    for k, c in enumerate(budgets):
        part = runs[runs["budget"] == k]
        x, y = np.log10(part["N"].to_numpy(float)), part["loss"].to_numpy(float)
        if np.unique(x).size < 3:  # no parabola through fewer than three sizes
            rows.append({"C": float(c), "N": np.nan, "loss": np.nan, "curvature": np.nan})
            continue
        b2, b1, b0 = np.polyfit(x, y, 2)
        ok = b2 > 0
        vertex = -b1 / (2 * b2) if ok else np.nan
        rows.append({"C": float(c), "N": 10 ** vertex if ok else np.nan,
                     "loss": b0 - b1 ** 2 / (4 * b2) if ok else np.nan, "curvature": float(b2)})
    vertices = pd.DataFrame(rows)
    good = vertices.dropna()
    if len(good) < 2:
        raise InputError("the classical isoFLOP fit needs two budgets whose parabola has a minimum")
    a, intercept = np.polyfit(np.log10(good["C"]), np.log10(good["N"]), 1)
    return {"vertices": vertices, "a": float(a), "intercept": float(intercept)}


def budget_optimum(log_n: np.ndarray, loss: np.ndarray, compute: float, *, log_compute: np.ndarray | None = None,
                   draws: int = 4000, seed: int = 0) -> dict[str, np.ndarray | float]:
    """Draws of one budget's optimum from its runs alone (exact posterior of a quadratic regression).

    Runs of a compute slice, whose compute differs, get a term linear in log10 C − log10 ``compute``
    (the loss falls with compute along the slice), so the vertex and its loss are the budget's own
    at ``compute``.

    Parameters
    ----------
    log_n
        log10 N of the budget's runs.
    loss
        Their losses.
    compute
        The budget's compute (FLOP), for D* = C / 6N*.
    log_compute
        log10 C of each run, when they differ (a compute slice); None: every run at ``compute``.
    draws
        Draws.
    seed
        Seed of the draws.

    Returns
    -------
    dict
        ``N``, ``D``, ``loss`` draws of the optimum (draws whose parabola opens downward, or whose
        vertex lies more than one decade outside the runs, are dropped: the budget does not bracket
        its optimum there) and ``bracketed``, the share kept.

    Raises
    ------
    InputError
        With fewer runs than coefficients and a noise variance (four; five in a slice) or three sizes.
    """
    x = np.asarray(log_n, dtype=float)
    y = np.asarray(loss, dtype=float)
    columns = [np.ones_like(x), x - x.mean(), (x - x.mean()) ** 2]
    if log_compute is not None and np.ptp(np.asarray(log_compute, dtype=float)) > 0:
        columns.append(np.asarray(log_compute, dtype=float) - np.log10(compute))
    if x.size < len(columns) + 1:
        raise InputError(f"a budget's own optimum needs at least {len(columns) + 1} runs, got {x.size}")
    if np.unique(x).size < 3:
        raise InputError(f"a budget's own optimum needs runs of at least 3 sizes, got {np.unique(x).size}")
    centre = x.mean()
    design = np.column_stack(columns)
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    dof = x.size - design.shape[1]
    s2 = float(resid @ resid) / max(dof, 1)
    cov = np.linalg.inv(design.T @ design) * s2
    rng = np.random.default_rng([seed, 17])
    # Multivariate Student-t with dof degrees of freedom: normal / sqrt(chi² / dof).
    z = rng.multivariate_normal(np.zeros(design.shape[1]), cov, size=draws) / np.sqrt(
        rng.chisquare(max(dof, 1), draws) / max(dof, 1))[:, None]
    b = beta[None, :] + z
    ok = b[:, 2] > 0
    vertex = np.where(ok, -b[:, 1] / (2 * np.where(ok, b[:, 2], 1.0)), np.nan)
    lo, hi = x.min() - centre - 1.0, x.max() - centre + 1.0
    ok &= (vertex > lo) & (vertex < hi)
    v, bb = vertex[ok], b[ok]
    n = 10 ** (v + centre)
    return {"N": n, "D": compute / (FLOP_PER_PARAM_TOKEN * n), "loss": bb[:, 0] - bb[:, 1] ** 2 / (4 * bb[:, 2]),
            "bracketed": float(ok.mean())}
