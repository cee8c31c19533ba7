"""Scoring held-out runs: coverage, CRPS against closed forms, and the paired CRPS comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_scaling.calibration.evaluate import coverage_table, crps_difference, score_runs
from bayes_scaling.errors import InputError


def test_scores_of_a_true_predictive_have_nominal_coverage_and_the_normal_crps():
    rng = np.random.default_rng(0)
    sd, runs = 0.02, 3000
    draws = rng.normal(0.0, sd, size=(2000, runs))
    observed = rng.normal(0.0, sd, size=runs)
    scored = score_runs(draws, observed, np.full(runs, 0.5)).assign(dataset="sim", mode="truth")
    table = coverage_table(scored).iloc[0]
    for level in (50, 80, 90, 95):
        assert table[f"coverage_{level}"] == pytest.approx(level / 100, abs=0.025)
    z = observed / sd  # the normal's CRPS in closed form (Gneiting & Raftery 2007)
    exact = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    # per run, the draws' Monte Carlo error (a few % of sd); over 3000 runs it averages out
    np.testing.assert_allclose(scored["crps"], exact, atol=0.1 * sd)
    assert scored["crps"].mean() == pytest.approx(exact.mean(), rel=0.01)
    narrow = coverage_table(score_runs(0.5 * draws, observed, np.full(runs, 0.5)).assign(dataset="s", mode="m"))
    assert narrow.iloc[0]["coverage_90"] == pytest.approx(2 * stats.norm.cdf(0.5 * stats.norm.ppf(0.95)) - 1, abs=0.025)
    width = 100 * (np.exp(stats.norm.ppf(0.95) * sd) - np.exp(-stats.norm.ppf(0.95) * sd))
    assert table["width_90_pct"] == pytest.approx(width, rel=0.02)


def _paired(diffs: dict[tuple[str, int], float], runs: int = 5) -> pd.DataFrame:
    """Scores of the same runs under two modes; ``diffs`` gives each (dataset, cut)'s CRPS difference."""
    rows = []
    for (dataset, cut), diff in diffs.items():
        for mode, crps in (("none", 0.01), ("scaled", 0.01 + diff)):
            rows.append(pd.DataFrame({"dataset": dataset, "cut": cut, "mode": mode, "crps": np.full(runs, crps)}))
    return pd.concat(rows, ignore_index=True)


def test_crps_difference_is_the_paired_mean_with_an_interval_over_backtests():
    scored = _paired({("a", 1): 0.002, ("a", 2): 0.002, ("b", 1): -0.004, ("b", 2): 0.0, ("b", 3): 0.001})
    table = crps_difference(scored)
    assert table.loc["a", "difference"] == pytest.approx(0.002)
    assert (table.loc["a", "lo"], table.loc["a", "hi"]) == pytest.approx((0.002, 0.002))
    assert table.loc["a", "relative"] == pytest.approx(0.2)
    assert table.loc["b", "difference"] == pytest.approx(-0.001)
    # the interval resamples whole back-tests: it spans their spread, not the runs' (which is 0 here)
    assert -0.004 <= table.loc["b", "lo"] < -0.001 < table.loc["b", "hi"] <= 0.001
    assert table.loc["pooled", "runs"] == 25 and table.loc["pooled", "backtests"] == 5
    assert table.loc["pooled", "difference"] == pytest.approx((0.004 - 0.003) / 5)


def test_crps_difference_refuses_unpaired_scores():
    scored = _paired({("a", 1): 0.001})
    with pytest.raises(InputError, match="same held-out runs"):
        crps_difference(scored.drop(index=0))
    with pytest.raises(InputError, match="'population'"):
        crps_difference(scored, mode="population")


def test_intervals_are_numpys_quantiles_with_or_without_missing_draws():
    """The vectorized path (no NaN) and the NaN-ignoring one give numpy's nanquantile bit for bit."""
    from bayes_scaling.intervals import central, equal_tailed

    draws = np.random.default_rng(1).normal(size=(500, 40))
    partly = draws.copy()
    partly[:10, 3] = np.nan  # a column with some draws missing: the rest still give its interval
    q = [(1 - 0.8) / 2, 0.5, 1 - (1 - 0.8) / 2]
    for data in (draws, partly):
        expected = np.nanquantile(data, q, axis=0)
        np.testing.assert_array_equal(np.asarray(central(data, 0.8)), expected)
        np.testing.assert_array_equal(np.asarray(equal_tailed(data, 0.8)), expected[[0, 2]])
    assert np.isfinite(equal_tailed(partly, 0.8)[0][3])


def test_coverage_by_distance_plots_draw_each_bins_share_of_runs_inside():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_scaling.calibration.evaluate import by_distance
    from bayes_scaling.plots.calibration import plot_coverage_by_distance, plot_coverage_by_distance_per_dataset

    rng = np.random.default_rng(3)
    rows = []
    for dataset, runs in (("a", 40), ("b", 25)):
        d = rng.uniform(0.05, 2.5, runs)
        for mode, p in (("none", 0.6), ("shared", 0.9)):
            rows.append(pd.DataFrame({"dataset": dataset, "mode": mode, "d": d, "crps": 0.01, "log_error": 0.0,
                                      "width_90_pct": 5.0, **{f"inside_{level}": rng.random(runs) < p
                                                              for level in (50, 80, 90, 95)}}))
    scored = pd.concat(rows, ignore_index=True)
    expected = by_distance(scored)["coverage_90"]  # the table's bins, computed independently of the plots
    fig = plot_coverage_by_distance(scored)
    lines = {line.get_label(): line.get_ydata() for line in fig.axes[0].lines}
    np.testing.assert_allclose(lines["law only"], expected.loc["none"].to_numpy())
    np.testing.assert_allclose(lines["default"], expected.loc["shared"].to_numpy())
    fig = plot_coverage_by_distance_per_dataset(scored)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["a", "b"]
    for ax, dataset in zip(panels, ("a", "b"), strict=True):
        per = by_distance(scored[scored["dataset"] == dataset])["coverage_90"]
        drawn = {line.get_label(): line.get_ydata() for line in ax.lines if not line.get_label().startswith("_")}
        assert len(per.loc["shared"]) == 4  # every bin holds runs
        np.testing.assert_allclose(drawn["default"], per.loc["shared"].to_numpy())
        np.testing.assert_allclose(drawn["law only"], per.loc["none"].to_numpy())
    assert "decades of compute" in fig.get_supxlabel()
    plt.close("all")


@pytest.mark.slow
def test_candidates_are_scored_leaving_each_dataset_and_its_copy_out():
    """score_candidates: the law alone scores the back-tests' own draws; a copy never enters a
    population and is left out with its original; every candidate scores the same held-out runs."""
    from simulate import simulate

    from bayes_scaling.calibration.candidates import Candidate, score_candidates
    from bayes_scaling.calibration.evaluate import nested_backtests

    sizes = np.geomspace(3e7, 3e9, 7)
    a = simulate("chinchilla", seed=41, sizes=sizes)[0]
    b = simulate("chinchilla", seed=42, sizes=sizes)[0]
    c = simulate("chinchilla", seed=43, sizes=sizes)[0]
    settings = {"draws": 150, "tune": 200, "chains": 2, "seed": 0}
    candidates = (Candidate("law", mode="none"), Candidate("shared", mode="shared", shared_direction=True))
    scored = score_candidates({"a": a, "a-copy": a, "b": b, "c": c}, candidates=candidates, settings=settings,
                              copies={"a-copy": "a"}, population_settings={"draws": 150, "tune": 300, "chains": 2})
    assert set(scored["dataset"]) == {"a", "a-copy", "b", "c"}
    errors = scored.attrs["errors"][("chinchilla", None, "student-t")]  # by (law, window, likelihood)
    assert set(errors["dataset"]) == {"a", "b", "c"}  # the copy never enters a population
    # one population per family left out: a's (b's and c's back-tests) serves its copy too
    assert {key[-1] for key in scored.attrs["populations"]} == {"a", "b", "c"}
    law = scored[scored["candidate"] == "law"]
    pairs = nested_backtests(b, settings=settings | {"window": None})
    expected = pd.concat([score_runs(h.log_draws, h.log_loss, h.distance) for h, _ in pairs], ignore_index=True)
    np.testing.assert_allclose(law[law["dataset"] == "b"]["crps"].to_numpy(), expected["crps"].to_numpy())
    per = scored.groupby(["dataset", "candidate"]).size().unstack()
    assert (per["law"] == per["shared"]).all()
