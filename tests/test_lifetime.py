"""Lifetime-optimal allocation (training + serving) against an independent minimisation per draw."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import optimize
from simulate import simulate

from bayes_scaling import fit
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.forecast.lifetime import ServingCost, lifetime_optimum, lifetime_table, tokens_for_loss


@pytest.fixture(scope="module")
def forecaster():
    runs, _ = simulate("chinchilla", seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(runs, law="chinchilla", likelihood="normal", draws=100, tune=300, chains=2, seed=5,
                     discrepancy="none")
    return Forecaster(result, max_draws=24, discrepancy="none")


def tokens_needed(p, target, n):
    """D reaching ``target`` at N = n for L = E + A/N^α + B/D^β (closed form); inf if out of reach."""
    gap = target - p["E"] - p["A"] / n ** p["alpha"]
    return (p["B"] / gap) ** (1 / p["beta"]) if gap > 0 else math.inf


def independent_optimum(p, target, objective):
    """scipy on one draw: bounded search on log N of ``objective(N, D(N))``."""
    def cost(log_n):
        n = math.exp(log_n)
        d = tokens_needed(p, target, n)
        if not math.isfinite(d):
            return 1e300
        return objective(n, d)

    n_min = (p["A"] / (target - p["E"])) ** (1 / p["alpha"])  # below this N the target is out of reach
    res = optimize.minimize_scalar(cost, bounds=(math.log(n_min) + 1e-9, math.log(1e15)), method="bounded",
                                   options={"xatol": 1e-10})
    return math.exp(res.x)


@pytest.mark.parametrize("objective", ["compute", "energy"])
@pytest.mark.parametrize("tokens", [0.0, 1e10, 1e12])
def test_lifetime_optimum_matches_an_independent_minimisation_for_every_draw(forecaster, objective, tokens):
    fc = forecaster
    target = float(np.quantile(fc.params["E"], 0.95)) + 0.25  # reachable for every draw
    rng = np.random.default_rng(0)
    if objective == "energy":
        cost = ServingCost(joules_per_flop=rng.lognormal(math.log(2e-12), 0.3, fc.n_draws),
                           joules_per_token_ref=rng.lognormal(math.log(1.0), 0.3, fc.n_draws),
                           slope=rng.uniform(0.5, 0.8, fc.n_draws), n_ref=1e9)
    else:
        cost = ServingCost()
    opt = lifetime_optimum(fc, target_loss=target, tokens_served=tokens, cost=cost)
    assert np.isfinite(opt["N"]).all()
    for i in range(fc.n_draws):
        p = {k: float(v[i]) for k, v in fc.params.items()}
        if objective == "energy":
            def total(n, d, i=i):
                return (6 * n * d * cost.joules_per_flop[i]
                        + cost.joules_per_token_ref[i] * (n / 1e9) ** cost.slope[i] * tokens)
        else:
            def total(n, d):
                return 6 * n * d + 2 * n * tokens
        n_star = independent_optimum(p, target, total)
        assert opt["N"][i] == pytest.approx(n_star, rel=2e-3), i
        assert opt["D"][i] == pytest.approx(tokens_needed(p, target, opt["N"][i]), rel=1e-6)
        assert opt["total"][i] == pytest.approx(total(n_star, tokens_needed(p, target, n_star)), rel=1e-5)


def test_tokens_for_loss_reaches_the_target_and_flags_the_unreachable(forecaster):
    fc = forecaster
    target = float(np.max(fc.params["E"])) + 0.3
    log_n = np.full(fc.n_draws, math.log(3e9))
    log_d = tokens_for_loss(fc, log_n, target)
    loss = np.exp(fc._log_loss_per_draw(np.exp(log_n)[:, None], np.exp(log_d)[:, None])[:, 0])
    np.testing.assert_allclose(loss, target, rtol=1e-9)
    below = tokens_for_loss(fc, log_n, float(np.min(fc.params["E"])) * 0.9)  # below every draw's E
    assert np.isnan(below).all()


def test_more_serving_means_smaller_models_trained_longer(forecaster):
    fc = forecaster
    target = float(np.quantile(fc.params["E"], 0.95)) + 0.25
    table = lifetime_table(fc, target_loss=target, tokens_served=[1e11, 1e13], level=0.9)
    assert list(table["tokens_served"]) == [0.0, 1e11, 1e13]
    assert table["N"].is_monotonic_decreasing and table["tokens_per_param"].is_monotonic_increasing
    assert table.loc[0, "N_vs_chinchilla_optimal"] == pytest.approx(1.0)
    assert table.loc[0, "p_serving_exceeds_training"] == 0.0
    assert table["p_serving_exceeds_training"].is_monotonic_increasing
