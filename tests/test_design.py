"""Experiment design: the pre-posterior against a conjugate model's exact answer, the greedy choice
under a budget, the saved design, the command line and its figure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import InputError, RunTableError
from bayes_scaling.design.candidates import (
    candidate_grid,
    check_candidates,
    isoflop_row,
    random_runs,
    read_candidates,
)
from bayes_scaling.design.choose import design_runs, expected_width, load_design
from bayes_scaling.design.preposterior import Preposterior, effective_sample_size
from bayes_scaling.fitting import fit
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.isoflop.simulate import simulate_ladder
from bayes_scaling.sampling.diagnostics import SamplingWarning

Z90 = 1.6448536269514722


def _linear_gaussian(x: np.ndarray, t: np.ndarray, *, noise: float, draws: int = 40000, outcomes: int = 64,
                     slopes=None, c_ref: float = 1.0, target_compute: float = 10.0, seed: int = 0):
    """θ ~ N(0, s²I); candidate j observes x_j·θ + N(0, noise²); the target is t·θ."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.05, (draws, x.shape[1]))
    mu = theta @ x.T
    source = rng.choice(draws, outcomes, replace=False)
    y = mu[source] + rng.normal(0.0, noise, (outcomes, x.shape[0]))

    def density(yy, m):
        return -0.5 * ((yy - m) / noise) ** 2

    return Preposterior(target=theta @ t, slopes=slopes, c_ref=c_ref, target_compute=target_compute,
                        law_log_loss=mu, outcomes=y, log_density=density, seed=seed)


def _exact_width(x: np.ndarray, t: np.ndarray, noise: float, extra_var: float = 0.0) -> float:
    """A normal posterior's 90% width relative to its median: exp(z·sd) − exp(−z·sd)."""
    precision = np.eye(x.shape[1]) / 0.05 ** 2 + x.T @ x / noise ** 2
    sd = math.sqrt(t @ np.linalg.solve(precision, t) + extra_var)
    return math.exp(Z90 * sd) - math.exp(-Z90 * sd)


def test_expected_width_matches_the_conjugate_posterior():
    x = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    t = np.array([1.0, 2.0])
    pre = _linear_gaussian(x, t, noise=0.03)
    assert pre.widths(pre.start(), 1.0).mean() == pytest.approx(_exact_width(x[:0], t, 0.03), rel=0.03)
    for rows in ([0], [1], [0, 2]):
        log_w = pre.start() + sum(pre.loglik(j) for j in rows)
        assert pre.widths(log_w, 1.0).mean() == pytest.approx(_exact_width(x[rows], t, 0.03), rel=0.06), rows


def test_a_run_nearer_the_target_shortens_the_drift():
    """With a drift per decade ~ N(0, 0.02²) and nothing learned about the law, the width is the
    drift's over the remaining decades: 3 from the fit's largest run, 2 from a run 10 times larger."""
    x = np.zeros((1, 1))
    slopes = np.random.default_rng(5).normal(0.0, 0.02, 40000)
    pre = _linear_gaussian(x, np.array([0.0]), noise=0.03, slopes=slopes, target_compute=1000.0)
    assert pre.distance(1.0) == 3.0 and pre.distance(10.0) == 2.0
    assert pre.widths(pre.start(), 1.0).mean() == pytest.approx(2 * math.sinh(Z90 * 0.06), rel=0.04)
    assert pre.widths(pre.loglik(0) + pre.start(), 10.0).mean() == pytest.approx(2 * math.sinh(Z90 * 0.04), rel=0.04)


def test_effective_sample_size_of_equal_and_degenerate_weights():
    assert effective_sample_size(np.zeros((2, 50))) == pytest.approx([50.0, 50.0])
    assert effective_sample_size(np.array([[0.0, -1e9, -1e9]]))[0] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def ladder_fit():
    runs = simulate_ladder(budgets=np.geomspace(1e17, 1e19, 5), sizes=7, noise=0.01, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        result = fit(runs, draws=300, tune=300, chains=2, seed=3)
    return result


def test_the_design_spends_within_the_budget_and_narrows_the_forecast(ladder_fit):
    design = design_runs(ladder_fit, target_compute=1e22, budget=1e20, seed=1)
    assert 0 < design.spent <= 1e20 * (1 + 1e-12)
    assert design.width_after < design.before["width"]
    widths = design.chosen["expected_width"].to_numpy()
    assert np.all(np.diff(widths) < 0) and np.all(design.chosen["spent"].diff().dropna() > 0)
    # a run at the budget shortens the extrapolation from 3 decades to 2: it beats an isoFLOP row of the
    # same compute, which shortens it by 0.15 decades
    assert design.chosen["decades_to_target"].iloc[-1] < 2.9
    assert design.width_after < design.info["isoflop_row"]["after"]
    assert set(design.candidates["chosen"]) >= {0, 1}
    chosen = design.candidates[design.candidates["chosen"] > 0]
    assert (chosen["C"] <= 1e20 * (1 + 1e-12)).all() and chosen["affordable"].all()


def test_batch_caps_the_number_of_runs_and_n_star_can_be_the_target(ladder_fit):
    design = design_runs(ladder_fit, target_compute=1e22, budget=1e20, batch=2, quantity="n_star", seed=1)
    assert 1 <= len(design.chosen) <= 2
    assert "expected_width_loss" in design.chosen.columns
    assert design.width_after < design.before["width"]


def test_given_candidates_and_a_plan_made_by_hand(ladder_fit):
    fc = Forecaster(ladder_fit, max_draws=1000)
    compute = np.array([1e19, 1e20, 1e20, 1e21])
    n_star = np.median(fc.allocation(compute)["N"], axis=0)
    candidates = pd.DataFrame({"N": n_star * 10.0 ** np.array([0.1, -0.2, 0.5, 0.0]), "C": compute})
    design = design_runs(fc, target_compute=1e22, budget=2e20, candidates=candidates, seed=2)
    table = design.candidates
    assert table["affordable"].tolist() == [True, True, True, False]
    assert table["in_band"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(table["offset"], [0.1, -0.2, 0.5, 0.0], atol=1e-9)
    assert np.isnan(table["width_alone"].iloc[2]) and np.isnan(table["width_alone"].iloc[3])
    assert 0 < design.chosen["C"].max() <= 2e20 and table["chosen"].iloc[2] == 0
    anywhere = design_runs(fc, target_compute=1e22, budget=2e20, candidates=candidates, band=None, seed=2)
    assert np.isfinite(anywhere.candidates["width_alone"].iloc[2])
    row = isoflop_row(fc, budget=1e20)
    assert len(row) == 7 and np.allclose(row["C"].sum(), 1e20)
    planned = expected_width(fc, row, target_compute=1e22)
    assert planned["after"] < planned["before"] and planned["cost"] == pytest.approx(1e20)
    grid = candidate_grid(fc, budget=1e20, target_compute=1e22)
    assert grid["C"].max() == pytest.approx(1e20) and len(grid) == 42
    taken = random_runs(grid, budget=1e20, seed=4)
    assert taken["C"].sum() <= 1e20 * (1 + 1e-12)


def test_a_design_is_saved_and_read_back(ladder_fit, tmp_path):
    design = design_runs(ladder_fit, target_compute=1e22, budget=1e20, batch=1, seed=1)
    back = load_design(design.save(tmp_path / "design.json"))
    assert back.summary() == design.summary()
    pd.testing.assert_frame_equal(back.chosen, design.chosen, check_dtype=False)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a design file"):
        load_design(tmp_path / "bad.json")


@pytest.mark.parametrize(("options", "message"), [
    ({"target_compute": 1e18, "budget": 1e20}, "inside the data"),
    ({"target_compute": 1e22, "budget": -1.0}, "budget must be a positive number"),
    ({"target_compute": 1e22, "budget": 1e20, "quantity": "tokens"}, "quantity must be one of"),
    ({"target_compute": 1e22, "budget": 1e20, "batch": 0}, "batch must be at least 1"),
])
def test_bad_settings_are_refused(ladder_fit, options, message):
    with pytest.raises(InputError, match=message):
        design_runs(ladder_fit, **options)


def test_candidate_files_name_line_and_column(tmp_path):
    path = tmp_path / "candidates.csv"
    path.write_text("N,D\n1e8,2e9\n-3,2e9\n1e9,many\n")
    with pytest.raises(RunTableError) as caught:
        read_candidates(path)
    text = str(caught.value)
    assert "line 3, column 'N'" in text and "line 4, column 'D'" in text and "'many'" in text
    path.write_text("params,tokens\n1,2\n")
    with pytest.raises(InputError, match="need columns N and D"):
        read_candidates(path)
    with pytest.raises(InputError, match="no such candidates file"):
        read_candidates(tmp_path / "missing.csv")
    assert check_candidates(pd.DataFrame({"D": [2e10], "C": [1.2e19]}))["N"].iloc[0] == pytest.approx(1e8)


def test_the_figure_has_its_labels(ladder_fit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.plots.design import plot_design

    design = design_runs(ladder_fit, target_compute=1e22, budget=1e20, batch=1, seed=1)
    fig, ax = plt.subplots()
    assert plot_design(design, ax=ax) is fig
    assert ax.get_xlabel() == "parameters N" and ax.get_ylabel() == "training tokens D"
    assert "expected" in ax.get_title() and ax.get_xscale() == "log"
    plt.close(fig)


def test_command_line_design(ladder_fit, tmp_path):
    ladder_fit.save(tmp_path / "fit.nc")
    out = tmp_path / "design"
    cmd = [sys.executable, "-m", "bayes_scaling.cli", "design", str(tmp_path), "--target-compute", "1e22",
           "--budget", "1e20", "--batch", "2", "--figures", "png", "--out", str(out), "--json"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["spent"] <= 1e20 and payload["expected_width_after"] < payload["before"]["width"]
    assert {"chosen", "candidates", "isoflop_row"} <= set(payload) | set(payload["info"])
    assert (out / "design.csv").is_file() and (out / "figures" / "design.png").is_file()
    assert load_design(out / "design.json").spent == pytest.approx(payload["spent"])
    bad = tmp_path / "bad.csv"
    bad.write_text("N,D\n1e8,0\n")
    done = subprocess.run(cmd[:9] + ["--candidates", str(bad)], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "line 2, column 'D'" in done.stderr and "Traceback" not in done.stderr
