"""Every implementation keeps its contract: Predictive (Fit, ClassicalFit), Forecasts (Forecaster, LawAverage)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from simulate import simulate

import bayes_scaling as bs
from bayes_scaling.compare.classical import huber_fit
from bayes_scaling.forecast.averaging import LawAverage
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.protocols import Forecasts, Predictive
from bayes_scaling.sampling.diagnostics import SamplingWarning

QUICK = {"draws": 200, "tune": 400, "chains": 2, "seed": 4, "backtests": False}


@pytest.fixture(scope="module")
def data():
    runs, _ = simulate("chinchilla", seed=31, sigma=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        fits = {law: bs.fit(runs, law=law, likelihood="normal", **QUICK) for law in ("chinchilla", "compute")}
    return runs, fits


def _predictive(data):
    runs, fits = data
    return [fits["chinchilla"], fits["compute"], huber_fit(runs, law="chinchilla", bootstrap=8, starts=8, seed=0)]


def _forecasts(data):
    _, fits = data
    return [Forecaster(fits["chinchilla"]), Forecaster(fits["compute"]),
            LawAverage.from_fits(fits, weights={"chinchilla": 0.7, "compute": 0.3})]


def test_predictive_contract(data):
    runs, _ = data
    held = runs.subset(runs.C > np.median(runs.C), label="held out")
    for model in _predictive(data):
        assert isinstance(model, Predictive), type(model)
        mu = model.log_mu(held)
        draws = model.predictive_log_draws(held, seed=1)
        loglik = model.pointwise_log_likelihood(held)
        assert mu.ndim == draws.ndim == loglik.ndim == 2
        assert mu.shape[1] == draws.shape[1] == loglik.shape[1] == len(held)
        assert np.isfinite(loglik).all() and np.isfinite(draws).all()
        # predictive draws scatter around the law's mean
        assert abs(np.median(draws - np.median(mu, axis=0))) < 0.05


def test_forecasts_contract(data):
    budgets = np.array([1e20, 1e22, 1e24])
    for fc in _forecasts(data):
        assert isinstance(fc, Forecasts), type(fc)
        loss, info = fc.loss_at_compute(budgets)
        assert loss.shape == (fc.n_draws, 3) and "allocation" in info
        assert np.all(np.diff(np.median(loss, axis=0)) < 0)  # more compute, lower loss
        np.testing.assert_array_equal(fc.decades_beyond_data(budgets)[:1], [0.0])
        assert fc.loss(N=np.array([1e9]), D=np.array([2e10])).shape == (fc.n_draws, 1)
        target = fc.compute_for_loss(float(np.median(loss[:, 1])))
        assert target["C"].shape == (fc.n_draws,) and 0.2 < target["p_reachable"] <= 1
        per_draw = fc.expected_log_loss_per_draw(np.full((fc.n_draws, 1), 1e9), np.full((fc.n_draws, 1), 2e10))
        assert per_draw.shape == (fc.n_draws, 1)
        assert {"name", "title", "inputs"} <= set(dir(fc.law)) and len(fc.fit.runs) > 0
        if {"N", "D"} <= set(fc.law.inputs):
            alloc = fc.allocation(budgets)
            np.testing.assert_allclose(6 * alloc["N"] * alloc["D"], np.broadcast_to(budgets, alloc["N"].shape),
                                       rtol=1e-9)
