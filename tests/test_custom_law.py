"""A law defined outside the package fits, saves, loads and forecasts (issue 17)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from simulate import simulate

from bayes_scaling import InputError, fit, load_fit
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.laws.base import Param, Sampled, ScalingLaw
from bayes_scaling.laws.registry import LAWS, get_law, register_law
from bayes_scaling.priors import Prior


class SaturatingN(ScalingLaw):
    """L = E + (N0/N)^alpha, written by a user."""

    name = "user-saturating-n"
    title = "A user's law of model size"
    formula = "L = E + (N0/N)^alpha"
    inputs = ("N",)
    params = (Param("E", "irreducible loss"), Param("N0", "size scale"), Param("alpha", "size exponent"))
    sampled = (Sampled("E", "irreducible loss"), Sampled("L_mid", "the power-law term at the centre"),
               Sampled("alpha", "size exponent", exponent=True))

    def log_terms(self, ops, x, p):
        return [ops.log(p["E"]), p["alpha"] * (ops.log(p["N0"]) - x["N"])]

    def natural(self, ops, s, centre):
        return {"E": s["E"], "N0": ops.exp(centre["N"] + ops.log(s["L_mid"]) / s["alpha"]), "alpha": s["alpha"]}

    def default_priors(self, stats):
        return {"E": Prior("LogNormal", mu=math.log(0.6 * stats.loss_min), sigma=0.5),
                "L_mid": Prior("LogNormal", mu=math.log(0.5 * stats.loss_mid), sigma=1.0),
                "alpha": Prior("LogNormal", mu=math.log(0.3), sigma=0.7)}


@pytest.fixture
def user_law():
    law = SaturatingN()
    yield law
    LAWS.pop(law.name, None)


def test_a_users_law_fits_saves_loads_and_forecasts(user_law, tmp_path):
    runs, truth = simulate("kaplan-n+e", seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(runs, law=user_law, likelihood="normal", draws=200, tune=400, chains=2, seed=3,
                     discrepancy="none")
    assert result.law is user_law  # registered by its name when first fitted
    assert abs(np.median(result.draws("alpha")) - truth["alpha_N"]) < 0.05
    loaded = load_fit(result.save(tmp_path / "fit.nc"), law=user_law.name)
    np.testing.assert_array_equal(loaded.draws("E"), result.draws("E"))
    loss = Forecaster(loaded).loss(N=[1e9, 1e11])
    assert loss.shape == (400, 2) and np.all(np.median(loss, axis=0)[1] < np.median(loss, axis=0)[0])
    LAWS.pop(user_law.name)  # a new process that has not registered the law
    with pytest.raises(InputError, match="register_law"):
        load_fit(tmp_path / "fit.nc")


def test_a_law_name_cannot_be_taken_twice(user_law):
    register_law(user_law)
    assert get_law("user-saturating-n") is user_law
    impostor = type("Impostor", (SaturatingN,), {})()
    with pytest.raises(InputError, match="is taken by"):
        register_law(impostor)
    assert register_law(impostor, replace=True) is impostor
    with pytest.raises(InputError, match="is taken by"):
        register_law(type("Chin", (SaturatingN,), {"name": "chinchilla"})())
