"""The house style of figures: fonts, colours, log axes, labels, and saving in several formats.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bayes_scaling.io.outputs import atomic_file

__all__ = ['style', 'save_figure', 'FIGURE_FORMATS']


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
    """Apply the project's paper style for the duration of the block.

    Yields
    ------
    None
        Inside the block, matplotlib draws in the project's style.
    """
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
    """Write ``stem.png``/``.pdf``/``.svg`` atomically (each through a temporary file).

    Parameters
    ----------
    fig
        A matplotlib figure.
    stem
        The path without suffix.
    formats
        File formats.

    Returns
    -------
    list of pathlib.Path
    """
    stem = Path(stem)
    out = []
    for fmt in formats:
        target = stem.with_suffix(f".{fmt}")
        with atomic_file(target) as tmp:
            fig.savefig(tmp, format=fmt)
        out.append(target)
    return out






def _flop_label(c: float) -> str:
    mantissa, exponent = f"{c:.1e}".split("e")
    exponent = int(exponent)
    return f"$10^{{{exponent}}}$" if mantissa == "1.0" else f"${mantissa}\\times10^{{{exponent}}}$"


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

