"""Figures. Every function takes ``ax=`` (or creates its own figure) and returns the figure;
nothing here calls ``plt.show()``.  The project style applies only inside :func:`style`.

Trace and pair plots are drawn with matplotlib directly (chains in distinct colours).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from .errors import InputError
from .intervals import DEFAULT_LEVEL, central, equal_tailed
from .outputs import atomic_file

__all__ = ["style", "save_figure", "plot_trace", "plot_pair", "plot_ppc", "plot_residuals", "plot_posterior_vs_published", "plot_loss_forecast", "plot_allocation",
           "plot_coverage", "plot_coverage_by_distance", "plot_coverage_by_distance_per_dataset",
           "plot_inference_calibration",
           "plot_isoflop", "FIGURE_FORMATS"]

FIGURE_FORMATS = ("png", "pdf", "svg")

_STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}

#: Colours (colour-blind safe, Okabe & Ito).
COLORS = {"data": "#0072B2", "fit": "#D55E00", "band": "#E69F00", "ref": "#009E73", "grey": "#555555"}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the project's paper style for the duration of the block."""
    import matplotlib as mpl

    with mpl.rc_context(_STYLE):
        yield


def _axes(ax, figsize=(4.5, 3.2)):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def plain_log_axis(axis) -> None:
    """Label a log axis spanning less than a decade with plain numbers (2, 3, 4), not 4×10⁰."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(FormatStrFormatter(""))


def save_figure(fig, stem: str | os.PathLike, *, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write ``stem.png``/``.pdf``/``.svg`` atomically (each through a temporary file)."""
    stem = Path(stem)
    out = []
    for fmt in formats:
        target = stem.with_suffix(f".{fmt}")
        with atomic_file(target) as tmp:
            fig.savefig(tmp, format=fmt)
        out.append(target)
    return out


#: One colour per chain (Okabe & Ito, then matplotlib's cycle for more chains).
CHAIN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _chain_draws(fit, name: str) -> list[tuple[str, np.ndarray]]:
    """(label, draws of shape (chains, draws)) for a parameter, one entry per group if it has groups."""
    values = np.asarray(fit.idata["posterior"][name].values, dtype=float)
    if values.ndim == 2:
        return [(name, values)]
    return [(f"{name}[{g}]", values[:, :, i]) for i, g in enumerate(fit.groups)]


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density (Scott's bandwidth) of ``values`` on ``grid``."""
    bandwidth = 1.06 * values.std() * values.size ** -0.2 or 1.0
    z = (grid[:, None] - values[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (values.size * bandwidth * np.sqrt(2 * np.pi))


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
    from .fit import literature_values

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
    from .fit import _LITERATURE_SOURCES

    ax.set_title(f"{fit.law.title}: posterior against {_LITERATURE_SOURCES[fit.law.name][1]}", fontsize=9)
    ax.legend(loc="lower right", frameon=False, fontsize=7)
    ax.margins(x=0.25)
    return fig


def _published_chinchilla():
    from .fit import literature_values
    from .laws import get_law

    law = get_law("chinchilla")
    return law, literature_values(law)


def plot_loss_forecast(fc, budgets, *, ax=None, levels=(0.5, DEFAULT_LEVEL), runs=None, published: bool = True,
                       predictive_level: float = DEFAULT_LEVEL):
    """Fan chart: loss at the compute-optimal allocation against compute.

    Bands of the expected loss at ``levels`` (structural error beyond the data included),
    the ``predictive_level`` band of a single new run's loss (outlined), a line where the
    training data end, the runs and the published Hoffmann et al. (2022) Approach 3 fit.
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
        ax.scatter(runs.C, runs.loss, s=6, color=COLORS["data"], alpha=0.6, label="training runs", zorder=3)
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
    """Compute-optimal parameters N*(C) and tokens D*(C), medians with ``level`` bands."""
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


def data_budgets(runs, *, most: int = 6, gap: float = 0.05) -> list[float]:
    """The compute budgets an isoFLOP design shares: runs whose log10 C lie within ``gap`` of their
    neighbours form one budget (its median C); the ``most`` most populated with ≥ 3 runs are kept.
    Evenly spaced budgets of the data's range when the runs share none."""
    c = np.sort(np.asarray(runs.C, dtype=float))
    log_c = np.log10(c)
    clusters = np.split(c, np.flatnonzero(np.diff(log_c) > gap) + 1)
    shared = [cl for cl in clusters if cl.size >= 3]
    if not shared:
        return list(np.geomspace(c.min(), c.max(), min(most, 5)))
    shared.sort(key=lambda cl: -cl.size)
    return sorted(float(np.median(cl)) for cl in shared[:most])


def _flop_label(c: float) -> str:
    mantissa, exponent = f"{c:.1e}".split("e")
    exponent = int(exponent)
    return f"$10^{{{exponent}}}$" if mantissa == "1.0" else f"${mantissa}\\times10^{{{exponent}}}$"


def plot_isoflop(fc, budgets=None, *, runs=None, ax=None, level: float = DEFAULT_LEVEL, points: int = 60):
    """IsoFLOP profiles: expected loss against N at fixed compute, with ``level`` bands; with ``runs``,
    the runs at each budget overlaid (budgets default to the ones the runs share)."""
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


def plot_energy_vs_compute(model, budgets, *, years=(2020, 2025, 2030), ax=None, level: float = DEFAULT_LEVEL,
                           published=None):
    """Training energy against compute for the expected hardware of some years, with the
    published runs' reported energies overlaid."""
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


def label_points(ax, xs, ys, labels, *, fontsize: float = 6, color: str | None = None) -> None:
    """Label scattered points without overlaps: each label tries offsets around its point (right,
    left, above, below, then further out with a thin leader line) and takes the first whose box
    overlaps no label placed before it nor another point.  Call after the axes' scales and limits
    are set."""
    fig = ax.figure
    ax.set_xlim(ax.get_xlim())  # fixed before measuring: the labels must not move the axes
    ax.set_ylim(ax.get_ylim())
    fig.draw_without_rendering()  # settle the (constrained) layout first
    renderer = fig.canvas.get_renderer()
    points = ax.transData.transform(np.column_stack([xs, ys]))
    placed: list = []
    from matplotlib.text import Text

    steps = [(4, 2), (4, -8), (-4, 2), (-4, -8), (0, 9), (0, -13)] + [
        (round(r * np.cos(a)), round(r * np.sin(a))) for r in (16, 26, 38) for a in np.linspace(0, 2 * np.pi, 12,
                                                                                                  endpoint=False)]
    for i, (x, y, text) in enumerate(zip(xs, ys, labels, strict=True)):
        best = None  # (clash score, annotation, box): overlapping a label costs more than covering a point
        for dx, dy in steps:
            far = abs(dx) > 4 or abs(dy) > 13
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              color=color or COLORS["grey"], ha="left" if dx >= 0 else "right", va="bottom",
                              arrowprops={"arrowstyle": "-", "color": COLORS["grey"], "linewidth": 0.4,
                                          "shrinkA": 0, "shrinkB": 2} if far else None)
            ann.set_in_layout(False)
            ann.update_positions(renderer)
            box = Text.get_window_extent(ann, renderer).expanded(1.05, 1.1)  # the text, not its leader line
            score = 10 * sum(box.overlaps(other) for other in placed) + sum(
                box.contains(px, py) for j, (px, py) in enumerate(points) if j != i)
            if best is None or score < best[0]:
                if best is not None:
                    best[1].remove()
                best = (score, ann, box)
            else:
                ann.remove()
            if score == 0:
                break
        placed.append(best[2])


def plot_efficiency_trend(model, *, ax=None, level: float = DEFAULT_LEVEL, until: float | None = None):
    """Peak FLOP per joule of ML accelerators by release date, with the fitted trend
    (extended ``until`` a year, by default as far as it is extrapolated without a warning)."""
    from .energy import TREND_WARN_YEARS

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


def plot_calibration(table, *, ax=None):
    """Leave-one-out predictive intervals (50%, 90%) against each run's reported energy."""
    fig, ax = _axes(ax, figsize=(5.2, 3.8))
    y = np.arange(len(table))
    ax.hlines(y, table["lower_0.9"], table["upper_0.9"], color=COLORS["band"], linewidth=3, alpha=0.5, label="90% interval")
    ax.hlines(y, table["lower_0.5"], table["upper_0.5"], color=COLORS["fit"], linewidth=5, alpha=0.6, label="50% interval")
    ax.scatter(table["median_mwh"], y, marker="|", color=COLORS["fit"], s=60, label="predictive median")
    ax.scatter(table["reported_mwh"], y, color=COLORS["data"], zorder=3, s=16, label="reported")
    ax.set_yticks(y, table["run"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("training energy (MWh)")
    cov = table.attrs.get("coverage", {})
    ax.set_title(f"Leave-one-out calibration: {cov.get('0.9', float('nan')):.0%} inside 90%, "
                 f"{cov.get('0.5', float('nan')):.0%} inside 50%")
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.4, -0.14), ncol=4)
    return fig


def plot_inference_calibration(table, *, ax=None):
    """Leave-one-model-out: measured J per output token against the predictive median and interval,
    coloured by architecture (a model the fit has not seen, on the measured hardware and batch)."""
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


def plot_backtest(table, *, metric: str = "crps", ax=None):
    """Back-test skill against extrapolation distance, one line per model (lower CRPS is better)."""
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


def plot_loo(table, *, ax=None):
    """ELPD-LOO of each model with its standard error, and the stacking weights."""
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
    """
    from .calibration import LEVELS

    fig, ax = _axes(ax, figsize=(4.6, 4.0))
    levels = np.array(LEVELS)
    names = list(datasets or dict.fromkeys(scored["dataset"]))
    cycle = [COLORS["data"], COLORS["fit"], COLORS["ref"], "#CC79A7", COLORS["band"], "#56B4E9", COLORS["grey"]]
    styles = {"none": ("--", "law only"), "population": (":", "population"), "scaled": ("-", "default (scaled)")}
    for i, name in enumerate(names):
        rows = scored[scored["dataset"] == name]
        for mode, (line, _) in styles.items():
            sub = rows[rows["mode"] == mode]
            if len(sub):
                cover = [sub[f"inside_{int(level * 100)}"].mean() for level in levels]
                ax.plot(levels, cover, line, marker="o", markersize=3, color=cycle[i % len(cycle)],
                        label=name if mode == "scaled" else None)
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
    from .calibration import DISTANCE_LABELS

    return [label.replace("-", "–") for label in DISTANCE_LABELS]


def _binned_coverage(sub, column: str) -> tuple[list[float], list[int]]:
    """Share of runs inside (``column``) and number of runs per bin of distance beyond the data."""
    from .calibration import DISTANCE_BINS, DISTANCE_LABELS

    which = np.digitize(sub["d"], np.array(DISTANCE_BINS)[1:-1], right=True)
    inside = sub[column].to_numpy(float)
    cover = [float(inside[which == k].mean()) if np.any(which == k) else np.nan for k in range(len(DISTANCE_LABELS))]
    return cover, [int(np.sum(which == k)) for k in range(len(DISTANCE_LABELS))]


def plot_coverage_by_distance(scored, *, ax=None, level: float = DEFAULT_LEVEL):
    """Coverage of the ``level`` interval against distance beyond the data (pooled over datasets)."""
    fig, ax = _axes(ax, figsize=(4.6, 3.2))
    labels = _distance_labels()
    column = f"inside_{int(level * 100)}"
    for mode, color, label in (("none", COLORS["grey"], "law only"), ("population", COLORS["ref"], "population"),
                               ("calibrated", COLORS["band"], "calibrated"), ("scaled", COLORS["fit"], "default (scaled)")):
        sub = scored[scored["mode"] == mode]
        if not len(sub):
            continue
        cover, counts = _binned_coverage(sub, column)
        ax.plot(range(len(labels)), cover, marker="o", color=color, label=label)
        if mode == "scaled":
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
                                         ("scaled", COLORS["fit"], "-", "default")):
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
