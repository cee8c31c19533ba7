"""The Chinchilla law's sampler coordinates change the geometry, never the model."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_scaling.coordinates import StickBreakingSlopes
from bayes_scaling.laws import NUMPY, get_law

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


@pytest.mark.slow
def test_sampling_the_prior_in_these_coordinates_gives_the_priors():
    """NUTS on the priors alone, in the new coordinates: every quantity keeps its LogNormal prior."""
    import nutpie
    import pymc as pm

    priors = {"E": (0.5, 0.5), "A_mid": (-0.7, 1.0), "B_mid": (-0.7, 1.0), "alpha": (-1.2, 1.0), "beta": (-1.2, 1.0)}

    def log_prior(name, log_value):
        mu, sigma = priors[name]
        return pm.logp(pm.Normal.dist(mu, sigma), log_value)

    with pm.Model() as model:
        StickBreakingSlopes("E", (("B_mid", "beta"), ("A_mid", "alpha"))).build(
            {name: mu for name, (mu, _) in priors.items()}, log_prior)
    tree = nutpie.sample(nutpie.compile_pymc_model(model), draws=2000, tune=1000, chains=4, seed=1,
                         progress_bar=False)
    for name, (mu, sigma) in priors.items():
        logs = np.log(tree["posterior"][name].values.ravel())
        # 8,000 draws of an effective size in the thousands: the mean within 0.1 sd, the sd within 8%
        assert abs(logs.mean() - mu) < 0.1 * sigma, name
        assert abs(logs.std() / sigma - 1) < 0.08, name
