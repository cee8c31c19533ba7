"""Figures of a fit's posterior: traces, pairs, posterior predictive checks, residuals, the
posterior against the published fit, the prior predictive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.plots.style import COLORS, _axes, plain_log_axis


def plot_trace(fit, var_names: Sequence[str] | None = None):
    """Marginal density and trace of each reported parameter, one colour per chain (arviz-plots).

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    var_names
        Parameters to show (default: the law's parameters and the noise).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    names = list(var_names or [*fit.law.param_names, *fit.reported_noise()])
    collection = azp.plot_trace_dist(fit.idata, var_names=names, backend="matplotlib")
    fig = collection.viz["figure"].item()
    chains = fit.idata["posterior"].sizes["chain"]
    fig.suptitle(f"{fit.law.title}: marginal densities and traces ({chains} chains)", fontsize=10)
    return fig


def plot_pair(fit, var_names: Sequence[str] | None = None):
    """Pairwise joint posterior of the law's parameters, marginals on the diagonal (arviz-plots):
    shows the correlations that remain.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    var_names
        Parameters to show (default: the law's parameters).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    names = list(var_names or fit.law.param_names)
    coords = {"group": [fit.groups[0]]} if fit.grouped and "group" in fit.idata["posterior"].dims else None
    side = 1.5 * len(names) + 1.0  # inches: a page-width figure whose labels stay readable
    collection = azp.plot_pair(fit.idata, var_names=names, coords=coords, backend="matplotlib",
                               figure_kwargs={"figsize": (side, side)})
    fig = collection.viz["figure"].item()
    title = f"{fit.law.title}: joint posterior"
    if coords:
        title += f" (group {fit.groups[0]})"
    fig.suptitle(title, fontsize=10)
    return fig


def plot_ppc(fit, *, ax=None, level: float = DEFAULT_LEVEL):
    """Observed final loss against compute, with the posterior predictive interval at each run.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
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

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    level
        Probability of the credible band or interval (default 0.9).

    Returns
    -------
    matplotlib.figure.Figure
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
    same law from the ``published-fits`` dataset, on a scale relative to the published value.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
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
    """What the priors alone predict at each run (interval of replicated loss) against the observed loss.

    Parameters
    ----------
    check
        The result of :func:`~bayes_scaling.model.spec.prior_predictive`.
    ax
        Matplotlib axes to draw on (None: a new figure).
    level
        Probability of the credible band or interval (default 0.9).

    Returns
    -------
    matplotlib.figure.Figure
    """
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

