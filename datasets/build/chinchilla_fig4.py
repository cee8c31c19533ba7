"""Digitize the training runs of Hoffmann et al. (2022), Figure 4 (left), from its SVG.

Usage::

    python datasets/build/chinchilla_fig4.py chinchilla_figure_4.svg -o datasets/chinchilla.csv

Each run is a circular marker in the left panel: x = training FLOP (log axis),
y = parameters (log axis), fill colour = final loss through the colour bar (log scale).

How each quantity is recovered, from the SVG alone:

* **x axis** — the panel has tick labels (10^18 … 10^23) but no tick marks.  A label is
  centred on its tick, so the tick is the label's left edge plus half its width, the
  width being matplotlib's own layout of the label (mathtext, DejaVu Sans, the font
  the SVG names).  The calibration is checked against the nine isoFLOP lines, whose
  FLOP values the legend of the right panel gives (matched by line colour).
* **y axis** — labels 100M, 1B, 10B, 100B (and "40B", which marks the Approach-3
  optimum for the Gopher budget and is not a round value: it is reported, not used).
  A y tick label sits with its baseline a fixed distance below its tick; that distance
  is measured on the colour bar, which has both tick marks and labels of the same font.
* **loss** — the colour bar is an embedded PNG placed on whole pixels; each row's centre
  is mapped to loss through the bar's tick marks and labels (the better of a log and a
  linear fit: log here).  A marker's fill colour is found among the rows; a colour that
  spans several rows (one colormap bin) takes their centre.

Writes the runs (N, C, loss and the marker's SVG position and colour, for audit) and
prints the calibration diagnostics.  D is not written: ``read_runs`` derives D = C/(6N)
and records that it did.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # svgplot.py, beside this script
from svgplot import (
    AxisScale,
    Colorbar,
    SvgFigure,
    is_power_of_ten,
    mathtext_width,
    parse_label_value,
)

# How far outside the axes box tick labels are looked for, in SVG units (points).
LABEL_MARGIN = 60.0


def _axes_boxes(fig: SvgFigure) -> list[tuple[float, float, float, float]]:
    """White, filled rectangles: the figure background and one per axes."""
    boxes = {p.bbox for p in fig.paths if p.fill == "#ffffff" and p.closed and len(p.points) == 4}
    by_area = sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return by_area[1:]  # the largest is the figure background


def _left_axes(fig: SvgFigure) -> tuple[float, float, float, float]:
    boxes = _axes_boxes(fig)
    if not boxes:
        raise InputError("no axes found in the SVG (expected white axes rectangles)")
    return min(boxes, key=lambda b: b[0])


def _x_ticks(fig: SvgFigure, box) -> tuple[list[float], list[float]]:
    """x positions and values of the '10^k' labels under the axes."""
    x0, _, x1, y1 = box
    groups: dict[tuple, list] = defaultdict(list)
    for t in fig.texts_in(x0 - LABEL_MARGIN, y1, x1 + LABEL_MARGIN, y1 + LABEL_MARGIN):
        groups[t.transform].append(t)
    positions, values = [], []
    for parts in groups.values():
        parts.sort(key=lambda t: -t.size)
        base, *sup = parts
        if base.string.strip() != "10" or len(sup) != 1 or not sup[0].string.strip().lstrip("-").isdigit():
            continue
        exponent = int(sup[0].string)
        width = mathtext_width(rf"$\mathdefault{{10^{{{exponent}}}}}$", size=base.size)
        positions.append(base.x + width / 2)
        values.append(10.0**exponent)
    return positions, values


def _colorbar(fig: SvgFigure, box) -> tuple[Colorbar, float, dict]:
    """The colour bar right of the axes, and the baseline-to-tick offset of its labels."""
    x1 = box[2]
    ticks = [p for p in fig.paths if len(p.points) == 2 and p.points[0, 1] == p.points[1, 1]
             and 0 < abs(p.points[0, 0] - p.points[1, 0]) <= 10 and p.points[:, 0].min() > x1]
    tick_y = sorted({float(p.points[0, 1]) for p in ticks})
    frames = [p for p in fig.paths if p.closed and p.fill is None and p.stroke
              and p.bbox[0] > x1 and (p.bbox[2] - p.bbox[0]) < 40 and (p.bbox[3] - p.bbox[1]) > 100]
    if not tick_y or not frames or not fig.images:
        raise InputError("no colour bar (image, frame and tick marks) found right of the left axes")
    frame = min(frames, key=lambda p: p.bbox[0])
    fx0, fy0, fx1, fy1 = frame.bbox
    labels = [(t, parse_label_value(t.string)) for t in fig.texts_in(fx0 - LABEL_MARGIN, fy0 - 20,
                                                                      fx1 + LABEL_MARGIN, fy1 + 20)]
    labels = [(t, v) for t, v in labels if v is not None and t.x > x1]
    pairs = []
    for y in tick_y:
        below = [(t.y - y, t, v) for t, v in labels if 0 < t.y - y < 15]
        if below:
            offset, text, value = min(below, key=lambda item: item[0])
            pairs.append((y, value, offset, text.size))
    if len(pairs) < 2:
        raise InputError("could not pair the colour bar's tick marks with their labels")
    scale = AxisScale.best([p[0] for p in pairs], [p[1] for p in pairs])
    offsets = np.array([p[2] for p in pairs])
    (image,) = fig.images.values()
    # Rows are placed where the SVG puts the image (its pixel grid, slightly larger than the
    # frame); an image without placement would be spread over the frame instead.
    bar = Colorbar.from_image(image, scale=scale, top=fy0, bottom=fy1)
    info = {
        "ticks": {f"{p[1]:g}": round(p[0], 5) for p in pairs},
        "scale": "log" if scale.log else "linear",
        "residual_svg_units": scale.residual,
        "label_baseline_offset": float(offsets.mean()),
        "label_baseline_offset_spread": float(np.ptp(offsets)),
        "label_font_size": pairs[0][3],
        "image_rows": int(image.pixels.shape[0]),
    }
    return bar, float(offsets.mean()), info


def _y_ticks(fig: SvgFigure, box, baseline_offset: float, font_size: float):
    x0, y0, _, y1 = box
    decades, others = [], []
    for t in fig.texts_in(x0 - LABEL_MARGIN, y0 - 10, x0, y1 + 10):
        value = parse_label_value(t.string)
        if value is None or not math.isclose(t.size, font_size):
            continue
        tick = t.y - baseline_offset
        (decades if is_power_of_ten(value) else others).append((tick, value, t.string))
    return decades, others


def _isoflop_anchors(fig: SvgFigure, box) -> list[tuple[float, float]]:
    """(x, FLOP) of the dashed vertical isoFLOP lines, valued through the legend's labels."""
    x0, y0, x1, y1 = box
    legend = {}
    for p in fig.paths:
        if p.dashed and p.stroke and len(p.points) == 2 and p.points[0, 1] == p.points[1, 1] and p.bbox[0] > x1:
            y = p.points[0, 1]
            texts = [t for t in fig.texts if t.x > p.bbox[2] and abs(t.y - y) < 8]
            values = [parse_label_value(t.string) for t in texts]
            values = [v for v in values if v is not None and v > 1e10]
            if values:
                legend[p.stroke] = values[0]
    anchors = []
    for p in fig.paths:
        xs = p.points[:, 0]
        if p.dashed and p.stroke in legend and len(p.points) == 2 and xs[0] == xs[1] and x0 < xs[0] < x1:
            anchors.append((float(xs[0]), legend[p.stroke]))
    return anchors


def digitize(svg: str | Path) -> tuple[pd.DataFrame, dict]:
    """Recover every run of Figure 4 (left) from the SVG.

    Returns
    -------
    runs
        Columns ``N``, ``C``, ``loss`` and, for audit, ``svg_x``, ``svg_y``, ``fill``,
        ``colour_distance`` (RGB distance from the matched colour-bar colour).
    diagnostics
        Calibration details: anchors, residuals, cross-checks.
    """
    fig = SvgFigure.read(svg)
    box = _left_axes(fig)
    xpos, xval = _x_ticks(fig, box)
    xscale = AxisScale.fit(xpos, xval, log=True)

    bar, offset, bar_info = _colorbar(fig, box)
    decades, others = _y_ticks(fig, box, offset, bar_info["label_font_size"])
    yscale = AxisScale.fit([d[0] for d in decades], [d[1] for d in decades], log=True)

    iso = _isoflop_anchors(fig, box)
    iso_check = max((abs(float(xscale.position(c)) - x) for x, c in iso), default=float("nan"))

    x0, y0, x1, y1 = box
    markers = [m for m in fig.markers if m.fill and x0 <= m.x <= x1 and y0 <= m.y <= y1]
    rows = []
    for m in markers:
        loss, distance = bar.lookup(m.fill)
        rows.append({"N": float(yscale.value(m.y)), "C": float(xscale.value(m.x)), "loss": loss,
                     "svg_x": m.x, "svg_y": m.y, "fill": m.fill, "colour_distance": distance})
    runs = pd.DataFrame(rows).sort_values(["C", "N"], kind="stable").reset_index(drop=True)
    diagnostics = {
        "axes_box": box,
        "runs": len(runs),
        "x_axis": {"anchors": len(xpos), "decade_spacing": xscale.b, "residual_svg_units": xscale.residual,
                   "isoflop_lines": len(iso), "max_isoflop_deviation_svg_units": iso_check},
        "y_axis": {"anchors": len(decades), "decade_spacing": -yscale.b, "residual_svg_units": yscale.residual,
                   "baseline_offset_from_colorbar": offset,
                   "non_decade_labels": {s: float(yscale.value(t)) for t, _, s in others}},
        "colorbar": bar_info,
        "max_colour_distance": float(runs["colour_distance"].max()),
    }
    return runs, diagnostics


def write_csv(runs: pd.DataFrame, out: Path, *, force: bool) -> None:
    """Write atomically; refuse to replace a different existing file unless ``force``."""
    text = runs.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    if out.exists() and not force and out.read_text() != text:
        raise InputError(f"{out} exists and differs; pass --force to replace it")
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("svg", type=Path, help="chinchilla_figure_4.svg")
    parser.add_argument("-o", "--out", type=Path, help="CSV to write (default: print a summary only)")
    parser.add_argument("--force", action="store_true", help="replace an existing, different output file")
    args = parser.parse_args(argv)
    try:
        runs, diagnostics = digitize(args.svg)
        if args.out:
            write_csv(runs, args.out, force=args.force)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(diagnostics, indent=2, default=float))
    print(f"{len(runs)} runs; loss {runs['loss'].min():.3f}–{runs['loss'].max():.3f}, "
          f"N {runs['N'].min():.3g}–{runs['N'].max():.3g}, C {runs['C'].min():.3g}–{runs['C'].max():.3g}"
          + (f"; written to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
