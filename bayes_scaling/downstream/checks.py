"""Back-tests of downstream forecasts: fit below a compute cut, forecast the larger runs' task
accuracies, and score them beside the two-step point method (a least-squares law, then a
least-squares sigmoid per task)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import RunTable
from bayes_scaling.downstream.model import DownstreamFit, fit_downstream
from bayes_scaling.downstream.sigmoid import point_sigmoid, sigmoid_accuracy
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import central

__all__ = ["backtest_summary", "downstream_backtest"]


def downstream_backtest(runs: RunTable, tasks: Sequence[str] | None = None, *, cut: float,
                        chance: Mapping[str, float] | float | None = None,
                        items: Mapping[str, float] | float | None = None, through: str = "loss",
                        task_loss: Mapping[str, str] | None = None, law_name: str = "chinchilla",
                        levels: Sequence[float] = (0.5, 0.9), draws: int = 1000, tune: int = 1000, chains: int = 4,
                        seed: int = 0, fit: DownstreamFit | None = None) -> pd.DataFrame:
    """Fit the runs below ``cut`` and score the forecast of every task at each run above it.

    Parameters
    ----------
    runs
        The runs with task accuracy columns.
    tasks, chance, items, through, task_loss, law_name
        As for :func:`~bayes_scaling.downstream.model.fit_downstream`.
    cut
        Compute (FLOP): runs below it are fitted, runs at or above it forecast.
    levels
        Credible levels scored.
    draws, tune, chains, seed
        Sampler settings.
    fit
        The fit below the cut, when it exists already.

    Returns
    -------
    pandas.DataFrame
        One row per (held-out run, fitted task): ``N``, ``D``, ``C``, ``decades_beyond_data``,
        ``task``, ``observed``, ``median``, ``lower_<level>``/``upper_<level>``, ``inside_<level>``,
        ``error`` (observed − median) and the point method's ``point`` and ``point_error``.
    """
    from bayes_scaling.compare.classical import huber_fit

    held = runs.subset(runs.C >= cut, label=f"C >= {cut:.3g}")
    if not len(held):
        raise InputError(f"{runs.source}: no run at or above the cut {cut:.3g} FLOP to forecast")
    if fit is None:
        fit = fit_downstream(runs, tasks, chance=chance, items=items, through=through, task_loss=task_loss, cut=cut,
                             law_name=law_name, draws=draws, tune=tune, chains=chains, seed=seed)
    if fit.tree is None:
        return pd.DataFrame()
    names = fit.fitted_tasks
    draws_ = fit.accuracy(N=held.N, D=held.D, seed=seed).sel(task=names).values
    below = runs.subset(runs.C < cut)
    if fit.through == "compute":
        x_point = -np.log10(held.C)
        x_fit = {task: -np.log10(below.C) for task in names}
        x_held = {task: x_point for task in names}
    elif fit.through == "loss":
        classical = huber_fit(below, law=law_name, bootstrap=0, seed=seed)
        x_held = {task: np.exp(classical.log_mu(held, bootstrap=False)[0]) for task in names}
        x_fit = {task: below.loss for task in names}
    else:
        x_held, x_fit = {}, {}
        from bayes_scaling.data.reading import read_runs

        for task in names:
            column = (task_loss or fit.config.get("task_loss", {}))[task]
            frame = below.data[["N", "D", column]].rename(columns={column: "loss"}).dropna()
            classical = huber_fit(read_runs(frame, name=column), law=law_name, bootstrap=0, seed=seed)
            x_held[task] = np.exp(classical.log_mu(held, bootstrap=False)[0])
            x_fit[task] = below.data[column].to_numpy(dtype=float)
    chance_of = dict(zip(fit.tasks["task"], fit.tasks["chance"], strict=True))
    rows = []
    for j, task in enumerate(names):
        observed_fit = below.data[task].to_numpy(dtype=float)
        ok = np.isfinite(observed_fit) & np.isfinite(x_fit[task])
        point = point_sigmoid(x_fit[task][ok], observed_fit[ok], chance_of[task])
        point_pred = sigmoid_accuracy(x_held[task], chance_of[task], point["ceiling"], point["k"], point["m"])
        for i in range(len(held)):
            seen = float(held.data[task].iloc[i])
            if not np.isfinite(seen):
                continue
            row: dict[str, Any] = {"N": held.N[i], "D": held.D[i], "C": held.C[i],
                                   "decades_beyond_data": float(np.log10(held.C[i] / below.C.max())), "task": task,
                                   "observed": seen, "median": float(np.median(draws_[:, j, i]))}
            for level in levels:
                lo, _, hi = central(draws_[:, j, i], level)
                row |= {f"lower_{level:g}": float(lo), f"upper_{level:g}": float(hi),
                        f"inside_{level:g}": bool(lo <= seen <= hi)}
            row |= {"error": seen - row["median"], "point": float(point_pred[i]),
                    "point_error": seen - float(point_pred[i])}
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["levels"] = list(levels)
    return out


def backtest_summary(table: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Coverage, width (accuracy points, 0–100), mean and mean absolute error, beside the point
    method's, pooled or by ``by`` (e.g. ``"task"``).

    Parameters
    ----------
    table
        Rows of :func:`downstream_backtest` (several back-tests may be concatenated).
    by
        A column to group by (None: pooled).

    Returns
    -------
    pandas.DataFrame
        ``forecasts``, ``coverage_<level>``, ``width_<level>`` (median, points), ``mean_error``,
        ``mean_abs_error``, ``point_mean_error``, ``point_mean_abs_error`` (points).
    """
    levels = table.attrs.get("levels") or sorted({float(c.split("_")[1]) for c in table.columns
                                                  if c.startswith("inside_")})

    def summary(group: pd.DataFrame) -> pd.Series:
        out: dict[str, float] = {"forecasts": float(len(group))}
        for level in levels:
            out[f"coverage_{level:g}"] = float(group[f"inside_{level:g}"].mean())
            out[f"width_{level:g}"] = float(100 * (group[f"upper_{level:g}"] - group[f"lower_{level:g}"]).median())
        out |= {"mean_error": 100 * float(group["error"].mean()),
                "mean_abs_error": 100 * float(group["error"].abs().mean()),
                "point_mean_error": 100 * float(group["point_error"].mean()),
                "point_mean_abs_error": 100 * float(group["point_error"].abs().mean())}
        return pd.Series(out)

    if by is None:
        return summary(table).to_frame().T
    return pd.DataFrame({key: summary(group) for key, group in table.groupby(by)}).T.rename_axis(by).reset_index()
