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


@pytest.mark.slow
def test_report_end_to_end(tmp_path, capsys):
    config = write(tmp_path, f'''
data = "{SMALL.as_posix()}"
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
    assert main(["-q", "report", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Headline forecast" in printed and "Training energy" in printed
    for name in ("index.html", "manifest.json", "references.bib", "fit.nc", "tables/forecast.tex",
                 "tables/loo.md", "tables/energy_budgets.csv", "figures/loss_forecast.pdf", "figures/ppc.svg",
                 "figures/energy_calibration.png", "tables/sensitivity.csv", "figures/residuals.png",
                 "figures/published.png"):
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
    assert "Structural error</b> of the chinchilla law" in page and "for a new dataset: drift" in page
    assert "own spread × ρ = " in page
    assert "@inproceedings{hoffmann2022training," in (out / "references.bib").read_text()
    assert main(["report", "--config", str(config), "--out", str(out)]) == 2  # never overwrites silently
    assert "pass --force" in capsys.readouterr().err
    if shutil.which("pdflatex"):  # every table of the report compiles into a paper and fits its text width
        tables = sorted((out / "tables").glob("*.tex"))
        assert len(tables) >= 8
        _compiles_without_overflow(tmp_path / "latex", tables)


def _compiles_without_overflow(folder: Path, tables: list[Path]) -> None:
    folder.mkdir()
    body = "\n\\clearpage\n".join(f"\\input{{{t.as_posix()}}}" for t in tables)
    (folder / "paper.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage{adjustbox}\n"
                                      "\\begin{document}\n" + body + "\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Overfull \\hbox" not in done.stdout, done.stdout[-3000:]
