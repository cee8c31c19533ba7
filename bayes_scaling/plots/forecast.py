"""Figures of forecasts: loss and compute-optimal allocation against compute, isoFLOP profiles.
"""

from __future__ import annotations

import numpy as np

from bayes_scaling.data.budgets import data_budgets
from bayes_scaling.intervals import DEFAULT_LEVEL, central, equal_tailed
from bayes_scaling.plots.posterior import _published_chinchilla
from bayes_scaling.plots.style import COLORS, _axes, _flop_label, plain_log_axis


def plot_loss_forecast(fc, budgets, *, ax=None, levels=(0.5, DEFAULT_LEVEL), runs=None, published: bool = True,
                       predictive_level: float = DEFAULT_LEVEL):
    """Fan chart: loss at the compute-optimal allocation against compute.

    Bands of the expected loss at ``levels`` (structural error beyond the data included),
    the ``predictive_level`` band of a single new run's loss (outlined), a line where the
    training data end, the runs and the published Hoffmann et al. (2022) Approach 3 fit.

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` or a :class:`~bayes_scaling.forecast.averaging.LawAverage`.
    budgets
        Compute budgets in FLOP.
    ax
        Matplotlib axes to draw on (None: a new figure).
    levels
        Probabilities of the bands of expected loss.
    runs
        Training runs to draw as points (None: none).
    published
        Draw the published fit of the same law, where there is one.
    predictive_level
        Probability of the band of a new run's loss.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.4, 3.8))
    budgets = np.geomspace(min(budgets), max(budgets), 80) if len(budgets) < 40 else np.asarray(budgets, float)
    loss, _ = fc.loss_at_compute(budgets)
    predictive, _ = fc.loss_at_compute(budgets, predictive=True)
    for level, alpha in zip(sorted(levels, reverse=True), (0.3, 0.55, 0.7), strict=False):
        lo, hi = equal_tailed(loss, level)
        ax.fill_between(budgets, lo, hi, color=COLORS["band"], alpha=alpha, linewidth=0,
                        label=f"{level:.0%} interval, expected loss")
    lo, hi = equal_tailed(predictive, predictive_level)
    ax.plot(budgets, lo, color=COLORS["fit"], linewidth=0.8, linestyle=":")
    ax.plot(budgets, hi, color=COLORS["fit"], linewidth=0.8, linestyle=":",
            label=f"{predictive_level:.0%} interval, a new run")
    ax.plot(budgets, np.median(loss, axis=0), color=COLORS["fit"], label="posterior median")
    data_end = float(fc.fit.runs.C.max())
    ax.axvline(data_end, color=COLORS["grey"], linewidth=0.8, linestyle="--")
    ax.annotate("data end", (data_end, 0.98), xycoords=("data", "axes fraction"), ha="right", va="top",
                fontsize=7, color=COLORS["grey"], rotation=90)
    if runs is not None:
        # a fit near the frontier (window) left the smaller runs out: drawn hollow, named as such
        fitted = np.asarray(runs.C) >= float(fc.fit.runs.C.min())
        ax.scatter(runs.C[fitted], runs.loss[fitted], s=6, color=COLORS["data"], alpha=0.6, label="training runs",
                   zorder=3)
        if not fitted.all():
            ax.scatter(runs.C[~fitted], runs.loss[~fitted], s=6, facecolors="none", edgecolors=COLORS["grey"],
                       linewidths=0.6, alpha=0.7, label="runs left out of the fit (below the window)", zorder=3)
    if published:
        law, values = _published_chinchilla()
        n, d = law.compute_optimal(budgets, values)
        ax.plot(budgets, law.loss({"N": n, "D": d}, values), color=COLORS["ref"], linestyle="--",
                label="Hoffmann et al. 2022 (Approach 3)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_axis(ax.yaxis)
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("loss at compute-optimal N, D (nats/token)")
    structural = "with structural error beyond the data" if fc.structural is not None else "law taken as exact"
    ax.set_title(f"Loss forecast: {fc.law.name}\n({structural})", fontsize=8)
    ax.legend(frameon=False, loc="lower left", fontsize=7)
    return fig


def plot_allocation(fc, budgets, *, ax=None, level: float = DEFAULT_LEVEL, published: bool = True):
    """Compute-optimal parameters N*(C) and tokens D*(C), medians with ``level`` bands.

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` or a :class:`~bayes_scaling.forecast.averaging.LawAverage`.
    budgets
        Compute budgets in FLOP.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).
    published
        Draw the published fit of the same law, where there is one.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.2, 3.6))
    budgets = np.asarray(budgets, dtype=float)
    alloc = fc.allocation(budgets)
    for key, color, label in (("N", COLORS["fit"], "parameters N*"), ("D", COLORS["data"], "tokens D*")):
        lo, med, hi = central(alloc[key], level)
        ax.fill_between(budgets, lo, hi, color=color, alpha=0.25, linewidth=0)
        ax.plot(budgets, med, color=color, label=f"{label} (median, {level:.0%} band)")
    if published:
        law, values = _published_chinchilla()
        n, d = law.compute_optimal(budgets, values)
        ax.plot(budgets, n, color=COLORS["grey"], linestyle="--", linewidth=1, label="Hoffmann et al. 2022 (Approach 3)")
        ax.plot(budgets, d, color=COLORS["grey"], linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("compute-optimal N* (parameters), D* (tokens)")
    ax.set_title(f"Compute-optimal allocation ({alloc.method})")
    ax.legend(frameon=False, loc="upper left")
    return fig


def plot_isoflop(fc, budgets=None, *, runs=None, ax=None, level: float = DEFAULT_LEVEL, points: int = 60):
    """IsoFLOP profiles: expected loss against N at fixed compute, with ``level`` bands; with ``runs``,
    the runs at each budget overlaid (budgets default to the ones the runs share).

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` or a :class:`~bayes_scaling.forecast.averaging.LawAverage`.
    budgets
        Compute budgets in FLOP.
    runs
        Training runs to draw as points (None: none).
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).
    points
        Points along each profile.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib as mpl

    if budgets is None:
        if runs is None:
            raise ValueError("give budgets, or runs to take the budgets from")
        budgets = data_budgets(runs)
    fig, ax = _axes(ax, figsize=(5.4, 3.8))
    cmap = mpl.colormaps["viridis"]
    budgets = sorted(float(c) for c in budgets)
    for i, c in enumerate(budgets):
        n_opt = np.median(fc.allocation([c])["N"])
        n = np.geomspace(n_opt / 30, n_opt * 30, points)
        loss = fc.loss(N=n, D=c / (6 * n))
        lo, med, hi = central(loss, level)
        color = cmap(0.9 * i / max(len(budgets) - 1, 1))
        ax.fill_between(n, lo, hi, color=color, alpha=0.2, linewidth=0)
        ax.plot(n, med, color=color, label=f"C = {_flop_label(c)} FLOP")
        ax.plot([n_opt], [np.interp(n_opt, n, med)], marker="o", color=color, markersize=4)
        if runs is not None:
            at = np.abs(np.log10(np.asarray(runs.C, dtype=float) / c)) < 0.05
            ax.scatter(np.asarray(runs.N)[at], np.asarray(runs.loss)[at], s=10, color=color, edgecolor="white",
                       linewidth=0.4, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_axis(ax.yaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss (nats/token)")
    runs_note = "; points: the training runs at that budget" if runs is not None else ""
    ax.set_title(f"IsoFLOP profiles: expected loss, {level:.0%} bands; circles: median optimum{runs_note}",
                 fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    return fig

