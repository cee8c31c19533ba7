"""The report's self-contained HTML page.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import central
from bayes_scaling.report.config import ReportConfig
from bayes_scaling.report.state import _Build

log = logging.getLogger(__name__)


def _figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table_html(frame: pd.DataFrame, *, index: bool = False, digits: int = 3) -> str:
    from bayes_scaling.io.tables import format_number

    data = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in data.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_number(v, digits))}</td>" for v in row) + "</tr>"
                   for row in data.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.5}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.8rem 0;display:block;overflow-x:auto}
th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}img{max-width:100%;width:720px}figcaption{font-size:.85rem;color:#555}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px}pre{padding:.6rem;overflow-x:auto}
.ok{color:#1b7f3a}.bad{color:#b3261e}
"""


def _serving_section(config: ReportConfig, main, tables: Path) -> str:
    """Measured serving energy and the lifetime-optimal allocation: tables written, HTML returned."""
    import warnings

    from bayes_scaling.data.remote import RemoteDataError
    from bayes_scaling.energy.serving import InferenceEnergy
    from bayes_scaling.errors import DataWarning
    from bayes_scaling.forecast.forecaster import Forecaster, compact
    from bayes_scaling.forecast.lifetime import lifetime_table
    from bayes_scaling.io.tables import write_table

    parts = ["<h2>Serving</h2>"]
    log.info("serving: fitting the inference-energy model to the ML.ENERGY measurements")
    try:
        measured = InferenceEnergy.fit(draws=500, seed=config.seed)
    except RemoteDataError as exc:  # offline, without the files: the section says so, the report goes on
        warnings.warn(DataWarning(f"the report's serving section leaves out measured inference energy: {exc}"),
                      stacklevel=2)
        parts.append("<p class=bad>Measured inference energy is left out: the ML.ENERGY measurements (dataset "
                     "<code>ml-energy-llm</code>) could not be obtained on this machine. "
                     "<code>bayes-scaling datasets show ml-energy-llm</code> says how to provide them.</p>")
    else:
        coefficients = measured.summary(level=config.level)
        write_table(coefficients, tables / "inference_energy",
                    caption="Regression of GPU energy per output token (log J) on the ML.ENERGY measurements")
        parts += ["<p>GPU energy per output token from a hierarchical regression of the 565 serving configurations "
                  "of the ML.ENERGY leaderboard v3 (27 LLMs on H100 and B200; coefficients on log J per token). "
                  "Left-out models are predicted with 87% of their configurations inside the 90% intervals "
                  "(<code>bayes-scaling energy --inference-calibration</code>).</p>",
                  _table_html(coefficients, index=True)]
    if config.target_losses and config.tokens_served and {"N", "D"} <= set(main.law.inputs):
        target = config.target_losses[0]
        fc = Forecaster(main, group=config.group or None, max_draws=1000, seed=config.seed)
        life = lifetime_table(fc, target_loss=target, tokens_served=config.tokens_served, level=config.level)
        write_table(life, tables / "lifetime", index=False,
                    caption=f"Lifetime-optimal model for loss {target:g}: training + serving compute")
        columns = [c for c in life.columns if not c.startswith(("training_", "serving_", "D"))]
        parts += [f"<h3>The model size that is optimal over a model's life (loss {target:g})</h3>",
                  "<p>For every posterior draw, the N and D that reach the target loss at the least training "
                  "(6·N·D) plus serving (2·N per token) compute; tokens served = 0 is Chinchilla-optimal. As serving "
                  "grows the optimum moves to smaller models trained on more tokens (Sardana et al. 2024, with "
                  "point estimates).</p>", _table_html(compact(life[columns]))]
    return "".join(parts)


def _references_html(bib: Path) -> str:
    """The references of ``references.bib`` as a list: authors, year, title, venue."""
    import re

    items = []
    for entry in re.split(r"\n(?=@)", bib.read_text(encoding="utf-8").strip()):
        fields = {k.lower(): " ".join(v.replace("{", "").replace("}", "").split())
                  for k, v in re.findall(r"(\w+)\s*=\s*(\{(?:[^{}]|\{[^{}]*\})*\})", entry)}
        authors = fields.get("author", "").split(" and ")
        names = [a.split(",")[0].strip() for a in authors if a.strip()]
        who = names[0] + (" et al." if len(names) > 2 else f" and {names[1]}" if len(names) == 2 else "") \
            if names else ""
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("url") or ""
        items.append(f"<li>{html.escape(who)} ({html.escape(fields.get('year', 'n.d.'))}). "
                     f"<i>{html.escape(fields.get('title', ''))}</i>. {html.escape(venue)}</li>")
    return "<ol>" + "".join(items) + "</ol>"


def cite_keys_of(data: str) -> list[str]:
    """Citation keys of a registered dataset ([] for a user's file)."""
    from bayes_scaling.data.datasets import dataset_info

    try:
        return list(dataset_info(data).citation)
    except InputError:
        return []


def _forecast_label(fc) -> str:
    """Which law(s) a report's forecasts come from, in words."""
    return fc.law.name if fc.law.name.startswith("law average") else f"{fc.law.name} law"


def _weights_html(weights: pd.DataFrame | None, main_law: str) -> str:
    if weights is None:
        return f"<p>Forecasts are the {html.escape(main_law)} law's.</p>"
    shares = ", ".join(f"{html.escape(k.split(' / ')[0])} {w:.2f}" for k, w in weights["stacking_weight"].items())
    return (f"<p>Forecasts are a <b>law average</b>: each fitted law contributes posterior draws in proportion to "
            f"its leave-future-out stacking weight ({shares}), learned from how well it forecast the runs beyond "
            f"compute cuts of these data (the fits' own back-tests; table <code>law_weights</code>). "
            f"<i>decades_beyond_data</i> says how far each forecast extrapolates past the largest run.</p>")


def _check_html(b: _Build) -> str:
    """The extrapolation check beside the headline forecast: how the main law's forecasts held up
    on these runs' own back-tests."""
    if not len(b.check) or b.config.law not in b.check.index:
        return ("<p>No back-test of these runs was possible (too few runs to cut, or runs with groups): "
                "nothing here checks the intervals beyond the data on this dataset.</p>")
    r = b.check.loc[b.config.law]
    return (f"<p><b>Checked on these runs:</b> fitted below compute cuts and forecasting the {r['held_out']:.0f} "
            f"runs above ({r['cuts']:.0f} cuts, up to {r['max_decades']:.1f} decades out), the {b.config.law} "
            f"law's 90% intervals held {r['coverage_90']:.0%} of them and its 50% intervals {r['coverage_50']:.0%} "
            f"(median 90% width {r['width_90_pct']:.1f}% of loss, mean error {r['bias_pct']:+.2f}%). Every "
            f"law's check is in the table <code>backtest_check</code>.</p>")


def _structural_html(fit) -> str:
    """What the main fit's structural error is, in words."""
    if fit.structural is None:
        return "<p>The law is taken as exact beyond the data (no structural error).</p>"
    backtests = fit.structural.info.get("internal_backtests", 0)
    learned = f"its size learned from {backtests} back-tests of these runs" if backtests else "for a new dataset"
    return (f"<p><b>Structural error</b> of the {html.escape(fit.law.name)} law beyond its largest run "
            f"({fit.structural.c_ref:.3g} FLOP), from the population of published back-tests, {learned}: "
            f"{html.escape(fit.structural.describe())} (medians [5%, 95%]). ρ scales the spread of every forecast "
            f"about the law of a central posterior draw; see the README's <i>How honest are the intervals?</i></p>")


def _write_html(b: _Build, manifest: dict[str, Any]) -> None:
    """index.html: every section in order, figures embedded."""
    from bayes_scaling.io.outputs import write_text_atomic

    parts = [*_html_forecast(b), *_html_fit_and_comparison(b), *_html_energy(b), b.serving_html,
             *_html_references_and_reproduce(b, manifest)]
    write_text_atomic(b.root / "index.html", "\n".join(p for p in parts if p))


def _fig(b: _Build, name: str) -> str:
    return _figure_html(b.figures / f"{name}.png", b.captions[name]) if name in b.captions else ""


def _html_forecast(b: _Build) -> list[str]:
    from bayes_scaling.forecast.forecaster import compact

    config, runs, main, diag = b.config, b.runs, b.main, b.main.diagnostics
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>bayes_scaling report: {html.escape(runs.source)}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Bayesian scaling-law report: {html.escape(runs.source)}</h1>",
        f"<p>{len(runs)} training runs; law <b>{html.escape(main.law.formula)}</b> with a "
        f"{html.escape(main.likelihood.name)} likelihood on log loss; {diag.chains} chains × {diag.draws} draws "
        f"(NUTS). Intervals are {config.level:.0%} equal-tailed unless stated.</p>",
        "<h2>Headline forecast</h2>",
        _weights_html(b.weights, main.law.name),
        _table_html(compact(b.forecast)),
        _check_html(b),
        "<p><i>loss</i> is the expected loss at the compute-optimal allocation; <i>loss_pred</i> the loss of a "
        "single new run, including the fitted run-to-run scatter.</p>",
        _structural_html(main),
        _fig(b, "loss_forecast"), _fig(b, "allocation"),
    ]
    if b.sensitivity is not None:
        parts += ["<h3>How much the forecast depends on the choices</h3>", _table_html(compact(b.sensitivity)),
                  "<p>The expected loss under the other likelihoods and the literature-centred priors (the main law, "
                  "refitted), beside the headline forecast.</p>"]
    if b.targets is not None:
        parts += ["<h2>Compute to reach a target loss</h2>", _table_html(compact(b.targets)),
                  "<p>Intervals are over the posterior draws for which the target is reachable; "
                  "<i>p_reachable</i> is the probability that it is reachable at all.</p>"]
    return parts


def _html_fit_and_comparison(b: _Build) -> list[str]:
    diag = b.main.diagnostics
    status = '<span class="ok">all checks passed</span>' if diag.ok else \
        '<span class="bad">problems: ' + html.escape("; ".join(diag.problems)) + "</span>"
    parts = ["<h2>Fit</h2>", f"<p>Diagnostics: {html.escape(str(diag).splitlines()[0])} — {status}</p>",
             _table_html(b.summary, index=True, digits=4), _fig(b, "published"), _fig(b, "ppc"), _fig(b, "residuals"),
             _fig(b, "prior_predictive"), _fig(b, "pair"), _fig(b, "trace"), _fig(b, "isoflop")]
    if b.loo is not None:
        parts += ["<h2>Comparing laws</h2>", _table_html(b.loo, index=True), _fig(b, "loo"),
                  "<p>PSIS-LOO expected log predictive density on log loss (higher is better) and stacking weights. "
                  "LOO measures how well a law predicts a run <i>inside</i> the data (interpolation); the forecasts "
                  "use the leave-future-out weights below. "
                  "Runs with Pareto k &gt; 0.7 make LOO unreliable for that model.</p>"]
        if b.weights is not None:
            parts += ["<h3>Leave-future-out: how the laws forecast</h3>", _table_html(b.weights, index=True),
                      f"<p>{html.escape(b.weights.attrs.get('method', ''))}; expected log predictive density of "
                      f"the held-out runs (higher is better) and stacking weights.</p>"]
        if "warning" in b.loo.attrs:
            parts.append(f"<p class=bad>{html.escape(b.loo.attrs['warning'])}</p>")
    if b.bt is not None:
        parts += ["<h3>Back-tests</h3>", _table_html(b.bt.drop(columns=["cached"])), _fig(b, "backtest")]
    return parts


def _html_energy(b: _Build) -> list[str]:
    from bayes_scaling.forecast.forecaster import compact

    h = np.array(central(b.energy.trend.yearly_factor, 0.9))[[1, 0, 2]]  # median, lower, upper
    g = np.array(central(b.growth["energy_growth"], 0.9))[[1, 0, 2]]
    cov = b.calibration.attrs["coverage"]
    parts = [
        "<h2>Energy</h2>",
        (f"<p>Hardware efficiency improves ×{h[0]:.2f} per year [{h[1]:.2f}, {h[2]:.2f}] (90%). With training "
         f"compute growing 4–5× per year, frontier training energy grows ×{g[0]:.2f} per year "
         f"[{g[1]:.2f}, {g[2]:.2f}].</p>"),
        "<p>Training energy (MWh) of each compute budget (FLOP, rows) on the expected new chip of each year "
        "(columns):</p>",
        _table_html(compact(b.energy_grid)),
    ]
    if b.energy_targets is not None:
        parts += ["<h3>Energy to reach the target losses</h3>", _table_html(compact(b.energy_targets))]
    return [*parts, _fig(b, "energy_vs_compute"), _fig(b, "efficiency_trend"),
            (f"<h3>Calibration</h3><p>Leaving each published run out in turn: {cov['0.9']:.0%} of reported energies "
             f"inside their 90% interval, {cov['0.5']:.0%} inside 50%; median absolute log error "
             f"{b.calibration.attrs['median_abs_log_error']:.2f}.</p>"), _fig(b, "energy_calibration")]


def _html_references_and_reproduce(b: _Build, manifest: dict[str, Any]) -> list[str]:
    return ["<h2>References</h2>", _references_html(b.root / "references.bib"),
            "<h2>Reproduce</h2>",
            (f"<p>With bayes_scaling {html.escape(manifest['bayes_scaling'])} installed from its repository "
             f"(<code>pip install .</code> in a clone; versions of every dependency are in "
             f"<code>manifest.json</code>):</p><pre>{html.escape(manifest['command'])}</pre>"),
            (f"<p>Configuration hash <code>{manifest['config_hash'][:16]}</code>, data fingerprint "
             f"<code>{manifest['data']['fingerprint'][:16]}</code>; versions, seeds and wall times are in "
             "<code>manifest.json</code>. Tables are in <code>tables/</code> (CSV, Markdown, LaTeX), figures in "
             "<code>figures/</code> (PNG, PDF, SVG), references in <code>references.bib</code>, the fit in "
             "<code>fit.nc</code>.</p>"),
            "<pre>" + html.escape(json.dumps(b.config.to_dict(), indent=2)) + "</pre>",
            "</body></html>"]

