"""Forecast tables for papers and the command line: allocation and loss at compute budgets, the compute
for target losses, medians with their intervals merged into one column.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import DataWarning
from bayes_scaling.forecast.forecaster import FAR_DECADES, MIN_REACHING_DRAWS
from bayes_scaling.intervals import DEFAULT_LEVEL, ci_options, interval_columns, summarize
from bayes_scaling.protocols import Forecasts

__all__ = ['forecast_table', 'target_table', 'compact']

def forecast_table(fc: Forecasts, budgets: Sequence[float], *, ci_prob: float = DEFAULT_LEVEL, ci_kind: str = "eti",
                   allocation: str = "optimal", tokens_per_param: float | None = None,
                   N: float | None = None, **legacy) -> pd.DataFrame:
    """One row per compute budget: allocation and loss, medians with ``level`` intervals.

    Parameters
    ----------
    fc
        A :class:`Forecaster` or a :class:`~bayes_scaling.forecast.averaging.LawAverage`.
    budgets
        Compute budgets in FLOP.
    ci_prob
        Probability of the credible intervals (default 0.9; ArviZ's name).
    ci_kind
        ``"eti"`` (equal-tailed, default) or ``"hdi"`` (highest density).
    allocation, tokens_per_param, N
        How each budget is split between parameters and tokens (:meth:`Forecaster.loss_at_compute`).
    **legacy
        ``level`` and ``kind``, the earlier names of ``ci_prob`` and ``ci_kind`` (a FutureWarning).

    Returns
    -------
    pandas.DataFrame
        Columns ``C``, ``decades_beyond_data`` and, each with ``_lower`` and ``_upper``: ``N``, ``D``,
        ``tokens_per_param`` (laws of N and D), ``loss`` (the expected loss) and ``loss_pred`` (the
        loss of a single new run, with the fitted scatter).  ``attrs`` say the level and allocation.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.forecast.tables import forecast_table
    >>> fit = bs.fit("chinchilla", draws=200, tune=300, chains=2, backtests=False, seed=3)
    >>> table = forecast_table(bs.Forecaster(fit), [1e22, 1e23])
    >>> list(table.columns[:4])
    ['C', 'decades_beyond_data', 'N', 'N_lower']
    >>> bool((table["loss_lower"] < table["loss"]).all())
    True
    """
    level, kind = ci_options(ci_prob, ci_kind, legacy, where="forecast_table")
    budgets = np.asarray(budgets, dtype=float)
    expected, info = fc.loss_at_compute(budgets, allocation=allocation, tokens_per_param=tokens_per_param, N=N)
    predictive, _ = fc.loss_at_compute(budgets, allocation=allocation, tokens_per_param=tokens_per_param, N=N,
                                       predictive=True)
    beyond = fc.decades_beyond_data(budgets)
    far = budgets[beyond > FAR_DECADES]
    if far.size:
        warnings.warn(DataWarning(
            f"{', '.join(f'{c:.3g}' for c in far)} FLOP: up to {beyond.max():.1f} decades beyond the largest run; the "
            f"structural error was validated by back-tests of up to about one decade, so intervals this far out "
            f"rest on the assumption that the law's drift continues as it did"), stacklevel=2)
    cols: dict[str, Any] = {"C": budgets, "decades_beyond_data": beyond}
    if "N" in info:  # (a law average allocates with the laws of N and D only: its own number of draws)
        shape = (np.shape(info["N"])[0] if np.ndim(info["N"]) == 2 else expected.shape[0], len(budgets))
        cols |= interval_columns("N", np.broadcast_to(info["N"], shape), level, kind)
        cols |= interval_columns("D", np.broadcast_to(info["D"], shape), level, kind)
        cols |= interval_columns("tokens_per_param", np.broadcast_to(info["D"] / info["N"], shape), level, kind)
    cols |= interval_columns("loss", expected, level, kind)
    cols |= interval_columns("loss_pred", predictive, level, kind)
    frame = pd.DataFrame(cols)
    frame.attrs.update(level=level, interval=kind, allocation=info["allocation"],
                       structural_error="included" if fc.structural is not None else "none (the law taken as exact)")
    return frame


def target_table(fc: Forecasts, targets: Sequence[float], *, ci_prob: float = DEFAULT_LEVEL, ci_kind: str = "eti",
                 **legacy) -> pd.DataFrame:
    """One row per target loss: probability it is reachable, and the compute, N*, D* needed.

    Parameters
    ----------
    fc
        A :class:`Forecaster` or a :class:`~bayes_scaling.forecast.averaging.LawAverage`.
    targets
        Target losses (nats per token).
    ci_prob, ci_kind
        Probability and kind of the credible intervals, as for :func:`forecast_table`.
    **legacy
        ``level`` and ``kind``, their earlier names (a FutureWarning).

    Returns
    -------
    pandas.DataFrame
        ``target_loss``, ``p_reachable`` (the share of draws that reach it at all), ``p_below_E``
        and the compute ``C``, ``N`` and ``D`` needed, with intervals over the draws that reach it.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.forecast.tables import target_table
    >>> fit = bs.fit("chinchilla", draws=200, tune=300, chains=2, backtests=False, seed=3)
    >>> table = target_table(bs.Forecaster(fit), [2.0])
    >>> 0 < float(table["p_reachable"].iloc[0]) <= 1
    True
    """
    level, kind = ci_options(ci_prob, ci_kind, legacy, where="target_table")
    rows = []
    for target in targets:
        res = fc.compute_for_loss(float(target))
        row: dict[str, Any] = {"target_loss": float(target), "p_reachable": res["p_reachable"]}
        reaching = int(np.isfinite(res["C"]).sum())
        if 0 < reaching < MIN_REACHING_DRAWS:
            warnings.warn(DataWarning(
                f"target loss {target:g}: only {reaching} of {res['C'].size} posterior draws reach it "
                f"(p_reachable {res['p_reachable']:.3g}); its compute interval rests on too few draws to trust"),
                stacklevel=2)
        if "p_below_irreducible" in res:
            row["p_below_E"] = res["p_below_irreducible"]
        for key in ("C", "N", "D"):
            if key in res:
                finite = res[key][np.isfinite(res[key])]
                if finite.size:
                    s = summarize(finite, ci_prob=level, ci_kind=kind).iloc[0]
                    row |= {key: s["median"], f"{key}_lower": s["lower"], f"{key}_upper": s["upper"]}
                else:
                    row |= {key: np.nan, f"{key}_lower": np.nan, f"{key}_upper": np.nan}
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs.update(level=level, interval=kind,
                       note="intervals over the draws for which the target is reachable")
    return frame


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """Merge ``x``, ``x_lower``, ``x_upper`` columns into one "median [lower, upper]" text column.

    Parameters
    ----------
    table
        The table.

    Returns
    -------
    pandas.DataFrame
    """
    from bayes_scaling.io.tables import format_number

    out = {}
    for col in table.columns:
        if col.endswith(("_lower", "_upper")):
            continue
        if f"{col}_lower" in table.columns:
            out[col] = [f"{format_number(m, 3)} [{format_number(lo, 3)}, {format_number(hi, 3)}]"
                        for m, lo, hi in zip(table[col], table[f"{col}_lower"], table[f"{col}_upper"], strict=True)]
        else:
            out[col] = [format_number(v, 3) for v in table[col]]
    return pd.DataFrame(out)
