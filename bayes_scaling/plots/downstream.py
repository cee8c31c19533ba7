"""Figures of a downstream forecast: a task's accuracy against compute, the runs fitted and held
out, the forecast's median and bands, and the task's chance level."""

from __future__ import annotations

import numpy as np

from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.plots.style import COLORS, _axes


def plot_task_forecast(fit, task: str, *, N, D, observed=None, ax=None, level: float = DEFAULT_LEVEL,
                       seed: int = 0):
    """Task ``task``'s accuracy against training compute: the runs fitted (dots), the forecast at the
    runs (N, D) (median and ``level`` interval) and, with ``observed``, what those runs scored.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.downstream.model.DownstreamFit`.
    task
        A task of the fit.
    N, D
        The runs forecast (parameters, tokens).
    observed
        Their observed accuracies (a sequence, NaN where unknown).
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the intervals.
    seed
        Seed of the forecast's draws.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(4.8, 3.4))
    row = fit.tasks.set_index("task").loc[task]
    ax.scatter(fit.runs["C"], 100 * fit.runs[task], s=10, color=COLORS["data"], label="runs fitted", zorder=3)
    ax.axhline(100 * row["chance"], color="grey", linestyle=":", linewidth=1, label=f"chance ({row['chance']:.0%})")
    draws = fit.accuracy(N=N, D=D, seed=seed).sel(task=task).values
    compute = 6.0 * np.asarray(N, dtype=float) * np.asarray(D, dtype=float)
    if np.isfinite(draws).all():
        order = np.argsort(compute)
        lo, med, hi = (100 * v[order] for v in central(draws, level))
        ax.errorbar(compute[order], med, yerr=[med - lo, hi - med], fmt="s", color=COLORS["fit"], markersize=4,
                    capsize=2, label=f"forecast: median, {level:.0%} interval", zorder=4)
    else:
        ax.set_title(f"{task}: near chance in the runs fitted; not forecast", fontsize=8)
    if observed is not None:
        ax.scatter(compute, 100 * np.asarray(observed, dtype=float), marker="x", color="black", s=20,
                   label="observed", zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel(f"{task} accuracy (%)")
    if not ax.get_title():
        ax.set_title(f"{task}: forecast through {fit.through}", fontsize=8)
    ax.legend(frameon=False, fontsize=6)
    return fig


def plot_task_panels(fit, *, N, D, tasks=None, columns: int = 4, level: float = DEFAULT_LEVEL, seed: int = 0):
    """One panel per fitted task (:func:`plot_task_forecast`), in a grid.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.downstream.model.DownstreamFit`.
    N, D
        The runs forecast in every panel.
    tasks
        The tasks shown (default: every fitted task).
    columns
        Panels per row.
    level
        Probability of the intervals.
    seed
        Seed of the forecast's draws.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    shown = list(tasks or fit.fitted_tasks)
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for i, (ax, task) in enumerate(zip(axes.ravel(), shown, strict=False)):
        plot_task_forecast(fit, task, N=N, D=D, ax=ax, level=level, seed=seed)
        ax.set_title(task, fontsize=8)
        ax.set_ylabel("accuracy (%)" if i % columns == 0 else "")
        ax.set_xlabel("training compute C (FLOP)" if i + columns >= len(shown) else "")
        legend = ax.get_legend()
        if i and legend is not None:
            legend.remove()
    lows, highs = zip(*(ax.get_xlim() for ax in axes.ravel()[:len(shown)]), strict=True)
    for ax in axes.ravel()[:len(shown)]:
        ax.set_xlim(min(lows), max(highs))
    for ax in axes.ravel()[len(shown):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
