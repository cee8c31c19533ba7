"""The report's self-contained HTML page: what the steps found, as the context of a jinja2
template (``templates/report.html.j2``), with tables formatted as the LaTeX ones are."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import central
from bayes_scaling.report.state import _Build

#: The documentation page that explains the structural error in full (a path in the repository).
STRUCTURAL_DOCS = "docs/explanation/interval-honesty.md"


def table_context(frame: pd.DataFrame, *, index: bool = False, digits: int = 3, caption: str = "") -> dict[str, Any]:
    """A table for the template: headers in words with units, cells ``(value, interval)`` with numbers
    to ``digits`` significant figures and powers of ten (as :func:`~bayes_scaling.io.tables.to_latex`).

    Parameters
    ----------
    frame
        The table.
    index
        Include the index.
    digits
        Significant figures.
    caption
        Its caption.

    Returns
    -------
    dict
    """
    from bayes_scaling.io.tables import TEXT_HEADERS, merged_cells, text_number

    columns, rows = merged_cells(frame, lambda v: text_number(v, digits), index=index)
    headers = [_header(c, TEXT_HEADERS, text_number) for c in columns]
    level = frame.attrs.get("level")
    has_intervals = any(interval for row in rows for _, interval in row)
    note = f"Medians with {level:.0%} credible intervals below them." if has_intervals and level else ""
    return {"headers": headers, "rows": rows, "caption": caption, "note": note}


def _header(column: str, headers: dict[str, str], number) -> str:
    """A column's header in words: the known ones with units, ``loss_1e+25`` as "Loss at 10²⁵ FLOP"."""
    if column in headers:
        return headers[column]
    name, _, budget = column.rpartition("_")
    try:
        flop = float(budget)
    except ValueError:
        return column.replace("_", " ")
    return f"{headers.get(name, name.replace('_', ' '))} at {number(flop)} FLOP"


def _figure(b: _Build, name: str) -> dict[str, str] | None:
    if name not in b.captions:
        return None
    data = base64.b64encode((b.figures / f"{name}.png").read_bytes()).decode()
    return {"src": f"data:image/png;base64,{data}", "caption": b.captions[name], "name": name}


def cite_keys_of(data: str) -> list[str]:
    """Citation keys of a registered dataset ([] for a user's file).

    Parameters
    ----------
    data
        A dataset name or file.

    Returns
    -------
    list of str
    """
    from bayes_scaling.data.datasets import dataset_info

    try:
        return list(dataset_info(data).citation)
    except InputError:
        return []


def _forecast_label(fc) -> str:
    """Which law(s) a report's forecasts come from, in words."""
    return fc.law.name if fc.law.name.startswith("law average") else f"{fc.law.name} law"


def _references(bib: Path) -> list[dict[str, str]]:
    """The references of ``references.bib``: authors, year, title, venue."""
    items = []
    for entry in re.split(r"\n(?=@)", bib.read_text(encoding="utf-8").strip()):
        fields = {k.lower(): " ".join(v.replace("{", "").replace("}", "").split())
                  for k, v in re.findall(r"(\w+)\s*=\s*(\{(?:[^{}]|\{[^{}]*\})*\})", entry)}
        names = [a.split(",")[0].strip() for a in fields.get("author", "").split(" and ") if a.strip()]
        who = (names[0] + (" et al." if len(names) > 2 else f" and {names[1]}" if len(names) == 2 else "")
               if names else "")
        items.append({"who": who, "year": fields.get("year", "n.d."), "title": fields.get("title", ""),
                      "venue": fields.get("journal") or fields.get("booktitle") or fields.get("url") or ""})
    return items


def headline(b: _Build) -> dict[str, Any]:
    """The one sentence the page opens with: the forecast at the first budget at least a decade
    beyond the data (else the largest), with its interval.

    Parameters
    ----------
    b
        The context shared by the report's steps.

    Returns
    -------
    dict
    """
    from bayes_scaling.io.tables import text_number

    table = b.forecast
    beyond = table["decades_beyond_data"].to_numpy()
    row = table.iloc[int(np.argmax(beyond >= 1.0)) if (beyond >= 1.0).any() else len(table) - 1]
    out = {"C": text_number(row["C"]), "loss": text_number(row["loss"]), "lower": text_number(row["loss_lower"]),
           "upper": text_number(row["loss_upper"]), "level": f"{b.config.level:.0%}",
           "decades": f"{row['decades_beyond_data']:.1f}", "by": _forecast_label(b.fc)}
    if "N" in table.columns:
        out |= {"N": text_number(row["N"]), "D": text_number(row["D"]),
                "tokens_per_param": text_number(row["tokens_per_param"])}
    return out


def _structural(fit) -> dict[str, Any] | None:
    """The main fit's structural error, in plain words."""
    structural = fit.structural
    if structural is None:
        return None
    q = {k: np.quantile(getattr(structural, k), [0.5, 0.05, 0.95]) for k in ("b", "omega", "rho")}
    return {"c_ref": _text(structural.c_ref), "backtests": structural.info.get("backtest_cuts", 0),
            "drift_lo": f"{q['b'][1] * 100:+.2f}", "drift_hi": f"{q['b'][2] * 100:+.2f}",
            "scatter": f"{q['omega'][0] * 100:.2f}", "rho": f"{q['rho'][0]:.2f}", "technical": structural.describe(),
            "docs": STRUCTURAL_DOCS, **_window(fit)}


def _window(fit) -> dict[str, Any]:
    """How many of the given runs the law was fitted to (the frontier window), where it left some out."""
    fitted, given = fit.config.get("data", {}).get("rows"), fit.config.get("runs_given")
    if fit.config.get("window") is None or not given or fitted == given:
        return {"fitted": None, "given": None}
    return {"fitted": fitted, "given": given}


def _text(value) -> str:
    from bayes_scaling.io.tables import text_number

    return text_number(value)


def _check(b: _Build) -> dict[str, Any] | None:
    if not len(b.check) or b.config.law not in b.check.index:
        return None
    r = b.check.loc[b.config.law]
    return {"held_out": f"{r['held_out']:.0f}", "cuts": f"{r['cuts']:.0f}", "max_decades": f"{r['max_decades']:.1f}",
            "coverage_90": f"{r['coverage_90']:.0%}", "coverage_50": f"{r['coverage_50']:.0%}",
            "width": f"{r['width_90_pct']:.1f}", "bias": f"{r['bias_pct']:+.2f}", "law": b.config.law}


def _energy(b: _Build) -> dict[str, Any]:
    h = np.array(central(b.energy.trend.yearly_factor, 0.9))[[1, 0, 2]]  # median, lower, upper
    g = np.array(central(b.growth["energy_growth"], 0.9))[[1, 0, 2]]
    summary = b.calibration_summary.set_index(["quantity", "group"])
    checked = {}
    for quantity in ("device_hours", "energy_mwh"):
        if (quantity, "all") in summary.index:
            r = summary.loc[(quantity, "all")]
            checked[quantity] = {"runs": f"{r['runs']:.0f}", "coverage_90": f"{r['coverage_90']:.0%}",
                                 "coverage_50": f"{r['coverage_50']:.0%}", "ratio": f"{r['median_ratio']:.2f}"}
    return {"efficiency": [f"{v:.2f}" for v in h], "growth": [f"{v:.2f}" for v in g],
            "grid": table_context(b.energy_grid,
                                  caption="Training energy (MWh) of each compute budget (rows, FLOP) on the expected "
                                          "new chip of each year (columns)"),
            "targets": None if b.energy_targets is None else table_context(
                b.energy_targets, caption="Energy to reach the target losses"),
            "checked": checked,
            "summary": table_context(b.calibration_summary,
                                     caption="Leave-one-run-out by quantity, model size and (energy) how the report "
                                             "computed it: share of reported values inside the 50% and 90% intervals, median reported / forecast, median "
                                             "ratio of the 90% interval's ends")}


def _serving(b: _Build) -> dict[str, Any]:
    life = b.lifetime
    keep = [] if life is None else [c for c in life.columns if not c.startswith(("training_", "serving_", "D"))]
    return {"missing": b.serving_missing,
            "coefficients": None if b.serving_coefficients is None else table_context(
                b.serving_coefficients, index=True, caption="GPU energy per output token: regression coefficients "
                                                            "(log J per token)"),
            "lifetime": None if life is None else table_context(life[keep]),
            "target": None if life is None else f"{life.attrs['target_loss']:g}"}


def _downstream(b: _Build) -> dict[str, Any] | None:
    from bayes_scaling.io.tables import text_number

    fit = b.downstream
    if fit is None:
        return None
    tasks = fit.tasks
    structural = fit.config.get("structural") or {}
    forecast = b.downstream_forecast
    shown, budgets = None, []
    if forecast is not None:  # one row per task, a column per budget: the first, middle and last on the page
        every = sorted(forecast["C"].unique())
        budgets = sorted({every[0], every[len(every) // 2], every[-1]})
        wide = {}
        for c in budgets:
            at = forecast[forecast["C"] == c].set_index("task")
            wide |= {f"accuracy_{c:.0e}": at["median"], f"accuracy_{c:.0e}_lower": at["lower"],
                     f"accuracy_{c:.0e}_upper": at["upper"]}
        chance = forecast.drop_duplicates("task").set_index("task")["chance"]
        shown = pd.DataFrame({"chance": chance, **wide}).rename_axis("task").reset_index()
        shown.attrs["level"] = b.config.level
    return {"fitted": ", ".join(fit.fitted_tasks) or "none",
            "near_chance": ", ".join(tasks.loc[tasks["status"] != "fitted", "task"]),
            "runs": len(fit.runs), "sigma": {k: f"{v:.2f}" for k, v in structural.items() if k.startswith("sigma")},
            "backtest_errors": structural.get("backtest_errors"),
            "forecast": None if shown is None else table_context(
                shown, caption=f"Task accuracy of a new run at the compute-optimal allocation of "
                               f"{', '.join(text_number(c) for c in budgets)} FLOP ({b.config.level:.0%} intervals; "
                               f"every budget: tables/downstream_forecast.csv)")}


def _isoflop(b: _Build) -> dict[str, Any] | None:
    iso = b.isoflop
    if iso is None:
        return None
    exponents = b.isoflop_comparison.attrs.get("exponents", {})

    def interval(name: str) -> str | None:
        if name not in exponents:
            return None
        lo, med, hi = exponents[name]
        return f"{med:.3f} [{lo:.3f}, {hi:.3f}]"

    p_key = next((k for k in exponents if k.startswith("p_differ_by_")), None)
    comparison = b.isoflop_comparison[b.isoflop_comparison["C"].notna()]
    diag = iso.diagnostics
    return {"budgets": int(iso.budgets.size), "runs": len(iso.runs), "left_out": iso.left_out,
            "design": iso.config.get("design", "exact"),
            "diagnostics": {"ok": diag.ok, "line": str(diag).splitlines()[0], "problems": "; ".join(diag.problems)},
            "a_isoflop": interval("a_isoflop"), "a_parametric": interval("a_parametric"),
            "p_differ": None if p_key is None else f"{exponents[p_key]:.2f}",
            "tolerance": None if p_key is None else p_key.removeprefix("p_differ_by_"),
            "optimum": table_context(b.isoflop_optimum, caption="The compute-optimal allocation and loss from the "
                                                                "budgets' optima (Approach 2)"),
            "comparison": table_context(comparison, caption="N* from Approach 2 and from the parametric fit "
                                                            "(Approach 3); P(differ): that their log10 N* differ "
                                                            "by more than 0.1")}


def page_context(b: _Build, manifest: dict[str, Any]) -> dict[str, Any]:
    """Everything the template shows, in the order the page shows it.

    Parameters
    ----------
    b
        The context shared by the report's steps.
    manifest
        The report's manifest.

    Returns
    -------
    dict
    """
    diag = b.main.diagnostics
    figures = {name: _figure(b, name) for name in b.captions}
    weights = None
    if b.weights is not None:
        weights = ", ".join(f"{k.split(' / ')[0]} {w:.2f}" for k, w in b.weights["stacking_weight"].items())
    return {
        "source": b.runs.source, "n_runs": len(b.runs), "formula": b.main.law.formula,
        "likelihood": b.main.likelihood.name, "chains": diag.chains, "draws": diag.draws,
        "level": f"{b.config.level:.0%}", "main_law": b.main.law.name, "headline": headline(b),
        "weights": weights, "check": _check(b), "structural": _structural(b.main),
        "forecast": table_context(b.forecast, caption=f"Forecasts at the compute-optimal allocation "
                                                      f"({_forecast_label(b.fc)})"),
        "sensitivity": None if b.sensitivity is None else table_context(b.sensitivity),
        "targets": None if b.targets is None else table_context(b.targets),
        "figures": figures,
        "diagnostics": {"ok": diag.ok, "line": str(diag).splitlines()[0], "problems": "; ".join(diag.problems)},
        "summary": table_context(b.summary, index=True, digits=4),
        "loo": None if b.loo is None else table_context(b.loo, index=True),
        "loo_warning": None if b.loo is None else b.loo.attrs.get("warning"),
        "lfo": None if b.weights is None else table_context(b.weights, index=True),
        "lfo_method": None if b.weights is None else b.weights.attrs.get("method", ""),
        "backtests": None if b.bt is None else table_context(b.bt.drop(columns=["cached"])),
        "energy": _energy(b), "serving": _serving(b), "isoflop": _isoflop(b), "downstream": _downstream(b),
        "references": _references(b.root / "references.bib"),
        "manifest": manifest, "config_json": json.dumps(b.config.to_dict(), indent=2),
    }


def render_page(context: dict[str, Any]) -> str:
    """The page from its context (``templates/report.html.j2``; every value escaped).

    Parameters
    ----------
    context
        :func:`page_context`'s result.

    Returns
    -------
    str
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("bayes_scaling.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


def _write_html(b: _Build, manifest: dict[str, Any]) -> None:
    """index.html: every section in order, figures embedded."""
    from bayes_scaling.io.outputs import write_text_atomic

    write_text_atomic(b.root / "index.html", render_page(page_context(b, manifest)))
