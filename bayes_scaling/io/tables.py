"""Tables for papers: CSV, Markdown and LaTeX (booktabs), written atomically.

pandas' own Markdown and LaTeX writers need optional packages (tabulate, jinja2); these
small writers need none and format numbers the same way in every output.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.io.outputs import write_text_atomic

__all__ = ["format_number", "latex_number", "text_number", "merged_cells", "to_markdown", "to_latex",
           "write_table", "LATEX_HEADERS", "TEXT_HEADERS"]


def format_number(value, digits: int = 4) -> str:
    """Significant digits, scientific notation for very large or small magnitudes (Markdown and terminals).

    Parameters
    ----------
    value
        A number, a string (returned as it is) or None/NaN (``–``).
    digits
        Significant digits.

    Returns
    -------
    str
    """
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
    """A Markdown table (GitHub pipes), numbers by :func:`format_number`.

    Parameters
    ----------
    frame
        The table.
    digits
        Significant digits.
    index
        Include the index as the first column.

    Returns
    -------
    str
    """
    header, rows = _cells(frame, digits, index)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


#: Column names as a paper prints them (with units); other names: underscores become spaces.
LATEX_HEADERS = {
    "C": r"$C$ (FLOP)", "flop": r"Compute (FLOP)", "N": r"$N$ (parameters)", "D": r"$D$ (tokens)",
    "tokens_per_param": r"$D/N$", "loss": r"Loss (nats/token)", "loss_pred": r"New run's loss (nats/token)",
    "decades_beyond_data": r"Decades beyond data", "target_loss": r"Target loss", "p_reachable": r"P(reachable)",
    "p_below_E": r"P(target $<E$)", "energy_mwh": r"Energy (MWh)", "tco2e": r"Emissions (t CO$_2$e)",
    "hardware": "Hardware", "precision": "Precision", "year": "Year", "mean": "Mean", "sd": "SD",
    "median": "Median", "ess_bulk": "ESS (bulk)", "ess_tail": "ESS (tail)", "r_hat": r"$\hat{R}$",
    "parameter": "Parameter", "model": "Model", "tokens_served": "Tokens served",
    "n_params": r"$N$ (parameters)", "reported_mwh": "Reported (MWh)", "median_mwh": "Predicted (MWh)",
    "N_isoflop": r"$N^*$, Approach 2", "N_parametric": r"$N^*$, Approach 3", "ratio": "Approach 2 / 3",
    "p_differ": "P(differ)",
}


def _significant(value, digits: int, *, text, missing: str) -> str | tuple[str, int]:
    """A cell to ``digits`` significant figures: finished text (``text(value)`` for a string,
    ``missing`` for None or NaN, yes/no, counts and years as they are), or (mantissa, exponent)
    where it needs a power of ten: what LaTeX and page tables share."""
    if isinstance(value, str):
        return text(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    v = float(value)
    if isinstance(value, int | np.integer) and abs(v) < 1e6 or v.is_integer() and abs(v) < 1e4:
        return f"{v:.0f}"
    if v == 0 or 1e-2 <= abs(v) < 1e4:
        text = f"{v:#.{digits}g}"  # keep trailing zeros: 1.90 next to 1.87
        return text.rstrip(".") if "e" not in text else f"{v:.0f}"
    mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
    return mantissa, int(exponent)


def latex_number(value, digits: int = 3) -> str:
    """A number for LaTeX: ``digits`` significant figures, powers of ten as ``$1.23\\times10^{24}$``.

    Parameters
    ----------
    value
        A number, a string (escaped for LaTeX) or None/NaN (``--``).
    digits
        Significant figures.

    Returns
    -------
    str
    """
    number = _significant(value, digits, text=_latex_escape, missing="--")
    if isinstance(number, str):
        return number
    mantissa, exponent = number
    if float(mantissa) == 1.0:
        return f"$10^{{{exponent}}}$"
    if float(mantissa) == -1.0:
        return f"$-10^{{{exponent}}}$"
    return f"${mantissa}\\times10^{{{exponent}}}$"


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def text_number(value, digits: int = 3) -> str:
    """A number as a page prints it: ``digits`` significant figures, powers of ten as ``1.23×10²⁴``
    (Unicode superscripts: plain text that HTML, a terminal and a screen reader all read).

    Parameters
    ----------
    value
        A number, a string (returned as it is) or None/NaN (``–``).
    digits
        Significant figures.

    Returns
    -------
    str

    Examples
    --------
    >>> from bayes_scaling.io.tables import text_number
    >>> text_number(9.21e9), text_number(1e24), text_number(1.9), text_number(2025)
    ('9.21×10⁹', '10²⁴', '1.90', '2025')
    """
    number = _significant(value, digits, text=str, missing="–")
    if isinstance(number, str):
        return number
    mantissa, exponent = number
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    if float(mantissa) in (1.0, -1.0):
        return ("−" if float(mantissa) < 0 else "") + power
    return f"{mantissa}×{power}".replace("-", "−")


#: Column names as a page prints them, in words with units; other names: underscores become spaces.
TEXT_HEADERS = {
    "C": "Compute C (FLOP)", "flop": "Compute (FLOP)", "N": "Parameters N", "D": "Tokens D",
    "tokens_per_param": "Tokens per parameter", "loss": "Loss (nats/token)",
    "loss_pred": "A new run's loss (nats/token)", "decades_beyond_data": "Decades beyond the data",
    "target_loss": "Target loss (nats/token)", "p_reachable": "P(reachable)", "p_below_E": "P(target below E)",
    "energy_mwh": "Energy (MWh)", "tco2e": "Emissions (t CO₂e)", "hardware": "Hardware", "precision": "Precision",
    "year": "Year", "mean": "Mean", "sd": "SD", "median": "Median", "ess_bulk": "ESS (bulk)",
    "ess_tail": "ESS (tail)", "r_hat": "R̂", "parameter": "Parameter", "model": "Model",
    "tokens_served": "Tokens served", "n_params": "Parameters N", "reported_mwh": "Reported (MWh)",
    "median_mwh": "Predicted (MWh)", "elpd_loo": "ELPD (LOO)", "elpd_lfo": "ELPD (leave-future-out)",
    "se": "SE", "elpd_diff": "ELPD difference", "dse": "SE of difference", "stacking_weight": "Stacking weight",
    "held_out": "Runs held out", "cuts": "Cuts", "p_loo": "Effective parameters",
    "rank": "Rank", "pareto_k_max": "Largest Pareto k", "n_pareto_k_bad": "Runs with Pareto k > 0.7",
    "diagnostics_ok": "Diagnostics ok", "variant": "Variant", "q5": "5% quantile", "q95": "95% quantile",
    "coverage_90": "90% coverage", "coverage_50": "50% coverage", "width_90_pct": "90% width (% of loss)",
    "bias_pct": "Mean error (%)", "crps": "CRPS", "max_decades": "Farthest (decades)",
    "quantity": "Quantity", "group": "Runs of", "runs": "Runs", "median_ratio": "Reported / forecast (median)",
    "median_abs_log_error": "Median |log error|", "interval_ratio_90": "90% interval: upper / lower",
    "task": "Task", "chance": "Chance level", "accuracy": "Accuracy",
    "N_isoflop": "N* from the optima (Approach 2)", "N_parametric": "N* from the parametric fit (Approach 3)",
    "ratio": "Approach 2 / Approach 3", "p_differ": "P(differ by more than the tolerance)",
}


def merged_cells(frame: pd.DataFrame, number, *, index: bool = True) -> tuple[list[str], list[list[tuple]]]:
    """The columns of ``frame`` with each ``x``, ``x_lower``, ``x_upper`` triple merged into one, and
    its rows as cells ``(value, interval)`` formatted by ``number`` (``interval`` is ``None`` or
    ``(lower, upper)``): what the LaTeX and HTML tables share.

    Parameters
    ----------
    frame
        The table.
    number
        Formats one cell's value (e.g. :func:`latex_number`, :func:`text_number`).
    index
        Include the index as the first column.

    Returns
    -------
    tuple
        (column names, rows of ``(value, interval)`` cells).
    """
    data = frame.reset_index() if index else frame
    columns = [c for c in data.columns if not str(c).endswith(("_lower", "_upper"))]
    rows = []
    for _, row in data.iterrows():
        cells = []
        for c in columns:
            interval = None
            if f"{c}_lower" in data.columns and f"{c}_upper" in data.columns:
                interval = (number(row[f"{c}_lower"]), number(row[f"{c}_upper"]))
            cells.append((number(row[c]), interval))
        rows.append(cells)
    return [str(c) for c in columns], rows


def to_latex(frame: pd.DataFrame, *, digits: int = 3, index: bool = True, caption: str | None = None,
             label: str | None = None) -> str:
    """A table a journal accepts: booktabs rules, ``median [lower, upper]`` cells, readable headers
    with units, numbers to ``digits`` significant figures with powers of ten, a caption and label,
    and never wider than the text (``adjustbox``'s ``max width``).

    Needs ``\\usepackage{booktabs}`` and ``\\usepackage{adjustbox}``.

    Parameters
    ----------
    frame
        The table; ``x``, ``x_lower``, ``x_upper`` columns become one ``median [lower, upper]`` column.
    digits
        Significant figures.
    index
        Include the index as the first column.
    caption, label
        The table's caption (the credible level is added to it) and LaTeX label.

    Returns
    -------
    str
    """
    columns, cells = merged_cells(frame, lambda v: latex_number(v, digits), index=index)
    header = [LATEX_HEADERS.get(c, _latex_escape(c.replace("_", " "))) for c in columns]
    rows = [[value + (f" [{interval[0]}, {interval[1]}]" if interval else "") for value, interval in row]
            for row in cells]
    spec = "l" + "r" * (len(header) - 1)
    merged = any(interval for row in cells for _, interval in row)
    level = frame.attrs.get("level")
    note = (f"Medians with {level:.0%} credible intervals in brackets." if merged and level else
            "Medians with credible intervals in brackets." if merged else "")
    if caption and note:
        caption = caption.rstrip(".") + ". "
    lines = ["% needs \\usepackage{booktabs} and \\usepackage{adjustbox}", r"\begin{table}[t]", r"\centering"]
    if caption or note:
        lines.append(rf"\caption{{{_latex_escape(caption or '')}{_latex_escape(note)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [r"\begin{adjustbox}{max width=\linewidth}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, stem: str | os.PathLike, *, formats=("csv", "md", "tex"),
                digits: int = 4, index: bool = True, caption: str | None = None) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex`` atomically.

    Parameters
    ----------
    frame
        The table.
    stem
        The path without suffix.
    formats
        Which of ``"csv"``, ``"md"`` and ``"tex"`` to write.
    digits
        Significant digits (at most 3 in LaTeX).
    index
        Include the index.
    caption
        The LaTeX caption.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    stem = Path(stem)
    out = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            text = frame.to_csv(index=index, lineterminator="\n")
        elif fmt == "md":
            text = to_markdown(frame, digits=digits, index=index)
        elif fmt == "tex":
            text = to_latex(frame, digits=min(digits, 3), index=index, caption=caption, label=f"tab:{stem.name}")
        else:
            raise ValueError(f"unknown table format {fmt!r}")
        out.append(write_text_atomic(path, text))
    return out
