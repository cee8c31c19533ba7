"""Read data back out of a matplotlib-made SVG figure.

The building blocks of the Chinchilla digitizer (``datasets/build/chinchilla_fig4.py``),
kept generic: parse the SVG into text labels, paths, scatter markers and embedded
images in SVG user coordinates; calibrate a (log or linear) axis from anchor positions
and values; and decode a colour bar image into a colour → value map.
"""

from __future__ import annotations

import base64
import io
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_scaling.errors import InputError

__all__ = [
    "AxisScale",
    "Colorbar",
    "Marker",
    "Path2D",
    "SvgFigure",
    "SvgImage",
    "Text",
    "mathtext_width",
    "parse_label_value",
]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SVG = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}"

Affine = tuple[float, float, float, float, float, float]
IDENTITY: Affine = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _parse_transform(text: str | None) -> Affine:
    if not text:
        return IDENTITY
    out = IDENTITY
    for kind, args in re.findall(r"(\w+)\s*\(([^)]*)\)", text):
        v = [float(x) for x in re.findall(_NUM, args)]
        if kind == "matrix" and len(v) == 6:
            m = tuple(v)
        elif kind == "translate":
            m = (1.0, 0.0, 0.0, 1.0, v[0], v[1] if len(v) > 1 else 0.0)
        elif kind == "scale":
            m = (v[0], 0.0, 0.0, v[1] if len(v) > 1 else v[0], 0.0, 0.0)
        else:
            raise InputError(f"unsupported SVG transform {kind!r}")
        out = _compose(out, m)  # type: ignore[arg-type]
    return out


def _compose(a: Affine, b: Affine) -> Affine:
    """The transform that applies ``b`` first, then ``a``."""
    a0, a1, a2, a3, a4, a5 = a
    b0, b1, b2, b3, b4, b5 = b
    return (a0 * b0 + a2 * b1, a1 * b0 + a3 * b1, a0 * b2 + a2 * b3, a1 * b2 + a3 * b3,
            a0 * b4 + a2 * b5 + a4, a1 * b4 + a3 * b5 + a5)


def _apply(m: Affine, x: float, y: float) -> tuple[float, float]:
    return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]


@dataclass(frozen=True)
class Text:
    """One run of text: its anchor (first glyph origin, SVG coordinates), size and string."""

    x: float
    y: float
    size: float
    string: str
    transform: Affine


@dataclass(frozen=True)
class Path2D:
    """A path with its vertices mapped to SVG user coordinates (curves by their end points)."""

    points: np.ndarray
    fill: str | None
    stroke: str | None
    dashed: bool
    closed: bool

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        xs, ys = self.points[:, 0], self.points[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


@dataclass(frozen=True)
class Marker:
    """A scatter marker: a path drawn around the origin and translated to its centre."""

    x: float
    y: float
    fill: str | None
    stroke: str | None
    radius: float


@dataclass(frozen=True)
class SvgImage:
    """An embedded raster image (RGB floats) and, if the SVG places it, where.

    ``row_positions()`` gives the SVG y coordinate of each pixel row's centre when the
    image has its own placement (``x``, ``y``, ``height`` and ``transform``); images
    defined but placed only through a reference the file does not contain have none.
    """

    pixels: np.ndarray
    transform: Affine | None
    x: float
    y: float
    width: float
    height: float

    def row_positions(self) -> np.ndarray | None:
        if self.transform is None:
            return None
        rows = self.pixels.shape[0]
        local_y = self.y + (np.arange(rows) + 0.5) * self.height / rows
        local_x = np.full(rows, self.x + self.width / 2)
        _, ys = _apply(self.transform, local_x, local_y)
        return np.asarray(ys, dtype=float)


@dataclass
class SvgFigure:
    """The drawable content of an SVG file, in SVG user coordinates (y grows downwards)."""

    texts: list[Text] = field(default_factory=list)
    paths: list[Path2D] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    images: dict[str, SvgImage] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> SvgFigure:
        """Parse ``path``; raises :class:`InputError` if it is missing or not SVG."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise InputError(f"{path}: not a well-formed SVG file: {exc}") from None
        if root.tag != f"{_SVG}svg":
            raise InputError(f"{path}: the root element is {root.tag!r}, not an SVG <svg>")
        figure = cls()
        ids = {el.get("id"): el for el in root.iter() if el.get("id")}
        figure._walk(root, IDENTITY, in_defs=False, ids=ids)
        return figure

    def _walk(self, element: ET.Element, parent: Affine, *, in_defs: bool, ids: dict) -> None:
        for child in element:
            tag = child.tag.removeprefix(_SVG)
            m = _compose(parent, _parse_transform(child.get("transform")))
            if tag == "image":
                self._add_image(child, None if in_defs else m)
            elif tag in ("defs", "clipPath"):
                self._walk(child, m, in_defs=True, ids=ids)
            elif in_defs:
                continue
            elif tag == "g":
                self._walk(child, m, in_defs=False, ids=ids)
            elif tag == "path":
                self._add_path(child, m, _style(child))
            elif tag == "text":
                self._add_text(child, m)
            elif tag == "use":
                # matplotlib's own SVG backend: <use xlink:href="#marker" x=.. y=.. style="fill: ..">
                ref = ids.get((child.get(f"{_XLINK}href") or child.get("href") or "").lstrip("#"))
                if ref is not None and ref.tag == f"{_SVG}path":
                    offset = (1.0, 0.0, 0.0, 1.0, float(child.get("x", 0)), float(child.get("y", 0)))
                    style = {**_style(ref), **_style(child)}
                    self._add_path(ref, _compose(m, offset), style)

    def _add_image(self, element: ET.Element, m: Affine | None) -> None:
        href = element.get(f"{_XLINK}href") or element.get("href") or ""
        match = re.match(r"data:image/png;base64,(.*)", href, flags=re.DOTALL)
        if not match:
            return
        import matplotlib.image as mpimg

        pixels = mpimg.imread(io.BytesIO(base64.b64decode(match.group(1))), format="png")[..., :3]
        size = [float(element.get(k, n)) for k, n in (("width", pixels.shape[1]), ("height", pixels.shape[0]))]
        image = SvgImage(pixels, m, float(element.get("x", 0)), float(element.get("y", 0)), *size)
        self.images[element.get("id", f"image_{len(self.images)}")] = image

    def _add_text(self, element: ET.Element, m: Affine) -> None:
        size = float(element.get("font-size", "nan"))
        for span in element.iter(f"{_SVG}tspan"):
            xs = [float(v) for v in re.findall(_NUM, span.get("x", "0"))]
            y = float(span.get("y", "0"))
            x0, y0 = _apply(m, xs[0] if xs else 0.0, y)
            self.texts.append(Text(x0, y0, size, span.text or "", m))

    def _add_path(self, element: ET.Element, m: Affine, style: dict[str, str]) -> None:
        d = element.get("d", "")
        fill = style.get("fill")
        stroke = style.get("stroke")
        points = np.array(_path_vertices(d), dtype=float)
        if len(points) < 2:
            return
        # A marker is a curved shape drawn around (0, 0) and placed by a pure translation.
        radius = float(np.abs(points).max())
        centre = (points.min(axis=0) + points.max(axis=0)) / 2
        centred = bool(np.all(np.abs(centre) <= 0.05 * radius + 1e-9))
        if m[0] == 1 and m[1] == 0 and m[2] == 0 and abs(m[3]) == 1 and "C" in d.upper() and centred:
            self.markers.append(Marker(m[4], m[5], fill if fill != "none" else None, stroke, radius))
            return
        mapped = np.column_stack(_apply(m, points[:, 0], points[:, 1]))
        self.paths.append(Path2D(mapped, fill if fill != "none" else None, stroke,
                                 dashed=element.get("stroke-dasharray") is not None,
                                 closed=d.rstrip().endswith(("Z", "z"))))

    def texts_in(self, x0: float, y0: float, x1: float, y1: float) -> list[Text]:
        """Texts whose anchor lies in the box."""
        return [t for t in self.texts if x0 <= t.x <= x1 and y0 <= t.y <= y1]


def _style(element: ET.Element) -> dict[str, str]:
    """Presentation attributes and ``style="fill: …"`` declarations, the latter winning."""
    out = {k: v for k in ("fill", "stroke") if (v := element.get(k)) is not None}
    for declaration in (element.get("style") or "").split(";"):
        key, _, value = declaration.partition(":")
        if key.strip() in ("fill", "stroke") and value.strip():
            out[key.strip()] = value.strip()
    return out


def _path_vertices(d: str) -> list[tuple[float, float]]:
    """End points of the absolute M/L/H/V/C/Z commands matplotlib writes."""
    points: list[tuple[float, float]] = []
    x = y = 0.0
    for command, args in re.findall(r"([MLHVCZmlhvcz])([^MLHVCZmlhvcz]*)", d):
        v = [float(t) for t in re.findall(_NUM, args)]
        if command in "ML":
            pairs = list(zip(v[0::2], v[1::2], strict=False))
        elif command == "H":
            pairs = [(vx, y) for vx in v]
        elif command == "V":
            pairs = [(x, vy) for vy in v]
        elif command == "C":
            pairs = list(zip(v[4::6], v[5::6], strict=False))
        elif command in "Zz":
            continue
        else:
            raise InputError(f"relative SVG path command {command!r} is not supported")
        for x, y in pairs:
            points.append((x, y))
    return points


_SUFFIX = {"": 1.0, "K": 1e3, "k": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_label_value(text: str) -> float | None:
    """The number a tick label shows: ``"100M"`` → 1e8, ``"3e+19"`` → 3e19, ``"2.00"`` → 2."""
    s = text.strip().replace("\u2212", "-")
    match = re.fullmatch(rf"({_NUM})\s*([KkMBGT]?)", s)
    if not match:
        return None
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def mathtext_width(text: str, *, size: float, family: str = "DejaVu Sans") -> float:
    """Width in points of a label as matplotlib lays it out (used to centre tick labels)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    result = MathTextParser("path").parse(text, dpi=72, prop=FontProperties(family=family, size=size))
    return float(result.width)


@dataclass(frozen=True)
class AxisScale:
    """``position = a + b·f(value)`` with ``f`` = log10 (log axis) or identity.

    Fitted by least squares to anchors; ``residual`` is the largest misfit in SVG units.
    """

    a: float
    b: float
    log: bool
    residual: float
    n_anchors: int

    @classmethod
    def fit(cls, positions, values, *, log: bool) -> AxisScale:
        positions = np.asarray(positions, dtype=float)
        values = np.asarray(values, dtype=float)
        if positions.size < 2:
            raise InputError("an axis needs at least two anchors to calibrate")
        f = np.log10(values) if log else values
        b, a = np.polyfit(f, positions, 1)
        residual = float(np.max(np.abs(positions - (a + b * f))))
        return cls(float(a), float(b), log, residual, int(positions.size))

    @classmethod
    def best(cls, positions, values) -> AxisScale:
        """The better of a log and a linear fit (smaller residual)."""
        return min(cls.fit(positions, values, log=True), cls.fit(positions, values, log=False),
                   key=lambda s: s.residual)

    def value(self, position):
        f = (np.asarray(position, dtype=float) - self.a) / self.b
        return 10.0**f if self.log else f

    def position(self, value):
        v = np.asarray(value, dtype=float)
        return self.a + self.b * (np.log10(v) if self.log else v)


def hex_to_rgb(colour: str) -> np.ndarray:
    """``"#f47a54"`` → RGB floats in [0, 1]."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour or ""):
        raise InputError(f"not a #rrggbb colour: {colour!r}")
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float) / 255.0


@dataclass(frozen=True)
class Colorbar:
    """A colour bar image with the axis that maps its rows to values.

    ``colours[i]`` is the colour of row ``i`` (top row first) and ``positions[i]`` the
    SVG y coordinate of that row's centre.
    """

    colours: np.ndarray
    positions: np.ndarray
    scale: AxisScale
    #: RGB distance below which a colour counts as the colour of a row (PNG 8-bit rounding is 1/255).
    exact_tolerance: float = 0.5 / 255

    @classmethod
    def from_image(cls, image: SvgImage, *, scale: AxisScale, top: float | None = None,
                   bottom: float | None = None) -> Colorbar:
        """Colour bar from an image: placed by the SVG, or else spread over ``top``–``bottom``.

        ``top`` and ``bottom`` (e.g. the colour bar's frame) are needed when the image
        carries no placement of its own.
        """
        pixels = image.pixels
        rows = pixels.shape[0]
        middle = pixels[:, pixels.shape[1] // 2, :3].astype(float)
        centres = image.row_positions()
        if centres is None:
            if top is None or bottom is None:
                raise InputError("the colour bar image is not placed in the SVG; give its top and bottom")
            centres = top + (np.arange(rows) + 0.5) * (bottom - top) / rows
        return cls(middle, centres, scale)

    def lookup(self, colour: str) -> tuple[float, float]:
        """Value for a colour, and the colour distance of the match (0 = exact).

        The colour is projected onto the segment between the nearest row and its
        closer neighbour, so values fall between rows rather than on a row grid.
        """
        rgb = hex_to_rgb(colour)
        dist = np.linalg.norm(self.colours - rgb, axis=1)
        exact = np.flatnonzero(dist < self.exact_tolerance)
        if exact.size:
            # A colormap has fewer colours than the bar has rows: a colour covers a run of
            # rows (one colormap bin), whose centre is the best estimate of the value.
            return float(self.scale.value(self.positions[exact].mean())), float(dist[exact].max())
        i = int(np.argmin(dist))
        best_pos, best_dist = self.positions[i], float(dist[i])
        for j in (i - 1, i + 1):
            if not 0 <= j < len(self.colours):
                continue
            seg = self.colours[j] - self.colours[i]
            length2 = float(seg @ seg)
            if length2 == 0:
                continue
            t = float(np.clip((rgb - self.colours[i]) @ seg / length2, 0.0, 1.0))
            d = float(np.linalg.norm(self.colours[i] + t * seg - rgb))
            if d < best_dist - 1e-12:
                best_dist = d
                best_pos = self.positions[i] + t * (self.positions[j] - self.positions[i])
        return float(self.scale.value(best_pos)), best_dist


def is_power_of_ten(value: float, *, rtol: float = 1e-9) -> bool:
    """True for 1e-3, 1, 100, 1e9 …: the major ticks of a log axis."""
    if value <= 0:
        return False
    exponent = round(math.log10(value))
    return math.isclose(value, 10.0**exponent, rel_tol=rtol)
