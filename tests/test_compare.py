"""Comparison: scores against closed forms, the classical baseline, LOO and back-tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from simulate import simulate

from bayes_scaling import InputError
from bayes_scaling.compare.backtest import backtest
from bayes_scaling.compare.classical import huber_fit
from bayes_scaling.compare.loo import loo_table
from bayes_scaling.fitting import cached_fit
from bayes_scaling.scoring import coverage, crps, log_predictive_density, score

QUICK = {"draws": 300, "tune": 500, "chains": 2, "seed": 1}


def test_crps_matches_the_normal_closed_form():
    rng = np.random.default_rng(0)
    y = np.array([-1.0, 0.0, 0.5, 2.0])
    draws = rng.normal(0.0, 1.0, size=(200_000, 1)) * np.ones((1, 4))
    z = y
    exact = z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi)
    np.testing.assert_allclose(crps(draws, y), exact, atol=5e-3)


def test_coverage_and_lpd_of_a_correct_predictive():
    rng = np.random.default_rng(1)
    y = rng.normal(size=20_000)
    draws = rng.normal(size=(2000, 20_000))
    assert coverage(draws, y, 0.8) == pytest.approx(0.8, abs=0.01)
    loglik = stats.norm.logpdf(y[None, :], loc=0, scale=1) * np.ones((3, 1))
    np.testing.assert_allclose(log_predictive_density(loglik), stats.norm.logpdf(y))
    s = score(draws[:, :500], y[:500], loglik[:, :500])
    assert set(s) == {"coverage_50", "coverage_80", "coverage_90", "coverage_95", "crps", "lpd", "mae_pct",
                      "width_90_pct", "bias_pct"}


def test_classical_huber_fit_recovers_the_truth():
    runs, truth = simulate("chinchilla", seed=31, sigma=0.005)
    result = huber_fit(runs, law="chinchilla", bootstrap=20, seed=0)
    for name in ("E", "alpha", "beta"):
        assert result.params[name] == pytest.approx(truth[name], rel=0.05), name
    assert result.bootstrap["alpha"].std() > 0
    draws = result.predictive_log_draws(runs)
    assert draws.shape == (20, len(runs))


@pytest.mark.slow
def test_loo_and_backtests_prefer_the_true_law(tmp_path):
    runs, _ = simulate("chinchilla", seed=41, sigma=0.01)
    fits = {law: cached_fit(runs, law=law, likelihood="normal", cache_dir=tmp_path, settings=QUICK)[0]
            for law in ("chinchilla", "compute")}
    table = loo_table(fits)
    assert table.index[0] == "chinchilla"
    assert table.loc["chinchilla", "stacking_weight"] > 0.9
    bt = backtest(runs, laws=["chinchilla", "compute"], likelihoods=["normal"], cuts=[float(np.quantile(runs.C, 0.6))],
                  bootstrap=10, cache_dir=tmp_path, settings=QUICK)
    by = bt.set_index("model")
    assert by.loc["chinchilla / normal", "crps"] < by.loc["compute / normal", "crps"]
    assert by.loc["chinchilla / normal", "lpd"] > by.loc["compute / normal", "lpd"]
    assert {"chinchilla / Huber point fit + bootstrap", "compute / Huber point fit + bootstrap"} <= set(by.index)
    # Re-running reuses the cached fits.
    again = backtest(runs, laws=["chinchilla"], likelihoods=["normal"], cuts=[float(np.quantile(runs.C, 0.6))],
                     classical=False, cache_dir=tmp_path, settings=QUICK)
    assert again["cached"].all()
    assert again.loc[0, "crps"] == pytest.approx(by.loc["chinchilla / normal", "crps"])


@pytest.mark.slow
def test_backtest_coverage_of_a_correct_model_is_near_nominal(tmp_path):
    """Over simulated datasets, the correctly specified model's held-out 80% intervals cover ~80%."""
    hits = []
    for seed in range(4):
        runs, _ = simulate("chinchilla", seed=200 + seed, sigma=0.02)
        cut = float(np.quantile(runs.C, 0.7))
        bt = backtest(runs, laws=["chinchilla"], likelihoods=["normal"], cuts=[cut], classical=False,
                      settings=dict(QUICK, seed=seed))
        hits.append(bt.loc[0, "coverage_80"] * bt.loc[0, "n_test"])
        n_test = bt.loc[0, "n_test"]
    share = sum(hits) / (4 * n_test)
    assert 0.6 <= share <= 0.97, share


def test_loo_needs_two_fits_of_the_same_runs():
    with pytest.raises(InputError, match="at least two fits"):
        loo_table({})


def test_classical_noise_scale_is_the_huber_maximum_likelihood():
    """The baseline's predictive must not be wider than the residuals warrant."""
    from bayes_scaling.model.likelihoods import Huber
    from bayes_scaling.model.optimize import _huber_scale

    rng = np.random.default_rng(5)
    resid = Huber(1e-3).draw(rng, np.zeros(4000), np.full(4000, 0.006), {})
    assert _huber_scale(resid, 1e-3) == pytest.approx(0.006, rel=0.05)


def test_the_fit_cache_key_holds_priors_and_versions(tmp_path, monkeypatch):
    """A cached fit is not reused after a change of priors, of a package version or of the source."""
    from bayes_scaling.io import cache

    runs, _ = simulate("kaplan-n+e", seed=4)
    _, cached = cached_fit(runs, law="kaplan-n+e", likelihood="normal", cache_dir=tmp_path, settings=QUICK)
    assert not cached
    assert cached_fit(runs, law="kaplan-n+e", likelihood="normal", cache_dir=tmp_path, settings=QUICK)[1]
    other_prior = {**QUICK, "priors": {"alpha_N": "LogNormal(mu=-1.2, sigma=0.5)"}}
    assert not cached_fit(runs, law="kaplan-n+e", likelihood="normal", cache_dir=tmp_path, settings=other_prior)[1]
    monkeypatch.setattr(cache, "package_versions", lambda: {"bayes-scaling": "99.0"})
    assert not cached_fit(runs, law="kaplan-n+e", likelihood="normal", cache_dir=tmp_path, settings=QUICK)[1]
    monkeypatch.setattr(cache, "source_digest", lambda: "an edited source")
    assert not cached_fit(runs, law="kaplan-n+e", likelihood="normal", cache_dir=tmp_path, settings=QUICK)[1]


def test_kde_density_and_stacking_weights():
    from bayes_scaling.compare.lfo import kde_log_density, stacking_weights

    rng = np.random.default_rng(5)
    y = rng.normal(0.0, 1.0, 400)
    right = rng.normal(0.0, 1.0, (4000, 400))
    wrong = rng.normal(1.5, 0.5, (4000, 400))
    lp_right = kde_log_density(right, y)
    np.testing.assert_allclose(lp_right.mean(), stats.norm.logpdf(y).mean(), atol=0.03)
    weights = stacking_weights(np.column_stack([lp_right, kde_log_density(wrong, y)]))
    assert weights[0] > 0.9 and weights.sum() == pytest.approx(1.0)
    equal = stacking_weights(np.column_stack([lp_right, lp_right]))
    np.testing.assert_allclose(equal, [0.5, 0.5], atol=0.05)


@pytest.mark.slow
def test_leave_future_out_prefers_the_law_that_forecasts():
    from bayes_scaling.compare.lfo import lfo_table

    runs, _ = simulate("chinchilla", seed=8, sigma=0.01)
    table = lfo_table(runs, laws=["chinchilla", "kaplan-n+e"], likelihood="normal", settings=QUICK)
    assert table.index[0] == "chinchilla / normal"
    assert table.loc["chinchilla / normal", "stacking_weight"] > 0.8
    assert table.loc["kaplan-n+e / normal", "elpd_diff"] < 0 and table["cuts"].iloc[0] >= 2
