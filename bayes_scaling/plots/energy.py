"""Figures of the energy model: energy against compute, the hardware efficiency trend, the
serving-energy model's leave-one-model-out check.
"""

from __future__ import annotations

import numpy as np

from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.plots.style import COLORS, _axes, label_points


def plot_energy_vs_compute(model, budgets, *, years=(2020, 2025, 2030), ax=None, level: float = DEFAULT_LEVEL,
                           published=None):
    """Training energy against compute for the expected hardware of some years, with the
    published runs' reported energies overlaid.

    Parameters
    ----------
    model
        An :class:`~bayes_scaling.energy.training.EnergyModel`.
    budgets
        Compute budgets in FLOP.
    years
        Years whose expected new chip is drawn.
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
    import matplotlib as mpl

    fig, ax = _axes(ax, figsize=(5.2, 3.6))
    budgets = np.asarray(budgets, dtype=float)
    cmap = mpl.colormaps["plasma"]
    for i, year in enumerate(years):
        mwh = model.training_energy(budgets, year=year)
        lo, med, hi = central(mwh, level)
        color = cmap(0.15 + 0.7 * i / max(len(years) - 1, 1))
        ax.fill_between(budgets, lo, hi, color=color, alpha=0.2, linewidth=0)
        ax.plot(budgets, med, color=color, label=f"new hardware of {year} (median, {level:.0%} band)")
    if published is not None:
        rows = published.dropna(subset=["flop", "reported_energy_mwh"])
        ax.scatter(rows["flop"], rows["reported_energy_mwh"], s=14, color=COLORS["data"], zorder=3,
                   label="published runs (reported)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("training energy (MWh, incl. PUE)")
    ax.set_title("Training energy with credible intervals")
    ax.legend(frameon=False, loc="upper left")
    if published is not None:
        short = [r.split(" (")[0] for r in rows["run"]]
        label_points(ax, rows["flop"].to_numpy(), rows["reported_energy_mwh"].to_numpy(),
                     [r if short.count(s) > 1 else s for r, s in zip(rows["run"], short, strict=True)])
    return fig


def plot_efficiency_trend(model, *, ax=None, level: float = DEFAULT_LEVEL, until: float | None = None):
    """Peak FLOP per joule of ML accelerators by release date, with the fitted trend
    (extended ``until`` a year, by default as far as it is extrapolated without a warning).

    Parameters
    ----------
    model
        An :class:`~bayes_scaling.energy.training.EnergyModel`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).
    until
        Extend the trend to this year (None: the last chip's).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from bayes_scaling.energy.factors import TREND_WARN_YEARS

    until = model.trend.years[1] + TREND_WARN_YEARS if until is None else until
    fig, ax = _axes(ax, figsize=(5.2, 3.6))
    chips = model.trend.chips.dropna(subset=["bf16_flop_per_joule"])
    years = np.linspace(chips["release_year"].min() - 0.5, until, 80)
    rng = np.random.default_rng(0)
    line = np.array([model.trend.trend(y) for y in years]).T
    new = np.array([model.trend.new_chip(y, rng) for y in years]).T
    q = [(1 - level) / 2, 0.5, 1 - (1 - level) / 2]
    lo, med, hi = np.quantile(line, q, axis=0)
    plo, _, phi = np.quantile(new, q, axis=0)
    ax.fill_between(years, plo, phi, color=COLORS["band"], alpha=0.2, linewidth=0, label=f"new chip ({level:.0%} predictive)")
    ax.fill_between(years, lo, hi, color=COLORS["fit"], alpha=0.35, linewidth=0, label=f"trend ({level:.0%} interval)")
    ax.plot(years, med, color=COLORS["fit"], label="trend (median)")
    ax.scatter(chips["release_year"], chips["bf16_flop_per_joule"], s=14, color=COLORS["data"], zorder=3,
               label="accelerators (BF16/FP16 peak ÷ TDP)")
    h = np.median(model.trend.yearly_factor)
    ax.set_yscale("log")
    ax.set_xlabel("release date (year)")
    ax.set_ylabel("peak FLOP per joule at TDP")
    ax.set_title(f"Hardware efficiency: ×{h:.2f} per year (median)")
    ax.legend(frameon=False, loc="upper left", fontsize=7)
    label_points(ax, chips["release_year"].to_numpy(), chips["bf16_flop_per_joule"].to_numpy(),
                 [a.replace("NVIDIA ", "").replace("Google ", "") for a in chips["accelerator"]])
    return fig


def plot_inference_calibration(table, *, ax=None):
    """Leave-one-model-out: measured J per output token against the predictive median and interval,
    coloured by architecture (a model the fit has not seen, on the measured hardware and batch).

    Parameters
    ----------
    table
        :func:`~bayes_scaling.energy.serving.leave_one_model_out`'s table.
    ax
        Matplotlib axes to draw on (None: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.2, 4.2))
    colors = list(COLORS.values())
    for i, (arch, rows) in enumerate(table.groupby("architecture", sort=True)):
        color = colors[i % len(colors)]
        ax.vlines(rows["energy_per_token_j"], rows["lower_j"], rows["upper_j"], color=color, alpha=0.25, linewidth=1)
        inside = rows["inside"].mean()
        ax.scatter(rows["energy_per_token_j"], rows["predicted_j"], s=8, color=color,
                   label=f"{arch} ({inside:.0%} inside, {len(rows)} configs)")
    lo = float(min(table["energy_per_token_j"].min(), table["lower_j"].min()))
    hi = float(max(table["energy_per_token_j"].max(), table["upper_j"].max()))
    ax.plot([lo, hi], [lo, hi], color="0.5", linewidth=0.8, linestyle="--", label="prediction = measurement")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured GPU energy per output token (J)")
    ax.set_ylabel(f"predicted, model left out (J; {table.attrs.get('level', 0.9):.0%} interval)")
    cov = table.attrs.get("coverage", {}).get("all", float("nan"))
    ax.set_title(f"Inference energy, leave-one-model-out: {cov:.0%} inside the "
                 f"{table.attrs.get('level', 0.9):.0%} interval")
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return fig

