"""Figures of an isoFLOP analysis: each budget's profile with its optimum, and the optima's power law
in compute beside the parametric fit's."""

from __future__ import annotations

import numpy as np

from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.plots.style import COLORS, _axes, _flop_label


def plot_isoflop_profiles(iso, *, ax=None, level: float = DEFAULT_LEVEL, points: int = 60):
    """Each budget's runs, its fitted profile (median and ``level`` band) and its optimum.

    Parameters
    ----------
    iso
        An :class:`~bayes_scaling.isoflop.model.IsoflopFit`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the bands.
    points
        Points per profile.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib as mpl

    fig, ax = _axes(ax, figsize=(5.6, 3.8))
    cmap = mpl.colormaps["viridis"]
    optima = iso.budget_optima()
    slices = iso.config.get("design") == "slices"
    shown = iso.at_budget_compute() if slices else iso.runs["loss"].to_numpy()
    for k, budget in enumerate(iso.budgets):
        color = cmap(0.1 + 0.8 * k / max(iso.budgets.size - 1, 1))
        part = iso.runs[iso.runs["budget"] == k]
        log_n = np.log10(part["N"].to_numpy())
        grid = np.linspace(log_n.min() - 0.15, log_n.max() + 0.15, points)
        lo, med, hi = central(iso.curve(k, grid), level)
        ax.fill_between(10 ** grid, lo, hi, color=color, alpha=0.2, linewidth=0)
        ax.plot(10 ** grid, med, color=color, linewidth=1.2, label=_flop_label(budget))
        ax.scatter(part["N"], shown[part.index], s=10, color=color, zorder=3)
        n_lo, n_med, n_hi = central(optima["N"][:, k], level)
        ax.errorbar([n_med], [np.median(optima["loss"][:, k])], xerr=[[n_med - n_lo], [n_hi - n_med]], fmt="D",
                    markersize=4, color=color, markeredgecolor="black", markeredgewidth=0.5, zorder=4, capsize=2)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    envelope = iso.config.get("approach") == 1
    ax.set_ylabel("loss (nats per token)" if envelope else "final loss (nats per token)")
    ax.set_title(f"IsoFLOP profiles ({iso.shape}): median, {level:.0%} bands; diamonds: optima with {level:.0%} "
                 f"intervals" + ("\nruns moved by the model to their slice's compute" if slices else "")
                 + ("\npoints: each size's lowest loss along its training curves (Approach 1)" if envelope else ""),
                 fontsize=8)
    ax.legend(frameon=False, fontsize=6, ncol=2, title="compute slice (FLOP)" if slices else "budget (FLOP)",
              title_fontsize=6)
    return fig


def plot_optimum_law(iso, compute, *, comparison=None, ax=None, level: float = DEFAULT_LEVEL):
    """N*(C): the fitted budgets' optima, Approach 2's power law through them and, with
    ``comparison``, the parametric fit's N* (Approach 3) at the same budgets.

    Parameters
    ----------
    iso
        An :class:`~bayes_scaling.isoflop.model.IsoflopFit`.
    compute
        Budgets (FLOP) the law is drawn over.
    comparison
        :func:`~bayes_scaling.isoflop.checks.compare_approaches`' table (None: Approach 2 alone).
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the bands.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.2, 3.6))
    c = np.geomspace(min(np.min(compute), iso.budgets.min()), max(np.max(compute), iso.budgets.max()), 60)
    line = iso.optimum(c, scatter=False)["N"]
    lo, med, hi = central(line, level)
    approach = iso.config.get("approach", 2)
    ax.fill_between(c, lo, hi, color=COLORS["band"], alpha=0.3, linewidth=0,
                    label=f"Approach {approach}: power law through the optima ({level:.0%})")
    ax.plot(c, med, color=COLORS["fit"])
    optima = iso.budget_optima()["N"]
    o_lo, o_med, o_hi = central(optima, level)
    ax.errorbar(iso.budgets, o_med, yerr=[o_med - o_lo, o_hi - o_med], fmt="o", markersize=3, color=COLORS["data"],
                capsize=2, label="each budget's optimum")
    if comparison is not None:
        ax.errorbar(comparison["C"], comparison["N_parametric"],
                    yerr=[comparison["N_parametric"] - comparison["N_parametric_lower"],
                          comparison["N_parametric_upper"] - comparison["N_parametric"]],
                    fmt="s", markersize=4, color="black", mfc="white", capsize=2,
                    label=f"Approach 3: the parametric fit's N* ({level:.0%})")
    ax.axvline(iso.budgets.max(), color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("compute-optimal parameters N*")
    a_lo, a_med, a_hi = central(iso.exponents["a"], level)
    ax.set_title(f"N* ∝ C^a, a = {a_med:.3f} [{a_lo:.3f}, {a_hi:.3f}]; dotted: largest fitted budget", fontsize=8)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return fig
