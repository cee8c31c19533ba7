"""The training-vs-serving outlook: a scenario whose answers move the way its assumptions say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayes_scaling import InputError
from bayes_scaling.energy.outlook import serving_outlook
from bayes_scaling.energy.training import EnergyModel


@pytest.fixture(scope="module")
def energy():
    return EnergyModel.fit(draws=3000, seed=0)


def test_more_serving_means_an_earlier_crossover(energy):
    few = serving_outlook(energy, tokens_served=(1e11, 1e12))
    many = serving_outlook(energy, tokens_served=(1e14, 1e15))
    assert list(few["year"]) == list(range(2025, 2031))
    assert few["flop"].is_monotonic_increasing and few["training_mwh"].is_monotonic_increasing
    assert (many["p_serving_exceeds_training"] > few["p_serving_exceeds_training"]).all()
    assert many.attrs["crossover"]["p_by_2030"] > few.attrs["crossover"]["p_by_2030"]
    assert many.attrs["crossover"]["median"] <= few.attrs["crossover"]["median"]


def test_the_limits_are_certain(energy):
    always = serving_outlook(energy, tokens_served=(1e19, 1e20), active_fraction=(1.0, 1.0))
    assert always.attrs["crossover"] == {"median": 2025.0, "lower": 2025.0, "upper": 2025.0, "p_by_2030": 1.0}
    never = serving_outlook(energy, tokens_served=(1e3, 1e4), token_growth=(1.0001, 1.001))
    assert never.attrs["crossover"]["p_by_2030"] == 0.0 and math.isinf(never.attrs["crossover"]["median"])
    assert (never["p_serving_exceeds_training"] == 0).all()


def test_serving_energy_is_the_stated_arithmetic(energy):
    """Without measurements: tokens × 2·N_active FLOP per token × J per FLOP of inference, per draw."""
    table = serving_outlook(energy, tokens_served=(1e12, 1.0001e12), token_growth=(1.0, 1.0001),
                            active_fraction=(1.0, 1.0), frontier_flop=(1e25, 1.0001e25), compute_growth=(1.0, 1.0001),
                            years=[2025])
    size = math.sqrt(1e25 / (6 * 20))
    per_token = energy.inference_energy_per_token(size, year=2025)[:, 0]
    expected = np.median(per_token * 1e12 / 3.6e9)
    assert table.loc[0, "serving_mwh"] == pytest.approx(expected, rel=1e-3)
    with pytest.raises(InputError, match="90% interval"):
        serving_outlook(energy, tokens_served=(1e14, 1e12))
