"""Tables for papers: CSV, Markdown and LaTeX (booktabs), written atomically.

pandas' own Markdown and LaTeX writers need optional packages (tabulate, jinja2); these
small writers need none and format numbers the same way in every output.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from .outputs import write_text_atomic

__all__ = ["format_number", "to_markdown", "to_latex", "write_table", "write_text_atomic"]


def format_number(value, digits: int = 4) -> str:
    """Significant digits, scientific notation for very large or small magnitudes."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    v = float(value)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def _cells(frame: pd.DataFrame, digits: int, index: bool) -> tuple[list[str], list[list[str]]]:
    data = frame.reset_index() if index else frame
    header = [str(c) for c in data.columns]
    rows = [[format_number(v, digits) for v in row] for row in data.itertuples(index=False)]
    return header, rows


def to_markdown(frame: pd.DataFrame, *, digits: int = 4, index: bool = True) -> str:
    header, rows = _cells(frame, digits, index)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(frame: pd.DataFrame, *, digits: int = 4, index: bool = True, caption: str | None = None,
             label: str | None = None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    header, rows = _cells(frame, digits, index)
    spec = "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(map(_latex_escape, header)) + r" \\",
              r"\midrule"]
    lines += [" & ".join(map(_latex_escape, r)) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, stem: str | os.PathLike, *, formats=("csv", "md", "tex"),
                digits: int = 4, index: bool = True, caption: str | None = None) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex``; returns the paths written."""
    stem = Path(stem)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            text = frame.to_csv(index=index, lineterminator="\n")
        elif fmt == "md":
            text = to_markdown(frame, digits=digits, index=index)
        elif fmt == "tex":
            text = to_latex(frame, digits=digits, index=index, caption=caption, label=f"tab:{stem.name}")
        else:
            raise ValueError(f"unknown table format {fmt!r}")
        out.append(write_text_atomic(path, text))
    return out
