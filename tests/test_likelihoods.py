"""Likelihoods: the Huber density is a density, its sampler draws from it, numpy matches PyMC."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_scaling import InputError
from bayes_scaling.model.likelihoods import get_likelihood


def _integral(f, a, b, breaks):
    """quad over [a, b], split at the density's kinks (quad takes no break points on infinite ranges)."""
    edges = [a, *[x for x in breaks if a < x < b], b]
    return sum(integrate.quad(f, lo, hi, limit=200)[0] for lo, hi in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("sigma,delta", [(0.01, 1e-3), (0.02, 0.05), (1.0, 1.345)])
def test_huber_density_integrates_to_one(sigma, delta):
    huber = get_likelihood("huber", delta=delta)
    total = _integral(lambda r: np.exp(huber.logpdf(np.array(r), 0.0, sigma, {})), -np.inf, np.inf,
                      [-delta, delta])
    assert total == pytest.approx(1.0, abs=1e-7)


def test_huber_mode_is_the_classical_huber_fit():
    """The maximum of the Huber log-likelihood over mu is the minimizer of the Huber loss."""
    rng = np.random.default_rng(3)
    y = rng.normal(0, 0.01, 50)
    y[:3] += 0.2  # outliers
    huber = get_likelihood("huber", delta=1e-3)
    grid = np.linspace(-0.01, 0.01, 4001)
    ll = np.array([huber.logpdf(y, m, 0.01, {}).sum() for m in grid])

    def huber_loss(m, d=1e-3):
        r = np.abs(y - m)
        return np.where(r <= d, 0.5 * r * r, d * r - 0.5 * d * d).sum()

    classical = grid[np.argmin([huber_loss(m) for m in grid])]
    assert grid[np.argmax(ll)] == pytest.approx(classical, abs=1e-5)
    assert abs(classical) < abs(y.mean())  # robust to the outliers, unlike the mean


def test_huber_draws_follow_the_density():
    huber = get_likelihood("huber", delta=0.01)
    draws = huber.draw(np.random.default_rng(0), np.zeros(20000), np.full(20000, 0.02), {})

    def cdf(x):
        return np.array([_integral(lambda r: np.exp(huber.logpdf(np.array(r), 0.0, 0.02, {})), -np.inf, v,
                                   [-0.01, 0.01]) for v in np.atleast_1d(x)])

    grid = np.quantile(draws, [0.05, 0.25, 0.5, 0.75, 0.95])
    np.testing.assert_allclose(cdf(grid), [0.05, 0.25, 0.5, 0.75, 0.95], atol=0.01)


def test_student_t_and_normal_logpdf():
    t = get_likelihood("student-t")
    assert t.logpdf(np.array(0.3), 0.1, 0.2, {"nu": 4.0}) == pytest.approx(stats.t.logpdf(1.0, 4) - np.log(0.2))
    rng = np.random.default_rng(1)  # over draws × runs, as a fit evaluates it
    y, mu = rng.normal(size=(1, 30)), rng.normal(size=(50, 30))
    sigma, nu = rng.uniform(0.01, 1, (50, 1)), rng.uniform(1, 60, (50, 1))
    np.testing.assert_allclose(t.logpdf(y, mu, sigma, {"nu": nu}), stats.t.logpdf(y, df=nu, loc=mu, scale=sigma),
                               rtol=1e-12, atol=1e-12)
    n = get_likelihood("normal")
    assert n.logpdf(np.array(0.3), 0.1, 0.2, {}) == pytest.approx(stats.norm.logpdf(1.0) - np.log(0.2))


def test_unknown_likelihood_and_bad_option():
    with pytest.raises(InputError, match="unknown likelihood 'gauss'"):
        get_likelihood("gauss")
    with pytest.raises(InputError, match="delta must be positive"):
        get_likelihood("huber", delta=0.0)


def test_the_light_list_of_likelihood_names_matches_the_implementations():
    """The command line offers bayes_scaling.options' names without importing the likelihoods."""
    from bayes_scaling.model.likelihoods import LIKELIHOODS
    from bayes_scaling.options import LIKELIHOOD_NAMES

    assert tuple(LIKELIHOODS) == LIKELIHOOD_NAMES
