"""Paper tables: LaTeX a journal accepts (and that compiles, where a TeX installation exists)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.io.tables import latex_number, to_latex, to_markdown


@pytest.mark.parametrize("value,text", [
    (1e24, "$10^{24}$"), (3.1e10, r"$3.10\times10^{10}$"), (1.9, "1.90"), (1.87, "1.87"), (0.0123, "0.0123"),
    (0.00123, r"$1.23\times10^{-3}$"), (2025.0, "2025"), (np.int64(245), "245"), (float("nan"), "--"),
    (True, "yes"), ("A & B_1", r"A \& B\_1"),
])
def test_numbers_have_consistent_significant_figures_and_powers_of_ten(value, text):
    assert latex_number(value) == text


def forecast_like() -> pd.DataFrame:
    frame = pd.DataFrame({"C": [1e22, 1e24], "N": [2.0e9, 3.1e10], "N_lower": [1.5e9, 2.2e10],
                          "N_upper": [2.6e9, 4.4e10], "loss": [2.1, 1.87], "loss_lower": [2.05, 1.8],
                          "loss_upper": [2.2, 1.95], "decades_beyond_data": [0.0, 1.9]})
    frame.attrs["level"] = 0.9
    return frame


def test_latex_tables_merge_intervals_name_units_and_fit_the_page():
    text = to_latex(forecast_like(), index=False, caption="Loss forecasts", label="tab:forecast")
    assert r"\caption{Loss forecasts. Medians with 90\% credible intervals in brackets.}" in text
    assert r"\label{tab:forecast}" in text
    assert r"$C$ (FLOP) & $N$ (parameters) & Loss (nats/token) & Decades beyond data \\" in text
    assert r"$10^{24}$ & $3.10\times10^{10}$ [$2.20\times10^{10}$, $4.40\times10^{10}$] & 1.87 [1.80, 1.95]" in text
    assert "_lower" not in text and "e+" not in text
    assert r"\begin{adjustbox}{max width=\linewidth}" in text and r"\toprule" in text
    assert to_markdown(forecast_like(), index=False).count("|") > 0  # the Markdown keeps every column


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no pdflatex on this machine (install TeX Live: texlive-latex-extra)")
def test_latex_tables_compile_and_fit_the_text_width(tmp_path):
    wide = forecast_like().assign(**{f"extra_{i}": [1.23e5, 4.56e7] for i in range(8)})
    body = to_latex(wide, index=False, caption="A wide table", label="tab:wide")
    (tmp_path / "t.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage{adjustbox}\\begin{document}\n"
        + body + "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overfull \\hbox" not in done.stdout


def test_isoflop_budgets_are_the_ones_the_runs_share():
    from types import SimpleNamespace

    from bayes_scaling.data.budgets import data_budgets

    rng = np.random.default_rng(0)
    design = np.repeat([6e18, 1e19, 3e19, 1e20], [5, 6, 4, 2]) * np.exp(rng.normal(0, 0.01, 17))
    budgets = data_budgets(SimpleNamespace(C=design))
    assert len(budgets) == 3  # the 2-run budget is not an isoFLOP profile
    np.testing.assert_allclose(budgets, [6e18, 1e19, 3e19], rtol=0.03)
    spread = data_budgets(SimpleNamespace(C=np.geomspace(1e18, 1e21, 12)))  # no shared budgets
    assert len(spread) == 5 and spread[0] == pytest.approx(1e18) and spread[-1] == pytest.approx(1e21)
