"""The report: configuration checking, and one end-to-end run with small settings."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bayes_scaling import InputError
from bayes_scaling.cli import main
from bayes_scaling.report.config import ReportConfig, load_config

SMALL = Path(__file__).parent / "data" / "runs_small.csv"


def write(tmp_path, text):
    path = tmp_path / "report.toml"
    path.write_text(text)
    return path


def test_config_defaults_and_overrides(tmp_path):
    assert load_config(None) == ReportConfig()
    cfg = load_config(write(tmp_path, 'law = "kaplan-nd"\nbudgets = [1e24, 1e25]\nlevel = 0.8\nbacktest = true\n'))
    assert cfg.law == "kaplan-nd" and cfg.budgets == [1e24, 1e25] and cfg.level == 0.8 and cfg.backtest


@pytest.mark.parametrize("text,message", [
    ('lawz = "chinchilla"\n', r"unknown key\(s\) lawz"),
    ('draws = "many"\n', r"key 'draws' should be a int"),
    ('budgets = 1e24\n', r"key 'budgets' should be a list"),
    ('backtest = 1\n', r"key 'backtest' should be a bool"),
    ('law = \n', r"not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """One report of the 12 small runs (small settings), shared by the tests of its outputs."""
    import contextlib
    import io

    import numpy as np

    tmp_path = tmp_path_factory.mktemp("report")
    runs = pd.read_csv(SMALL)  # with two task columns: the report gains its task-accuracy section
    rng = np.random.default_rng(0)
    loss = runs["final loss"].to_numpy()
    runs["quiz"] = (0.25 + 0.6 / (1 + np.exp(-3 * (3.0 - loss))) + rng.normal(0, 0.01, len(runs))).round(4)
    runs["yesno"] = (0.5 + 0.4 / (1 + np.exp(-2 * (2.6 - loss))) + rng.normal(0, 0.01, len(runs))).round(4)
    data = tmp_path / "runs_with_tasks.csv"
    runs.to_csv(data, index=False)
    config = write(tmp_path, f'''
data = "{data.as_posix()}"
tasks = ["quiz", "yesno"]
chance = {{ quiz = 0.25, yesno = 0.5 }}
columns = {{ N = "params_M", D = "tokens_B" }}
scale = {{ N = "M", D = "B" }}
likelihood = "normal"
compare_laws = ["chinchilla", "compute"]
budgets = [1e21, 1e23]
years = [2025, 2030]
target_losses = [2.2]
figure_formats = ["png", "pdf", "svg"]
draws = 200
tune = 300
chains = 2
''')
    out = tmp_path / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["-q", "report", "--config", str(config), "--out", str(out)])
    assert code == 0
    return {"config": config, "out": out, "printed": printed.getvalue(), "tmp": tmp_path}


@pytest.mark.slow
def test_report_end_to_end(small_report, capsys):
    config, out, printed, tmp_path = (small_report[k] for k in ("config", "out", "printed", "tmp"))
    assert "Headline forecast" in printed and "Training energy" in printed
    for name in ("index.html", "manifest.json", "references.bib", "fit.nc", "tables/forecast.tex",
                 "tables/loo.md", "tables/energy_budgets.csv", "figures/loss_forecast.pdf", "figures/ppc.svg",
                 "figures/energy_calibration.png", "tables/sensitivity.csv", "figures/residuals.png",
                 "figures/published.png", "figures/downstream.png", "tables/downstream_forecast.csv"):
        assert (out / name).is_file(), name
    assert "nothing here checks the intervals" in (out / "index.html").read_text()  # 12 runs: too few to cut
    sensitivity = pd.read_csv(out / "tables" / "sensitivity.csv")
    variants = " | ".join(sensitivity["variant"])
    assert "student-t likelihood" in variants and "huber likelihood" in variants and "literature priors" in variants
    assert (sensitivity["loss_1e+23_lower"] < sensitivity["loss_1e+23"]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["draws"] == 200 and len(manifest["config_hash"]) == 64
    assert manifest["data"]["rows"] == 12
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 8 and "Headline forecast" in page
    assert "Why the intervals widen beyond the data" in page and "as for a new dataset" in page
    assert "own spread × ρ = " in page
    assert "<h2>Task accuracy</h2>" in page and "Forecast: quiz, yesno." in page
    assert "IsoFLOP analysis" not in page and not (out / "tables" / "isoflop_optimum.csv").exists()  # no design
    accuracy = pd.read_csv(out / "tables" / "downstream_forecast.csv")
    assert set(accuracy["task"]) == {"quiz", "yesno"} and len(accuracy) == 4  # two tasks at two budgets
    assert ((accuracy["lower"] < accuracy["median"]) & (accuracy["median"] < accuracy["upper"])).all()
    assert (accuracy["lower"] >= accuracy["chance"]).all() and (accuracy["upper"] <= 1).all()
    assert "@inproceedings{hoffmann2022training," in (out / "references.bib").read_text()
    assert main(["report", "--config", str(config), "--out", str(out)]) == 2  # never overwrites silently
    assert "pass --force" in capsys.readouterr().err
    if shutil.which("pdflatex"):  # every table of the report compiles into a paper and fits its text width
        tables = sorted((out / "tables").glob("*.tex"))
        assert len(tables) >= 8
        _compiles_without_overflow(tmp_path / "latex", tables)


@pytest.mark.slow
def test_the_page_opens_with_its_headline_and_formats_numbers_as_the_paper_tables(small_report):
    import re

    page = (small_report["out"] / "index.html").read_text()
    headline = re.search(r'<p class="headline">(.*?)</p>', page, re.S).group(1)
    assert "forecasts a loss of" in headline and "credible interval" in headline
    tables = re.findall(r"<table>.*?</table>", page, re.S)
    assert len(tables) >= 6
    text = " ".join(tables)
    assert "×10" in text and not re.search(r"\d\.\d+e[+-]\d", text)  # powers of ten, no e-notation
    headers = re.findall(r"<th[^>]*>(.*?)</th>", text)
    assert "Compute C (FLOP)" in headers and "Loss (nats/token)" in headers
    assert not [h for h in headers if "_" in h], headers  # words, not snake_case


# ---------------------------------------------------------------- the page in a real browser

_PROBE = """<script>
window.addEventListener("load", () => {
  const W = document.documentElement.clientWidth;
  const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o === "auto" || o === "scroll") return true; } return false; };
  const res = {viewport: W, page: document.documentElement.scrollWidth, hidden: [], wider: []};
  document.querySelectorAll(".table-wrap").forEach((w, i) => {
    const t = w.querySelector("table"), cap = w.parentElement.querySelector("figcaption");
    if (t.scrollWidth > w.clientWidth + 1) res.hidden.push(i + ": " + (cap ? cap.textContent : "(no caption)"));
  });
  document.querySelectorAll("body *").forEach(e => { const r = e.getBoundingClientRect();
    if (r.right > W + 1 && !scrolls(e)) res.wider.push(e.tagName + " ends at " + Math.round(r.right)); });
  const out = document.createElement("pre"); out.id = "layout-probe"; out.textContent = JSON.stringify(res);
  document.body.appendChild(out);
});
</script>"""

_CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium); .ci/run installs it")
    return path


def _layout(browser: str, page: Path, width: int, tmp_path: Path) -> dict:
    """What the page looks like at ``width`` px in headless Chromium: tables whose columns are hidden
    behind a scroll bar, and elements wider than the window (outside a scrolling box)."""
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run([browser, *_CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / f'profile-{width}'}",
                           f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120)
    import html
    import re

    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium rendered nothing measurable (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_the_report_page_reads_at_800_and_1280_px_in_chromium(small_report, tmp_path):
    browser = _chromium()
    page = small_report["out"] / "index.html"
    wide = _layout(browser, page, 1280, tmp_path)
    assert wide["viewport"] > 1200
    assert not wide["hidden"], f"at 1280 px these tables hide columns behind a scroll bar: {wide['hidden']}"
    assert not wide["wider"] and wide["page"] <= wide["viewport"], wide
    narrow = _layout(browser, page, 800, tmp_path)
    assert narrow["viewport"] <= 800
    assert not narrow["wider"] and narrow["page"] <= narrow["viewport"], f"wider than the window at 800 px: {narrow}"
    headline = [h for h in narrow["hidden"] if "compute-optimal allocation" in h]
    assert not headline, f"at 800 px the headline table hides columns behind a scroll bar: {headline}"
    subprocess.run([browser, *_CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}", "--window-size=1280,1400",
                    "--hide-scrollbars", f"--screenshot={tmp_path / 'page.png'}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert (tmp_path / "page.png").stat().st_size > 10_000  # a page was drawn, not a blank


def test_the_layout_probe_sees_a_table_that_hides_columns(tmp_path):
    """The browser check can fail: a table far wider than the window is caught at 1280 px."""
    browser = _chromium()
    cells = "".join(f"<td>{'x' * 40}</td>" for _ in range(12))
    page = tmp_path / "wide.html"
    page.write_text(f'<html><body><div class="table-wrap" style="overflow-x:auto"><table><tr>{cells}</tr></table>'
                    f'</div><p style="width:3000px">too wide</p></body></html>')
    result = _layout(browser, page, 1280, tmp_path)
    assert result["hidden"] and result["wider"]


def _compiles_without_overflow(folder: Path, tables: list[Path]) -> None:
    folder.mkdir()
    body = "\n\\clearpage\n".join(f"\\input{{{t.as_posix()}}}" for t in tables)
    (folder / "paper.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage{adjustbox}\n"
                                      "\\begin{document}\n" + body + "\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Overfull \\hbox" not in done.stdout, done.stdout[-3000:]


def test_the_page_says_which_runs_a_frontier_fit_used():
    """A fit near the frontier that left runs out is named on the page; one that fitted every run is not."""
    from types import SimpleNamespace

    from bayes_scaling.report.html import _window

    def fake(window, rows, given):
        return SimpleNamespace(config={"window": window, "data": {"rows": rows}, "runs_given": given})

    assert _window(fake("frontier", 57, 245)) == {"fitted": 57, "given": 245}
    assert _window(fake("frontier", 34, 34)) == {"fitted": None, "given": None}  # too few near it: every run
    assert _window(fake(None, 245, 245)) == {"fitted": None, "given": None}
    assert _window(SimpleNamespace(config={"window": None, "data": {"rows": 245}})) == {"fitted": None, "given": None}
