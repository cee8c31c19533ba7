"""The figure of an experiment design: the fitted runs and the candidates in (N, D), over lines of
equal compute, with the chosen runs numbered in the order chosen and the target's optimum."""

from __future__ import annotations

import numpy as np

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.plots.style import COLORS, _axes, _flop_label, label_points

__all__ = ["plot_design"]


def plot_design(design, *, ax=None):
    """Candidates coloured by the width of the forecast expected if each were the only new run,
    the chosen runs numbered, the fitted runs in grey, isoFLOP lines, the target's median N*, D*.

    Parameters
    ----------
    design
        A :class:`~bayes_scaling.design.choose.Design`.
    ax
        Matplotlib axes to draw on (None: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(5.8, 4.2))
    fitted, cands, chosen = design.fitted, design.candidates, design.chosen
    ax.scatter(fitted["N"], fitted["D"], s=9, color=COLORS["grey"], alpha=0.6, label="fitted runs", zorder=2)
    eligible = cands["affordable"].astype(bool) & cands.get("in_band", True)
    affordable = cands[eligible]
    other = cands[~eligible]
    if len(other):
        ax.scatter(other["N"], other["D"], s=12, facecolors="none", edgecolors="#bbbbbb", linewidths=0.6,
                   label="candidates beyond the budget or the band", zorder=2)
    if len(affordable):
        points = ax.scatter(affordable["N"], affordable["D"], s=18, c=100 * affordable["width_alone"],
                            cmap="viridis_r", edgecolors="none", zorder=3, label="candidates")
        bar = fig.colorbar(points, ax=ax, pad=0.02)
        bar.set_label(f"expected {design.level:.0%} width alone (% of the forecast)", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    if len(chosen):
        ax.scatter(chosen["N"], chosen["D"], s=70, facecolors="none", edgecolors=COLORS["fit"], linewidths=1.4,
                   label="chosen (numbered in order)", zorder=4)
    ax.scatter([design.before["N"]], [design.before["D"]], marker="*", s=110, color=COLORS["ref"],
               edgecolors="black", linewidths=0.4, zorder=5,
               label=f"target's median N*, D* ({_flop_label(design.target_compute)} FLOP)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    n_all = np.concatenate([fitted["N"], cands["N"], [design.before["N"]]])
    d_all = np.concatenate([fitted["D"], cands["D"], [design.before["D"]]])
    ax.set_xlim(n_all.min() / 2, n_all.max() * 2)
    ax.set_ylim(d_all.min() / 2, d_all.max() * 2)
    n_line = np.geomspace(*ax.get_xlim(), 50)
    budgets = sorted({float(c) for c in np.round(np.log10(np.r_[cands["C"], design.target_compute]), 1)})
    for log_c in budgets:
        ax.plot(n_line, 10 ** log_c / (FLOP_PER_PARAM_TOKEN * n_line), color="#cccccc", linewidth=0.6,
                linestyle="--", zorder=1)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    what = "loss" if design.quantity == "loss" else "N*"
    ax.set_title(f"Runs chosen for the {what} forecast at {_flop_label(design.target_compute)} FLOP: "
                 f"{design.before['width']:.1%} → {design.width_after:.1%} expected\n(budget "
                 f"{_flop_label(design.budget)} FLOP, {design.spent / design.budget:.0%} spent; dashed: equal compute "
                 f"C = 6ND at the candidates' budgets and the target)", fontsize=8)
    ax.legend(frameon=False, fontsize=6, loc="lower left")
    if len(chosen):
        label_points(ax, chosen["N"].to_numpy(), chosen["D"].to_numpy(), [str(int(r)) for r in chosen["rank"]],
                     fontsize=7, color=COLORS["fit"])
    return fig
