"""Forecasts: allocation (closed form vs numerical), target-loss inversion, intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from simulate import simulate

from bayes_scaling import InputError
from bayes_scaling.fitting import fit
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.intervals import equal_tailed, hdi, summarize
from bayes_scaling.sampling.diagnostics import SamplingWarning


@pytest.fixture(scope="module")
def fitted():
    runs, truth = simulate("chinchilla", seed=21, sigma=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        result = fit(runs, law="chinchilla", likelihood="normal", draws=300, tune=500, chains=2, seed=2)
    return result, truth


def test_closed_form_allocation_matches_numerical_minimisation_for_every_draw(fitted):
    fc = Forecaster(fitted[0])
    budgets = [1e21, 1e24, 1e27]
    closed = fc.allocation(budgets)
    numeric = fc.allocation(budgets, method="numerical")
    assert closed.method == "closed form" and numeric.method.startswith("numerical")
    np.testing.assert_allclose(np.log(closed["N"]), np.log(numeric["N"]), atol=1e-6)
    np.testing.assert_allclose(6 * closed["N"] * closed["D"], np.broadcast_to(budgets, closed["N"].shape), rtol=1e-12)


def test_allocation_exponents_match_growth_of_n_star(fitted):
    fc = Forecaster(fitted[0])
    alloc = fc.allocation([1e22, 1e24])
    a = np.log(alloc["N"][:, 1] / alloc["N"][:, 0]) / np.log(100)
    np.testing.assert_allclose(a, fc.allocation_exponents()["a"], rtol=1e-9)


def test_intervals_widen_beyond_the_data(fitted):
    fc = Forecaster(fitted[0])
    loss, _ = fc.loss_at_compute([1e19, 1e22, 1e25, 1e28])
    lo, hi = equal_tailed(np.log(loss), 0.9)
    width = hi - lo
    assert np.all(np.diff(width[1:]) > 0), width  # beyond the data (max C ~1.2e24), widths grow


@pytest.mark.parametrize("discrepancy", ["fit", "none"])
def test_target_loss_inversion_agrees_with_forecast(fitted, discrepancy):
    fc = Forecaster(fitted[0], discrepancy=discrepancy)
    assert (fc.structural is None) == (discrepancy == "none")
    target = 2.1
    result = fc.compute_for_loss(target)
    ok = np.isfinite(result["C"])
    assert result["p_reachable"] == pytest.approx(ok.mean())
    assert result["p_reachable"] > 0.5  # (draws whose drift rises faster than the law falls never reach it)
    # Evaluate each draw's optimal loss (structural drift included) at its own returned compute: it is the target.
    sub = Forecaster(fitted[0], discrepancy=discrepancy)
    sub.params = {k: v[ok] for k, v in fc.params.items()}
    sub.allocation_params = {k: v[ok] for k, v in fc.allocation_params.items()}
    sub.n_draws = int(ok.sum())
    if fc.structural is not None:
        sub.structural, sub._slopes = fc.structural.thinned(ok), fc._slopes[ok]
    at_c = np.exp(sub._optimal_log_loss(np.log(result["C"][ok])[:, None]))[:, 0]
    np.testing.assert_allclose(at_c, target, rtol=1e-9)
    np.testing.assert_allclose(6 * result["N"][ok] * result["D"][ok], result["C"][ok], rtol=1e-9)


def test_target_below_irreducible_loss_is_unreachable(fitted):
    fc = Forecaster(fitted[0], discrepancy="none")
    result = fc.compute_for_loss(1.0)  # E is about 1.69
    assert result["p_reachable"] == 0.0
    assert result["p_below_irreducible"] == 1.0
    assert np.isnan(result["C"]).all()
    # With the structural error a drift sustained over 18 decades could reach it: rarely.
    assert Forecaster(fitted[0]).compute_for_loss(1.0)["p_reachable"] < 0.05


def test_fixed_allocations(fitted):
    # the law's own: the optimum is each draw's law's (with a structural error, ρ rescales the loss about
    # the central draw's, whose optimum differs: then it is optimal only to second order)
    fc = Forecaster(fitted[0], discrepancy="none")
    loss20, info = fc.loss_at_compute([1e23], allocation="tokens_per_param", tokens_per_param=20)
    assert info["D"][0, 0] / info["N"][0, 0] == pytest.approx(20)
    optimal, _ = fc.loss_at_compute([1e23])
    assert np.all(optimal <= loss20 * (1 + 1e-12))  # the optimum is never worse
    fixed, info = fc.loss_at_compute([1e23], allocation="fixed_n", N=1e9)
    assert info["N"][0, 0] == 1e9 and np.all(optimal <= fixed * (1 + 1e-12))
    with pytest.raises(InputError, match="needs tokens_per_param > 0"):
        fc.loss_at_compute([1e23], allocation="tokens_per_param")


def test_rho_rescales_forecasts_beyond_the_data_about_the_law_at_the_posterior_median(fitted):
    """A structural error of ρ = 0.5 and no drift or scatter: every expected-loss draw is halfway
    between the central draw's law and its own, and a new run's spread is halved, inside the data
    and beyond; the posterior predictive of the fit's own runs is the model's.  The compute-optimal
    allocation stays each draw's law's own."""
    import copy

    from bayes_scaling.posterior.structural import StructuralError

    result = copy.copy(fitted[0])
    n = len(result.draws("sigma"))
    zeros = np.zeros(n)
    result.__dict__["structural"] = StructuralError(zeros, zeros, zeros, c_ref=float(result.runs.C.max()),
                                                    source="test", rho=np.full(n, 0.5))
    plain, rescaled = Forecaster(result, discrepancy="none", seed=4), Forecaster(result, seed=4)
    inputs = {"N": np.array([1e8, 1e11]), "D": np.array([2e9, 1e13])}
    assert rescaled.decades_beyond_data(6 * inputs["N"] * inputs["D"]).tolist()[0] == 0.0
    law, ours = plain.log_loss(**inputs), rescaled.log_loss(**inputs)
    centre = result.law.log_loss(np, {k: np.log(v) for k, v in inputs.items()},
                                 {k: v[result.central_draw] for k, v in result.params().items()})
    np.testing.assert_allclose(ours, centre + 0.5 * (law - centre), rtol=1e-12)
    width = [np.subtract(*np.quantile(np.log(fc.loss(predictive=True, **inputs)), [0.95, 0.05], axis=0))
             for fc in (plain, rescaled)]
    np.testing.assert_allclose(width[1], 0.5 * width[0], rtol=0.15)
    budgets = [1e20, 1e23, 1e25]
    np.testing.assert_array_equal(rescaled.allocation(budgets)["N"], plain.allocation(budgets)["N"])
    beyond = result.runs.subset(result.runs.C >= np.sort(result.runs.C)[-3], label="largest")  # held at C_ref
    np.testing.assert_array_equal(result.predictive_log_draws(beyond, seed=1),
                                  fitted[0].predictive_log_draws(beyond, seed=1))


def test_predictive_is_wider_than_expected(fitted):
    fc = Forecaster(fitted[0], seed=1)
    expected = fc.loss(N=[1e9], D=[2e10])
    predictive = fc.loss(N=[1e9], D=[2e10], predictive=True)
    assert np.std(np.log(predictive)) > np.std(np.log(expected))


def test_expected_loss_matches_law_at_posterior_mean(fitted):
    result, _ = fitted
    fc = Forecaster(result, discrepancy="none")  # the law itself (with a structural error: rescaled by ρ, above)
    draws = fc.loss(N=[3e8], D=[6e9])[:, 0]
    params = {k: v[:5] for k, v in result.params().items()}
    direct = result.law.loss({"N": 3e8, "D": 6e9}, params)
    np.testing.assert_allclose(draws[:5], direct, rtol=1e-12)


def test_hdi_against_arviz():
    import arviz as az

    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 1.0, size=(5000, 3))
    lo, hi = hdi(x, 0.9)
    ref = np.array([az.hdi(x[:, j], prob=0.9) for j in range(3)])
    np.testing.assert_allclose(lo, ref[:, 0], rtol=1e-12)
    np.testing.assert_allclose(hi, ref[:, 1], rtol=1e-12)


def test_summarize_and_bad_levels():
    x = np.random.default_rng(1).normal(size=(4000, 2))
    table = summarize(x, ci_prob=0.5, ci_kind="hdi", quantiles=[0.1, 0.9])
    assert list(table.columns) == ["median", "lower", "upper", "q0.1", "q0.9"]
    assert table["lower"].iloc[0] == pytest.approx(-0.674, abs=0.05)
    with pytest.raises(InputError, match="between 0 and 1"):
        summarize(x, ci_prob=95)
    with pytest.raises(InputError, match="'eti' \\(equal-tailed\\) or 'hdi'"):
        summarize(x, ci_kind="central")


def test_compute_law_has_no_allocation_and_groups_need_a_name(fitted):
    fc = Forecaster(fitted[0])
    fc.law = __import__("bayes_scaling").get_law("compute")
    with pytest.raises(InputError, match="depends on C only"):
        fc.allocation([1e22])


def test_interval_options_use_arviz_names_and_the_earlier_ones_still_work():
    """``ci_prob``/``ci_kind`` as in ArviZ; ``level``/``kind`` give the same table with a FutureWarning."""
    x = np.random.default_rng(3).normal(size=(2000, 2))
    new = summarize(x, ci_prob=0.5, ci_kind="hdi")
    with pytest.warns(FutureWarning, match="ci_prob"):
        old = summarize(x, level=0.5, kind="hdi")
    pd.testing.assert_frame_equal(new, old)
    with pytest.raises(TypeError, match="unexpected keyword argument 'levle'"):
        summarize(x, levle=0.5)
