"""The Chinchilla law's sampler coordinates change the geometry, never the model."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.laws.registry import get_law

COORDS = get_law("chinchilla").coordinates
ORDER = ("log_L", "z_0", "log_g_0", "z_1", "log_g_1")


def _to_logs(vector: np.ndarray) -> np.ndarray:
    logs = COORDS.log_values(NUMPY, dict(zip(ORDER, vector, strict=True)))
    return np.array([logs[name] for name in COORDS.names])


def test_the_map_to_log_quantities_is_a_bijection_with_unit_jacobian():
    """|det J| = 1 is what lets the priors of E, A_mid, B_mid, alpha, beta be used unchanged."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        point = rng.normal(0.0, 1.5, size=5)
        step = 1e-6
        jac = np.column_stack([(_to_logs(point + step * e) - _to_logs(point - step * e)) / (2 * step)
                               for e in np.eye(5)])
        assert abs(abs(np.linalg.det(jac)) - 1.0) < 1e-6
        back = COORDS.coordinates_at(NUMPY, dict(zip(COORDS.names, _to_logs(point), strict=True)))
        np.testing.assert_allclose([back[k] for k in ORDER], point, rtol=1e-9, atol=1e-9)


def test_the_models_density_in_these_coordinates_is_the_priors_of_the_log_quantities():
    """PyMC's log density over the coordinates equals Σ log N(log q; μ_q, σ_q) — the LogNormal
    priors of the quantities, as densities of their logs — at random points: with the unit
    Jacobian above, that is the model the plain coordinates sample."""
    import pymc as pm
    from scipy import stats

    priors = {"E": (0.5, 0.5), "A_mid": (-0.7, 1.0), "B_mid": (-0.9, 0.8), "alpha": (-1.2, 1.0), "beta": (-1.0, 0.7)}

    def log_prior(name, log_value):
        mu, sigma = priors[name]
        return pm.logp(pm.Normal.dist(mu, sigma), log_value)

    medians = {name: mu for name, (mu, _) in priors.items()}
    start = COORDS.coordinates_at(NUMPY, medians)  # where build() puts the offsets' zero
    with pm.Model() as model:
        COORDS.build(medians, log_prior)
    logp = model.compile_logp()
    rng = np.random.default_rng(2)
    for _ in range(10):
        offsets = dict(zip(ORDER, rng.normal(0.0, 1.0, 5), strict=True))
        logs = COORDS.log_values(NUMPY, {k: start[k] + v for k, v in offsets.items()})
        expected = sum(stats.norm.logpdf(logs[name], mu, sigma) for name, (mu, sigma) in priors.items())
        # rel 1e-8, not 1e-15: PyTensor evaluates softplus piecewise
        assert logp({f"{k}_offset": v for k, v in offsets.items()}) == pytest.approx(expected, rel=1e-8)


def test_a_prior_of_another_family_is_the_density_of_its_log():
    """A user's prior that is not LogNormal (here Gamma, HalfNormal) enters these coordinates
    as the density of log x: its density at x plus log x."""
    import pytensor.tensor as pt
    from scipy import stats

    from bayes_scaling.priors import Prior

    x = np.array([0.05, 0.3, 1.7])
    gamma, half = Prior("Gamma", alpha=4.0, beta=12.0), Prior("HalfNormal", sigma=3.0)
    got_gamma = gamma.log_density_of_log(pt.as_tensor(np.log(x)), gamma.data_params()).eval()
    got_half = half.log_density_of_log(pt.as_tensor(np.log(x)), half.data_params()).eval()
    # PyMC's normalising constants differ from scipy's by up to 1e-7 (a constant: no matter to
    # a posterior); the shape must agree exactly
    for got, expected in ((got_gamma, stats.gamma.logpdf(x, 4.0, scale=1 / 12.0) + np.log(x)),
                          (got_half, stats.halfnorm.logpdf(x, scale=3.0) + np.log(x))):
        gap = got - expected
        assert np.ptp(gap) < 1e-12 and abs(gap[0]) < 1e-6
