"""Figures of honesty: calibration of intervals, back-tests, LOO, coverage by distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_scaling.intervals import DEFAULT_LEVEL
from bayes_scaling.plots.style import COLORS, _axes


def plot_calibration(table, *, quantity: str = "device_hours", ax=None):
    """Out-of-sample predictive intervals (50%, 90%) against each run's reported device-hours or energy.

    Parameters
    ----------
    table
        :func:`~bayes_scaling.energy.calibration.calibrate`'s table.
    quantity
        ``"device_hours"`` or ``"energy_mwh"``.
    ax
        Matplotlib axes to draw on (None: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = table[table["quantity"] == quantity].reset_index(drop=True)
    fig, ax = _axes(ax, figsize=(5.2, 0.8 + 0.17 * max(len(rows), 8)))
    y = np.arange(len(rows))
    ax.hlines(y, rows["lower_0.9"], rows["upper_0.9"], color=COLORS["band"], linewidth=3, alpha=0.5, label="90% interval")
    ax.hlines(y, rows["lower_0.5"], rows["upper_0.5"], color=COLORS["fit"], linewidth=5, alpha=0.6, label="50% interval")
    ax.scatter(rows["median"], y, marker="|", color=COLORS["fit"], s=60, label="predictive median")
    ax.scatter(rows["reported"], y, color=COLORS["data"], zorder=3, s=16, label="reported")
    ax.set_yticks(y, [f"{r} ({g})" for r, g in zip(rows["run"], rows["group"], strict=True)], fontsize=6)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel({"device_hours": "device-hours", "energy_mwh": "training energy (MWh)"}.get(quantity, quantity))
    held = {"run": "run", "lab": "lab"}.get(table.attrs.get("holdout", "run"), "run")
    ax.set_title(f"Leave-one-{held}-out: {rows['inside_0.9'].mean():.0%} inside 90%, "
                 f"{rows['inside_0.5'].mean():.0%} inside 50%", fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.4, -0.08), ncol=4)
    return fig


def plot_backtest(table, *, metric: str = "crps", ax=None):
    """Back-test skill against extrapolation distance, one line per model (lower CRPS is better).

    Parameters
    ----------
    table
        :func:`~bayes_scaling.compare.backtest.backtest`'s table.
    metric
        The score on the vertical axis (a column of the table).
    ax
        Matplotlib axes to draw on (None: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.2, 3.4))
    for i, (model, rows) in enumerate(table.groupby("model", sort=False)):
        rows = rows.sort_values("extrapolation_decades")
        style_ = "--" if (rows["kind"] == "classical").all() else "-"
        ax.plot(rows["extrapolation_decades"], rows[metric], style_, marker="o", markersize=3,
                color=list(COLORS.values())[i % len(COLORS)], label=model)
    ax.set_xlabel("extrapolation: log10(median held-out C / largest training C)")
    ax.set_ylabel({"crps": "CRPS of log loss (lower is better)", "lpd": "log predictive density per run",
                   "mae_pct": "median absolute error (% of loss)"}.get(metric, metric))
    ax.set_title("Back-tests: skill against extrapolation distance")
    ax.legend(frameon=False, fontsize=7)
    return fig


def plot_loo(table, *, ax=None):
    """ELPD-LOO of each model with its standard error, and the stacking weights.

    Parameters
    ----------
    table
        :func:`~bayes_scaling.compare.loo.loo_table`'s table.
    ax
        Matplotlib axes to draw on (None: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.2, 0.6 + 0.45 * len(table)))
    y = np.arange(len(table))
    ax.errorbar(table["elpd_loo"], y, xerr=table["se"], fmt="o", color=COLORS["fit"], capsize=3)
    for i, (w, k) in enumerate(zip(table["stacking_weight"], table["n_pareto_k_bad"], strict=True)):
        note = f"  weight {w:.2f}" + (f", {k} runs with Pareto k > 0.7" if k else "")
        ax.annotate(note, (table["elpd_loo"].iloc[i], i), xytext=(0, 7), textcoords="offset points", fontsize=7,
                    color=COLORS["grey"], ha="center")
    ax.set_yticks(y, table.index)
    ax.invert_yaxis()
    ax.set_xlabel("ELPD-LOO on log loss (higher is better; bars: ±1 SE)")
    ax.set_title("Leave-one-out comparison with stacking weights")
    return fig


def plot_coverage(scored, *, ax=None, datasets: Sequence[str] | None = None):
    """Coverage of the central predictive intervals against their nominal level, per dataset and mode.

    ``scored``: per-run scores from :mod:`bayes_scaling.calibration` (columns ``dataset``,
    ``mode`` and ``inside_50`` … ``inside_95``).  Law-only forecasts dashed, the default solid.

    Parameters
    ----------
    scored
        Held-out runs as scored by :func:`~bayes_scaling.calibration.evaluate.leave_one_dataset_out`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    datasets
        Datasets to draw (None: all).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from bayes_scaling.calibration.evaluate import LEVELS

    fig, ax = _axes(ax, figsize=(4.6, 4.0))
    levels = np.array(LEVELS)
    names = list(datasets or dict.fromkeys(scored["dataset"]))
    cycle = [COLORS["data"], COLORS["fit"], COLORS["ref"], "#CC79A7", COLORS["band"], "#56B4E9", COLORS["grey"]]
    styles = {"none": ("--", "law only"), "scaled": (":", "before (scaled)"), "shared": ("-", "default")}
    for i, name in enumerate(names):
        rows = scored[scored["dataset"] == name]
        for mode, (line, _) in styles.items():
            sub = rows[rows["mode"] == mode]
            if len(sub):
                cover = [sub[f"inside_{int(level * 100)}"].mean() for level in levels]
                ax.plot(levels, cover, line, marker="o", markersize=3, color=cycle[i % len(cycle)],
                        label=name if mode == "shared" else None)
    ax.plot([0.45, 1], [0.45, 1], color="black", linewidth=0.8, alpha=0.6)
    for mode, (line, label) in styles.items():
        if mode in set(scored["mode"]):
            ax.plot([], [], line, color=COLORS["grey"], label=label)
    ax.set_xlabel("nominal level of the central interval")
    ax.set_ylabel("share of held-out runs inside")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_title("Forecast calibration beyond the data")
    ax.legend(loc="lower right", frameon=False, fontsize=7, ncols=2)
    return fig


def _distance_labels() -> list[str]:
    """The bins of distance beyond the data as the plots label them (with en dashes)."""
    from bayes_scaling.calibration.evaluate import DISTANCE_LABELS

    return [label.replace("-", "–") for label in DISTANCE_LABELS]


def _binned_coverage(sub, column: str) -> tuple[list[float], list[int]]:
    """Share of runs inside (``column``) and number of runs per bin of distance beyond the data."""
    from bayes_scaling.calibration.evaluate import DISTANCE_BINS, DISTANCE_LABELS

    which = np.digitize(sub["d"], np.array(DISTANCE_BINS)[1:-1], right=True)
    inside = sub[column].to_numpy(float)
    cover = [float(inside[which == k].mean()) if np.any(which == k) else np.nan for k in range(len(DISTANCE_LABELS))]
    return cover, [int(np.sum(which == k)) for k in range(len(DISTANCE_LABELS))]


def plot_coverage_by_distance(scored, *, ax=None, level: float = DEFAULT_LEVEL):
    """Coverage of the ``level`` interval against distance beyond the data (pooled over datasets).

    Parameters
    ----------
    scored
        Held-out runs as scored by :func:`~bayes_scaling.calibration.evaluate.leave_one_dataset_out`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(4.6, 3.2))
    labels = _distance_labels()
    column = f"inside_{int(level * 100)}"
    for mode, color, label in (("none", COLORS["grey"], "law only"), ("population", COLORS["ref"], "population"),
                               ("calibrated", COLORS["band"], "calibrated"), ("scaled", COLORS["band"], "before (scaled)"),
                               ("shared", COLORS["fit"], "default")):
        sub = scored[scored["mode"] == mode]
        if not len(sub):
            continue
        cover, counts = _binned_coverage(sub, column)
        ax.plot(range(len(labels)), cover, marker="o", color=color, label=label)
        if mode == "shared":
            for k, n in enumerate(counts):
                ax.annotate(f"n={n}", (k, 0.03), ha="center", fontsize=7, color=COLORS["grey"])
    ax.axhline(level, color="black", linewidth=0.8, alpha=0.6)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("decades of compute beyond the training data")
    ax.set_ylabel(f"coverage of the {level:.0%} interval")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="center left", frameon=False)
    return fig


def plot_coverage_by_distance_per_dataset(scored, *, axes=None, level: float = DEFAULT_LEVEL, ncols: int = 3):
    """Coverage of the ``level`` interval against distance beyond the data, one panel per dataset:
    law only against the default (the runs per bin printed under each point).

    ``axes``: as many matplotlib axes as datasets (a new figure when None).  Returns the figure.

    Parameters
    ----------
    scored
        Held-out runs as scored by :func:`~bayes_scaling.calibration.evaluate.leave_one_dataset_out`.
    axes
        Matplotlib axes, one per panel (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).
    ncols
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(scored["dataset"]))
    if axes is None:
        nrows = -(-len(names) // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.3 * nrows), sharex=True, sharey=True,
                                 layout="constrained", squeeze=False)
        for extra in grid.flat[len(names):]:
            extra.set_visible(False)
        axes = grid.flat
    axes = list(axes)
    if len(axes) < len(names):
        raise ValueError(f"{len(names)} datasets need as many axes, got {len(axes)}")
    column = f"inside_{int(level * 100)}"
    labels = _distance_labels()
    positions = np.arange(len(labels))
    for ax, name in zip(axes, names):
        rows = scored[scored["dataset"] == name]
        counts: list[int] = []  # the same runs are scored in every mode
        for mode, color, line, label in (("none", COLORS["grey"], "--", "law only"),
                                         ("shared", COLORS["fit"], "-", "default")):
            sub = rows[rows["mode"] == mode]
            if len(sub):
                cover, counts = _binned_coverage(sub, column)
                ax.plot(positions, cover, line, marker="o", markersize=3, color=color, label=label)
        for k, n in enumerate(counts):
            if n:
                ax.annotate(f"{n}", (k, 0.04), ha="center", fontsize=6, color=COLORS["grey"])
        ax.axhline(level, color="black", linewidth=0.8, alpha=0.6)
        ax.set_title(name, fontsize=8)
        ax.set_xticks(positions, labels, fontsize=7)
        ax.set_ylim(0, 1.05)
    fig = axes[0].figure
    fig.supxlabel("decades of compute beyond the training data (runs per bin under the points)", fontsize=8)
    fig.supylabel(f"coverage of the {level:.0%} interval", fontsize=8)
    axes[0].legend(loc="center left", frameon=False, fontsize=7)
    return fig

