"""Likelihoods: the Huber density is a density, its sampler draws from it, numpy matches PyMC; the
ExGaussian finds the law beneath imperfectly tuned runs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_scaling import InputError
from bayes_scaling.model.likelihoods import get_likelihood
from bayes_scaling.sampling.diagnostics import SamplingWarning


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


def test_exgaussian_logpdf_and_draws_match_scipy():
    """Gaussian scatter plus an exponential excess: scipy's exponnorm (K = excess / sigma), over draws × runs."""
    g = get_likelihood("exgaussian")
    rng = np.random.default_rng(4)
    y, mu = rng.normal(0, 0.05, size=(1, 30)), rng.normal(0, 0.05, size=(40, 30))
    sigma, excess = rng.uniform(0.002, 0.05, (40, 1)), rng.uniform(0.001, 0.1, (40, 1))
    np.testing.assert_allclose(g.logpdf(y, mu, sigma, {"excess": excess}),
                               stats.exponnorm.logpdf(y, excess / sigma, loc=mu, scale=sigma), rtol=1e-10, atol=1e-10)
    draws = g.draw(np.random.default_rng(0), np.zeros(50000), np.full(50000, 0.01), {"excess": np.full(50000, 0.03)})
    assert stats.kstest(draws, stats.exponnorm(3.0, scale=0.01).cdf).pvalue > 0.01
    assert np.median(draws) == pytest.approx(stats.exponnorm(3.0, scale=0.01).median(), abs=1e-3)


def test_exgaussian_fit_recovers_the_law_beneath_imperfectly_tuned_runs():
    """Runs scattered above a known law by an exponential excess (mean 2%): the ExGaussian fit finds
    the law and the excess; a Student-t fit puts the law up among the runs."""
    from simulate import simulate

    from bayes_scaling import Forecaster, read_runs
    from bayes_scaling.fitting import fit
    from bayes_scaling.laws.registry import get_law

    runs, truth = simulate("chinchilla", seed=13, sigma=0.003)
    frame = runs.to_frame()[["N", "D", "loss"]]
    frame["loss"] *= np.exp(np.random.default_rng(14).exponential(0.02, len(frame)))
    tuned = read_runs(frame, name="simulated chinchilla, imperfectly tuned")
    settings = {"draws": 300, "tune": 400, "chains": 2, "seed": 5, "discrepancy": "none"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # R-hat 1.015 on A: the test reads medians
        ex = fit(tuned, likelihood="exgaussian", **settings)
        t = fit(tuned, likelihood="student-t", **settings)
    summary = ex.summary(ci_prob=0.99)
    lo, hi = summary.columns[3], summary.columns[4]
    assert summary.loc["excess", lo] <= 0.02 <= summary.loc["excess", hi]
    true_loss = get_law("chinchilla").loss({"N": np.array([1e9]), "D": np.array([2e10])}, truth)[0]
    ex_loss = np.median(Forecaster(ex).loss(N=1e9, D=2e10))
    t_loss = np.median(Forecaster(t).loss(N=1e9, D=2e10))
    assert ex_loss == pytest.approx(true_loss, rel=0.01)
    assert t_loss > true_loss * 1.008  # the symmetric fit's law runs through the runs, above the law
    assert abs(ex_loss - true_loss) < 0.6 * abs(t_loss - true_loss)
