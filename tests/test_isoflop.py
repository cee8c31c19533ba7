"""isoFLOP analyses: a budget's own optimum, the Bayesian Approach 2 model on ladders simulated from a
known law (the exponent, the optimum and the loss recovered), the cost of an allocation, back-tests,
the comparison with Approach 3, and the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import InputError
from bayes_scaling.cli import main
from bayes_scaling.data.budgets import budget_labels
from bayes_scaling.isoflop.checks import allocation_cost, isoflop_backtest
from bayes_scaling.isoflop.classical import budget_optimum, naive_isoflop
from bayes_scaling.isoflop.design import best_of_repeats, isoflop_budgets
from bayes_scaling.isoflop.envelope import (
    classical_envelope,
    envelope_profiles,
    final_checkpoints,
    fit_envelope,
)
from bayes_scaling.isoflop.model import fit_isoflop, load_isoflop, profile
from bayes_scaling.isoflop.simulate import (
    HOFFMANN,
    simulate_curves,
    simulate_grid,
    simulate_ladder,
)

LAW = HOFFMANN
A_TRUE = LAW.a
BUDGETS = np.geomspace(1e18, 1e21, 7)
SMALL = {"draws": 300, "tune": 400, "chains": 2}
n_star, law_loss = LAW.n_star, LAW.loss


def ladder(seed: int = 0):
    """An isoFLOP ladder as labs run one, whose grid's centre scales as C^0.6 (the true a is 0.45),
    so the grid drifts off the optimum as the budgets grow."""
    return simulate_ladder(LAW, BUDGETS, guess_exponent=0.6, seed=seed)


@pytest.fixture(scope="module")
def runs():
    return ladder()


@pytest.fixture(scope="module")
def iso(runs):
    return fit_isoflop(runs, **SMALL, seed=1)


def test_sizes_of_nearly_one_size_at_one_compute_are_no_budget():
    """Gemstones' shapes of nearly one size trained on one token count share a compute: four sizes
    within 0.04 decades are not a profile, while a ladder's sizes a factor two apart are."""
    near = [1.00e8, 1.03e8, 1.06e8, 1.10e8]
    ladder = [1e8, 2e8, 4e8, 8e8]
    c = [1e19] * 4 + [1e20] * 4 + [1e21] * 4 + [1e22] * 4
    labels, budgets, kind = isoflop_budgets(c, near + ladder * 3, gap=0.02)
    assert kind == "exact" and budgets.tolist() == [1e20, 1e21, 1e22] and (labels[:4] == -1).all()


def test_budget_labels_group_runs_of_one_compute():
    labels, budgets = budget_labels([1e20, 1.01e20, 3e20, 0.99e20, 1e21, 1.02e21, 1e21])
    assert labels.tolist() == [0, 0, -1, 0, 1, 1, 1]  # the lone 3e20 run is in no budget
    np.testing.assert_allclose(budgets, [1e20, 1e21])


def test_an_irregular_grid_is_read_as_compute_slices_and_a_sweep_as_its_best_run():
    grid = simulate_grid(noise=0.0)
    labels, budgets, kind = isoflop_budgets(grid["C"], grid["N"], gap=0.02)
    assert kind == "slices" and budgets.size >= 10
    for k in range(budgets.size):  # every slice spans under 0.25 decades and holds three sizes or more
        part = grid[labels == k]
        assert np.ptp(np.log10(part["C"])) < 0.25 and part["N"].nunique() >= 3
    ladder_labels, _, ladder_kind = isoflop_budgets(ladder()["C"], ladder()["N"], gap=0.02)
    assert ladder_kind == "exact" and (ladder_labels >= 0).all()
    sweep = pd.DataFrame({"N": [1e8] * 3 + [2e8], "D": [1e9] * 4, "loss": [3.3, 3.1, 3.2, 3.0]})
    best = best_of_repeats(sweep)
    assert best["loss"].tolist() == [3.1, 3.0] and best.attrs["repeats_dropped"] == 2


def test_isoflop_model_recovers_the_law_from_compute_slices():
    """A sizes × tokens grid has no two runs at one compute: the classical parabolas through each slice
    ignore the compute that varies along it and find a far from the truth; the model, which moves each
    run's profile to its own compute, recovers it (98% interval, one grid)."""
    runs = simulate_grid(seed=1)
    fit = fit_isoflop(runs, **SMALL, seed=2)
    assert fit.config["design"] == "slices"
    lo, hi = np.quantile(fit.exponents["a"], [0.01, 0.99])
    assert lo < A_TRUE < hi and hi - lo < 0.1
    assert abs(naive_isoflop(fit.runs, fit.budgets)["a"] - A_TRUE) > 0.2
    far = fit.table([1e21], level=0.98).iloc[0]
    assert far["N_lower"] < n_star(1e21) < far["N_upper"]
    assert far["loss_lower"] < LAW.loss_star(1e21) < far["loss_upper"]
    moved = fit.at_budget_compute()  # runs shown at their slice's compute lie on its profile
    k = fit.runs["budget"].to_numpy()
    x = np.log10(fit.runs["N"].to_numpy())
    on_curve = np.array([np.median(fit.curve(j, x[i:i + 1])) for i, j in enumerate(k)])
    assert np.abs(moved - on_curve).max() < np.abs(fit.runs["loss"].to_numpy() - on_curve).max() / 3


def test_the_envelope_is_each_sizes_lowest_checkpoint_never_beyond_a_curve():
    """Approach 1's points: at each budget, a size's lowest loss along the curves that span it, read
    between checkpoints (log loss linear in log C); a budget's minimum over sizes is the envelope, and
    with every checkpoint the envelope lies at or above the law (unannealed checkpoints are above it)."""
    curves = simulate_curves(noise=0.0)
    points = envelope_profiles(curves, by=["run"], min_progress=0.0)
    assert points.groupby("C")["N"].nunique().min() >= 3
    assert np.allclose(points["D"] * points["N"] * 6, points["C"])
    assert (points["loss"] >= law_loss(points["N"], points["D"]) - 1e-9).all()
    spans = curves.groupby("run")["C"].agg(["min", "max"])
    assert ((points["C"] >= spans.loc[points["curve"], "min"].to_numpy() * (1 - 1e-9))
            & (points["C"] <= spans.loc[points["curve"], "max"].to_numpy() * (1 + 1e-9))).all()
    late = envelope_profiles(curves, by=["run"])  # checkpoints before a quarter of their run are left out
    assert late["progress"].min() >= 0.25 and late.attrs["checkpoints"] < len(curves)
    classical = classical_envelope(curves, by=["run"], points_per_decade=4)
    best = points.groupby("C")["loss"].min()
    assert np.allclose(classical["points"].set_index("C")["loss"], best.loc[classical["points"]["C"]])
    last = final_checkpoints(curves, by=["run"])
    assert len(last) == curves["run"].nunique() and np.allclose(last["D"] / last["N"], np.tile([5, 10, 20, 40, 80], 8))


def test_curves_need_columns_that_tell_runs_apart():
    curves = simulate_curves(noise=0.0)
    with pytest.raises(InputError, match="identify one run"):
        envelope_profiles(curves)
    with pytest.raises(InputError, match="not in the runs"):
        envelope_profiles(curves, by=["step"])
    with pytest.raises(InputError, match="different sizes in one curve"):
        envelope_profiles(curves.assign(lr=1.0), by=["lr"])


def test_approach_1_recovers_the_law_where_the_classical_envelope_is_biased():
    """Learning curves of a known law: the envelope's staircase of sizes puts the classical a about 0.08
    low; the model through each budget's points covers the true a and a budget two decades beyond."""
    curves = simulate_curves(seed=2)
    fit = fit_envelope(curves, by=["run"], **SMALL, seed=1)
    assert fit.config["approach"] == 1 and fit.config["curves"] == 40
    lo, hi = np.quantile(fit.exponents["a"], [0.01, 0.99])
    assert lo < A_TRUE < hi
    assert A_TRUE - classical_envelope(curves, by=["run"])["a"] > 0.05
    far = fit.table([1e22], level=0.98).iloc[0]
    assert far["decades_beyond_data"] > 1.5
    assert far["N_lower"] < n_star(1e22) < far["N_upper"]
    assert far["loss_lower"] < LAW.loss_star(1e22) < far["loss_upper"]


def test_budget_optimum_recovers_a_parabolas_vertex():
    rng = np.random.default_rng(0)
    x = np.linspace(8.0, 9.4, 9)
    loss = 2.5 + 0.08 * (x - 8.6) ** 2 + rng.normal(0, 0.002, x.size)
    draws = budget_optimum(x, loss, 1e20, seed=0)
    lo, med, hi = np.quantile(np.log10(draws["N"]), [0.05, 0.5, 0.95])
    assert lo < 8.6 < hi and hi - lo < 0.2
    assert draws["bracketed"] == 1.0
    assert np.median(draws["loss"]) == pytest.approx(2.5, abs=0.003)
    with pytest.raises(InputError, match="at least 4 runs"):
        budget_optimum(x[:3], loss[:3], 1e20)


def test_profile_is_a_parabola_without_skew_and_convex_with_it():
    d = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(profile(d, 0.0), d ** 2, rtol=1e-12)
    skewed = profile(d, 1.5)
    assert skewed.min() == 0.0 and np.all(np.diff(skewed, 2) > 0)  # minimum at 0, convex
    assert skewed[-1] > skewed[0]  # rises faster on the side the skew points to


def test_isoflop_model_recovers_the_known_law(iso):
    """On a ladder whose grid drifts off the optimum: the exponent a inside its 90% interval, the
    optimum at a budget two decades beyond the data and its loss inside their 98% intervals (one
    ladder: a 90% interval misses one in ten; ``benchmarks/bench_isoflop.py`` measures that rate)."""
    lo, hi = np.quantile(iso.exponents["a"], [0.05, 0.95])
    assert lo < A_TRUE < hi and hi - lo < 0.1
    assert iso.budgets.size == 7 and iso.left_out == 0
    far = iso.table([1e23], level=0.98).iloc[0]
    assert far["N_lower"] < n_star(1e23) < far["N_upper"]
    d = 1e23 / (6 * n_star(1e23))
    assert far["loss_lower"] < law_loss(n_star(1e23), d) < far["loss_upper"]
    assert far["decades_beyond_data"] == pytest.approx(2.0)
    assert iso.diagnostics is not None


def test_isoflop_fit_saves_and_loads_the_same_draws(iso, tmp_path):
    path = iso.save(tmp_path / "iso.nc")
    again = load_isoflop(path)
    np.testing.assert_array_equal(again.exponents["a"], iso.exponents["a"])
    np.testing.assert_array_equal(again.budgets, iso.budgets)
    pd.testing.assert_frame_equal(again.table([1e22]), iso.table([1e22]))
    assert again.shape == iso.shape and len(again.runs) == len(iso.runs)
    with pytest.raises(InputError, match="exists"):
        iso.save(path)
    (tmp_path / "other.nc").write_text("not netCDF")
    with pytest.raises(InputError, match="not a readable netCDF"):
        load_isoflop(tmp_path / "other.nc")


def test_allocation_cost_is_nothing_at_the_optimum_and_grows_away_from_it(iso):
    c = BUDGETS[3]
    at = allocation_cost(iso, n_star(c), c)
    off = allocation_cost(iso, 4 * n_star(c), c)
    farther = allocation_cost(iso, 10 * n_star(c), c)
    assert at["loss_given_up"] < 0.002 and at["deadweight_fraction"] < 0.02
    assert 0 < off["loss_given_up"] < farther["loss_given_up"]
    assert 0 < off["deadweight_fraction"] < farther["deadweight_fraction"] < 1
    # The law itself: the loss given up at 4 N* is L(4N*, D) - L(N*, D*), inside the interval.
    true = law_loss(4 * n_star(c), c / (24 * n_star(c))) - law_loss(n_star(c), c / (6 * n_star(c)))
    assert off["loss_given_up_lower"] < true < off["loss_given_up_upper"]
    with pytest.raises(InputError, match="positive"):
        allocation_cost(iso, -1.0, c)


def test_backtest_scores_held_out_budgets_against_their_own_optima(runs):
    table = isoflop_backtest(runs, cut=3e20, **SMALL, seed=1)
    assert list(table["C"]) == pytest.approx(list(BUDGETS[BUDGETS >= 3e20]))
    assert table.attrs["fitted_budgets"] == 5
    for r in table.itertuples():
        assert r.forecast_N_lower < n_star(r.C) < r.forecast_N_upper
        assert r.observed_N_lower < n_star(r.C) < r.observed_N_upper
    assert table["scored"].all()  # a centred grid brackets every optimum
    assert table["inside_N"].all() and table["inside_loss"].all()
    naive = naive_isoflop(runs.assign(budget=budget_labels(runs["C"])[0]), BUDGETS)
    assert abs(naive["a"] - A_TRUE) < 0.05
    with pytest.raises(InputError, match="nothing to score"):
        isoflop_backtest(runs, cut=1e22, **SMALL)


def test_fit_refuses_too_few_budgets(runs):
    with pytest.raises(InputError, match="at least 3 budgets"):
        fit_isoflop(runs[runs["C"] < 5e18], **SMALL)
    with pytest.raises(InputError, match="unknown isoFLOP shape"):
        fit_isoflop(runs, shape="cubic")


@pytest.mark.slow
def test_isoflop_command(tmp_path, runs, capsys):
    """`isoflop FILE --cut --compare --chosen-params --json --out`: every table, the figures, and the two
    approaches agree on runs of the Chinchilla law itself."""
    path = tmp_path / "ladder.csv"
    runs.to_csv(path, index=False)
    out = tmp_path / "iso"
    args = ["-q", "isoflop", str(path), "--cut", "3e20", "--compare", "--chosen-params", "3e9",
            "--chosen-compute", "1e21", "--draws", "300", "--tune", "400", "--chains", "2", "--seed", "1",
            "--out", str(out), "--json"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["budgets_fitted"]) == 5
    assert payload["exponent_a"][1] < A_TRUE < payload["exponent_a"][2]
    assert payload["backtest_coverage"]["N"] == 1.0
    assert set(payload["backtest_coverage_parametric"]) == {"N", "loss"}  # Approach 3 scored beside
    for row in payload["comparison"]:
        assert row["ratio_lower"] < 1 < row["ratio_upper"]  # the law's own runs: Approaches 2 and 3 agree
    assert 0 < payload["allocation_cost"]["deadweight_fraction"] < 1
    for name in ("isoflop.nc", "isoflop_optimum.csv", "isoflop_backtest.tex", "isoflop_comparison.csv",
                 "figures/isoflop_profiles.png", "figures/isoflop_optimum.png"):
        assert (out / name).is_file(), name
    assert main(["isoflop", str(path), "--chosen-params", "1e9"]) == 2
    assert "--chosen-params needs --chosen-compute" in capsys.readouterr().err
    assert main(["isoflop", str(path), "--cut", "2e18", "--draws", "10", "--tune", "10"]) == 2
    assert "at least 3 budgets" in capsys.readouterr().err
    assert main(["isoflop", str(path), "--curve-by", "budget"]) == 2
    assert "curve columns budget are not in the runs" in capsys.readouterr().err


@pytest.mark.slow
def test_isoflop_command_reads_learning_curves_as_approach_1(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    simulate_curves(seed=3).to_csv(path, index=False)
    args = ["-q", "isoflop", str(path), "--curve-by", "run", "--cut", "5e18", "--compare", "--draws", "300",
            "--tune", "400", "--chains", "2", "--seed", "1", "--json"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["approach"] == 1 and payload["curves"]["curves"] == 40
    assert payload["exponent_a"][1] < A_TRUE < payload["exponent_a"][2]
    assert payload["backtest_scored"] >= 2 and payload["backtest_coverage"]["N"] >= 0.5
    assert "backtest_coverage_parametric" in payload


def test_the_report_adds_an_isoflop_section_for_an_isoflop_design(runs, tmp_path):
    """A ladder (7 budgets of 7 runs) gets the report's isoFLOP section: Approach 2 beside the
    parametric fit, tables and page context; 12 runs at 12 budgets (no design) get none."""
    from bayes_scaling import read_runs
    from bayes_scaling.fitting import fit
    from bayes_scaling.report.config import ReportConfig
    from bayes_scaling.report.html import _isoflop as isoflop_context
    from bayes_scaling.report.state import _Build
    from bayes_scaling.report.steps import _isoflop

    table = read_runs(runs[["N", "D", "loss"]], name="simulated ladder")
    config = ReportConfig(data="ladder.csv", budgets=[1e22, 1e23], draws=300, tune=400, chains=2, seed=1)
    (tmp_path / "a").mkdir()
    b = _Build(config, table, tmp_path / "a", tmp_path / "a", None)
    b.main = fit(table, draws=300, tune=400, chains=2, seed=1, backtests=False)
    _isoflop(b)
    assert (tmp_path / "a" / "tables" / "isoflop_comparison.csv").is_file()
    comparison = pd.read_csv(tmp_path / "a" / "tables" / "isoflop_comparison.csv")
    assert list(comparison["C"]) == [1e22, 1e23] and comparison["p_differ"].between(0, 1).all()
    optimum = pd.read_csv(tmp_path / "a" / "tables" / "isoflop_optimum.csv")
    assert (optimum["N_lower"] < optimum["N"]).all() and (optimum["N"] < optimum["N_upper"]).all()
    page = isoflop_context(b)
    assert page["budgets"] == 7 and page["runs"] == 49
    med = float(page["a_isoflop"].split()[0])
    assert abs(med - A_TRUE) < 0.05  # the ladder's true exponent
    assert page["p_differ"] is not None and page["comparison"]["rows"]
    assert page["design"] == "exact" and page["diagnostics"]["line"].startswith("R-hat max")  # shown on the page
    assert page["diagnostics"]["ok"] == b.isoflop.diagnostics.ok

    small = read_runs(runs.iloc[::4][["N", "D", "loss"]].head(12), name="no design")
    (tmp_path / "b").mkdir()
    b2 = _Build(config, small, tmp_path / "b", tmp_path / "b", None)
    b2.main = b.main
    _isoflop(b2)
    assert b2.isoflop is None and isoflop_context(b2) is None


def test_a_law_fitted_to_learning_curves_warns_that_checkpoints_are_not_runs(caplog):
    import dataclasses
    import logging

    import bayes_scaling as bs

    curves = simulate_curves(seed=4)
    table = dataclasses.replace(bs.read_runs(curves[["N", "D", "loss", "run"]]), provenance={"curves": ["run"]})
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.fitting"):
        bs.fit(table, window=None, discrepancy="none", draws=50, tune=50, chains=1, seed=1)
    assert "holds learning curves: 400 checkpoints" in caplog.text
    assert len(final_checkpoints(table)) == 40  # what the warning offers instead
