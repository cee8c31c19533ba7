"""Figures of a fit's posterior: traces, pairs, posterior predictive checks, residuals, the
posterior against the published fit, the prior predictive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.plots.style import CHAIN_COLORS, COLORS, _axes, _density, plain_log_axis


def _chain_draws(fit, name: str) -> list[tuple[str, np.ndarray]]:
    """(label, draws of shape (chains, draws)) for a parameter, one entry per group if it has groups."""
    values = np.asarray(fit.idata["posterior"][name].values, dtype=float)
    if values.ndim == 2:
        return [(name, values)]
    return [(f"{name}[{g}]", values[:, :, i]) for i, g in enumerate(fit.groups)]


def plot_trace(fit, var_names: Sequence[str] | None = None):
    """Trace and marginal density of each reported parameter, one colour per chain."""
    import matplotlib.pyplot as plt

    names = list(var_names or [*fit.law.param_names, *fit.reported_noise()])
    panels = [entry for name in names for entry in _chain_draws(fit, name)]
    fig, axes = plt.subplots(len(panels), 2, figsize=(7.5, 1.6 * len(panels) + 0.6), layout="constrained",
                             width_ratios=(1, 2), squeeze=False)
    for (label, values), (ax_density, ax_trace) in zip(panels, axes):
        grid = np.linspace(values.min(), values.max(), 200)
        for chain, draws in enumerate(values):
            color = CHAIN_COLORS[chain % len(CHAIN_COLORS)]
            ax_density.plot(grid, _density(draws, grid), color=color, linewidth=1.0)
            ax_trace.plot(np.arange(draws.size), draws, color=color, linewidth=0.4, alpha=0.8,
                          label=f"chain {chain}")
        ax_density.set_ylabel(label)
        ax_density.set_yticks([])
        ax_trace.set_xlim(0, values.shape[1] - 1)
    axes[-1, 0].set_xlabel("value")
    axes[-1, 1].set_xlabel("draw (after tuning)")
    axes[0, 1].legend(loc="upper right", ncols=min(values.shape[0], 4), frameon=False, fontsize=7)
    fig.suptitle(f"{fit.law.title}: marginal densities and traces ({values.shape[0]} chains)", fontsize=10)
    return fig


def plot_pair(fit, var_names: Sequence[str] | None = None, *, max_points: int = 2000, seed: int = 0):
    """Pairwise posterior scatter of the law's parameters (shows the correlations that remain)."""
    import matplotlib.pyplot as plt

    names = list(var_names or fit.law.param_names)
    draws = {name: fit.draws(name) for name in names}
    draws = {k: (v if v.ndim == 1 else v[:, 0]) for k, v in draws.items()}
    size = len(next(iter(draws.values())))
    keep = np.random.default_rng(seed).permutation(size)[:max_points]
    k = len(names)
    fig, axes = plt.subplots(k, k, figsize=(1.5 * k + 1, 1.5 * k + 1), layout="constrained", squeeze=False)
    for i, row in enumerate(names):
        for j, col in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(draws[row], bins=40, color=COLORS["data"], alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(draws[col][keep], draws[row][keep], s=1.5, alpha=0.25, color=COLORS["data"],
                           rasterized=True)
            if i == k - 1:
                ax.set_xlabel(col)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(row)
            elif j > 0:
                ax.set_yticklabels([])
    title = f"{fit.law.title}: joint posterior"
    if fit.grouped:
        title += f" (group {fit.groups[0]})"
    fig.suptitle(title, fontsize=10)
    return fig


def plot_ppc(fit, *, ax=None, level: float = DEFAULT_LEVEL):
    """Observed final loss against compute, with the posterior predictive interval at each run."""
    fig, ax = _axes(ax, figsize=(5.0, 3.4))
    runs = fit.runs
    rep = np.exp(fit.idata["posterior_predictive"]["log_loss"].values.reshape(-1, len(runs)))
    lo, med, hi = central(rep, level)
    order = np.argsort(runs.C)
    inside = np.mean((runs.loss >= lo) & (runs.loss <= hi))
    ax.vlines(runs.C[order], lo[order], hi[order], color=COLORS["band"], alpha=0.6, linewidth=2,
              label=f"{level:.0%} posterior predictive")
    ax.scatter(runs.C, med, s=10, marker="_", color=COLORS["fit"], label="predictive median", zorder=3)
    ax.scatter(runs.C, runs.loss, s=8, color=COLORS["data"], label="observed", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("final loss (nats/token)")
    plain_log_axis(ax.yaxis)
    ax.set_title(f"{fit.law.title}: {inside:.0%} of {len(runs)} runs inside the {level:.0%} interval")
    ax.legend(loc="upper right", frameon=False)
    return fig


def plot_residuals(fit, *, level: float = DEFAULT_LEVEL):
    """Residuals of log loss (observed − posterior median of the law) against N, D and C.

    A law that is right leaves residuals without a trend in any input; a curve says where the
    form misses (e.g. the smallest models, or the most over-trained runs).  The band is the
    ``level`` interval of the fitted run-to-run scatter.
    """
    import matplotlib.pyplot as plt

    runs = fit.runs
    residual = np.log(runs.loss) - np.median(fit.log_mu(runs, group=fit.groups[0] if fit.grouped else None), axis=0)
    scatter = np.quantile(fit.predictive_log_draws(runs) - np.median(fit.log_mu(
        runs, group=fit.groups[0] if fit.grouped else None), axis=0), [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
    inputs = [(k, label) for k, label in (("N", "parameters N"), ("D", "training tokens D"),
                                          ("C", "training compute C (FLOP)")) if k in runs.data.columns]
    fig, axes = plt.subplots(1, len(inputs), figsize=(2.6 * len(inputs) + 0.6, 2.8), layout="constrained",
                             sharey=True, squeeze=False)
    lo, hi = np.median(scatter[0]), np.median(scatter[1])
    for ax, (key, label) in zip(axes[0], inputs, strict=True):
        ax.axhspan(100 * lo, 100 * hi, color=COLORS["band"], alpha=0.35, linewidth=0,
                   label=f"{level:.0%} run scatter (fitted)")
        ax.axhline(0, color=COLORS["grey"], linewidth=0.8)
        ax.scatter(runs.column(key), 100 * residual, s=6, color=COLORS["data"], alpha=0.7)
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0, 0].set_ylabel("residual of log loss (%)")
    axes[0, 0].legend(loc="upper right", frameon=False, fontsize=7)
    fig.suptitle(f"{fit.law.title}: residuals (observed − posterior median)", fontsize=9)
    return fig


def plot_posterior_vs_published(fit, *, ax=None, level: float = DEFAULT_LEVEL):
    """Each parameter's posterior (median and ``level`` interval) against the published fit of the
    same law from the ``published-fits`` dataset, on a scale relative to the published value."""
    from bayes_scaling.model.spec import literature_values

    published = literature_values(fit.law)
    names = [k for k in fit.law.param_names if k in published]
    if not names:
        raise InputError(f"no published fit of the {fit.law.name} law in the published-fits dataset")
    fig, ax = _axes(ax, figsize=(4.6, 0.45 * len(names) + 1.2))
    for i, name in enumerate(names):
        draws = fit.draws(name)
        draws = draws if draws.ndim == 1 else draws[:, 0]
        lo, med, hi = np.array(central(draws, level)) / published[name]
        ax.plot([lo, hi], [i, i], color=COLORS["fit"], linewidth=2.5, solid_capstyle="butt",
                label=f"posterior, {level:.0%} interval" if i == 0 else None)
        ax.plot(med, i, "o", color=COLORS["fit"], markersize=4)
        ax.annotate(f"{med * published[name]:.3g} vs {published[name]:.3g}", (max(hi, 1.0), i), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7, color=COLORS["grey"])
    ax.axvline(1.0, color=COLORS["ref"], linestyle="--", label="published fit")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("value relative to the published fit")
    from bayes_scaling.model.spec import _LITERATURE_SOURCES

    ax.set_title(f"{fit.law.title}: posterior against {_LITERATURE_SOURCES[fit.law.name][1]}", fontsize=9)
    ax.legend(loc="lower right", frameon=False, fontsize=7)
    ax.margins(x=0.25)
    return fig


def _published_chinchilla():
    from bayes_scaling.laws.registry import get_law
    from bayes_scaling.model.spec import literature_values

    law = get_law("chinchilla")
    return law, literature_values(law)


def plot_prior_predictive(check, *, ax=None, level: float = DEFAULT_LEVEL):
    """What the priors alone predict at each run (interval of replicated loss) against the observed loss."""
    fig, ax = _axes(ax, figsize=(5.0, 3.4))
    runs = check["runs"]
    # Quantiles on the log scale (exp is monotone): draws far out in the tails overflow exp.
    lo, med, hi = np.exp(np.nanquantile(check["log_loss"], [(1 - level) / 2, 0.5, 1 - (1 - level) / 2], axis=0))
    order = np.argsort(runs.C)
    ax.fill_between(runs.C[order], lo[order], hi[order], color=COLORS["band"], alpha=0.35, linewidth=0,
                    label=f"{level:.0%} prior predictive")
    ax.plot(runs.C[order], med[order], color=COLORS["fit"], linewidth=1, label="prior predictive median")
    ax.scatter(runs.C, runs.loss, s=6, color=COLORS["data"], label="observed", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("final loss (nats/token)")
    ax.set_title(f"{check['law'].title}: prior predictive check")
    ax.legend(frameon=False, loc="upper right")
    return fig

