"""Likelihoods of the observed log loss around the law's log loss.

Each likelihood builds its PyMC observation, evaluates its log density in numpy over
posterior draws (pointwise log-likelihood for LOO and held-out scoring, without another
compile) and draws replicated data (posterior predictive).  The Huber density's log
density is written once, against an :class:`~bayes_scaling.laws.ops.Ops`-like namespace, and
serves both the PyMC model and numpy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy import special, stats

from bayes_scaling.errors import InputError
from bayes_scaling.priors import Prior

__all__ = ['Likelihood', 'LIKELIHOODS', 'get_likelihood', 'huber_logpdf']


class Likelihood(ABC):
    """Noise model for ``y = log(loss)`` given ``mu = law log loss`` and scale ``sigma``."""

    name: str
    description: str
    #: extra sampled parameters, with default priors
    extra: dict[str, Prior] = {}
    #: whether the law runs through the middle of the runs' scatter (the ExGaussian's lies beneath it)
    law_is_centre: bool = True

    def noise_prior(self) -> Prior:
        # Residual scatter of log loss around a law: a few percent for published runs; 0.1
        # (10%) as the half-normal scale keeps 30% scatter possible.
        """The prior of the noise scale.

        Returns
        -------
        Prior
        """
        return Prior("HalfNormal", sigma=0.1)

    @abstractmethod
    def observe(self, name: str, mu, sigma, extra: dict[str, Any], observed, **kwargs):
        """The PyMC observed variable (inside a model context).

        Parameters
        ----------
        name
            The variable's name.
        mu
            Law's log loss.
        sigma
            Noise scale.
        extra
            The likelihood's extra parameters (e.g. ``nu``).
        observed
            The observed log losses.
        **kwargs
            Passed on to PyMC.

        Returns
        -------
        pymc variable
        """

    @abstractmethod
    def logpdf(self, y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, extra: dict[str, np.ndarray]) -> np.ndarray:
        """Pointwise log density (numpy, broadcasting).

        Parameters
        ----------
        y
            Observed log loss.
        mu
            Law's log loss.
        sigma
            Noise scale.
        extra
            The likelihood's extra parameters (e.g. ``nu``).

        Returns
        -------
        numpy.ndarray
        """

    @abstractmethod
    def draw(self, rng: np.random.Generator, mu: np.ndarray, sigma: np.ndarray,
             extra: dict[str, np.ndarray]) -> np.ndarray:
        """Replicated observations (numpy, broadcasting).

        Parameters
        ----------
        rng
            A numpy random Generator.
        mu
            Law's log loss.
        sigma
            Noise scale.
        extra
            The likelihood's extra parameters (e.g. ``nu``).

        Returns
        -------
        numpy.ndarray
        """

    def options(self) -> dict[str, Any]:
        """The likelihood's options.

        Returns
        -------
        dict
            What a fit records of the likelihood's settings.
        """
        return {}


class Normal(Likelihood):
    name = "normal"
    description = "Gaussian scatter of log loss"
    extra: dict[str, Prior] = {}

    def observe(self, name, mu, sigma, extra, observed, **kwargs):
        import pymc as pm

        return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, **kwargs)

    def logpdf(self, y, mu, sigma, extra):
        return stats.norm.logpdf(y, loc=mu, scale=sigma)

    def draw(self, rng, mu, sigma, extra):
        return rng.normal(mu, sigma)


class StudentT(Likelihood):
    name = "student-t"
    description = "Student-t scatter of log loss (robust to outlying runs)"
    # Gamma(2, 0.1) on the degrees of freedom (Juárez & Steel 2010): mean 20, allows heavy tails.
    extra = {"nu": Prior("Gamma", alpha=2.0, beta=0.1)}

    def observe(self, name, mu, sigma, extra, observed, **kwargs):
        import pymc as pm

        return pm.StudentT(name, nu=extra["nu"], mu=mu, sigma=sigma, observed=observed, **kwargs)

    def logpdf(self, y, mu, sigma, extra):
        # Written out: 5x faster than scipy.stats.t.logpdf over (draws, runs), equal to 4e-15.
        nu = np.asarray(extra["nu"], dtype=float)
        z = (np.asarray(y) - mu) / sigma
        norm = special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu) - 0.5 * np.log(nu * math.pi) - np.log(sigma)
        return norm - 0.5 * (nu + 1) * np.log1p(z * z / nu)

    def draw(self, rng, mu, sigma, extra):
        shape = np.broadcast(mu, sigma, extra["nu"]).shape
        return mu + sigma * rng.standard_t(np.broadcast_to(extra["nu"], shape))


class ExGaussian(Likelihood):
    """Gaussian scatter plus an exponential excess: a run's loss at or above what its (N, D) can reach.

    ``y = mu + e + x`` with ``e ~ N(0, sigma)`` and ``x ~ Exponential(mean=excess)``: the law is
    the loss a well-tuned run reaches, and an imperfectly tuned one (learning rate, shape, schedule)
    lies above it by ``x``.  A new run's median lies about ``0.7 · excess`` above the law.
    """

    name = "exgaussian"
    description = "Gaussian scatter plus an exponential excess (imperfect tuning: loss at or above the law)"
    # Half-normal of scale 0.03 on the mean excess in log loss: mistuned runs of published ladders
    # lie 1-5% above their best neighbours, 10% for a poor learning rate.
    extra = {"excess": Prior("HalfNormal", sigma=0.03)}
    law_is_centre = False

    def observe(self, name, mu, sigma, extra, observed, **kwargs):
        import pymc as pm

        return pm.ExGaussian(name, mu=mu, sigma=sigma, nu=extra["excess"], observed=observed, **kwargs)

    def logpdf(self, y, mu, sigma, extra):
        nu = np.asarray(extra["excess"], dtype=float)
        r = np.asarray(y) - mu
        return -np.log(nu) + 0.5 * (sigma / nu) ** 2 - r / nu + special.log_ndtr(r / sigma - sigma / nu)

    def draw(self, rng, mu, sigma, extra):
        shape = np.broadcast(mu, sigma, extra["excess"]).shape
        return mu + sigma * rng.standard_normal(shape) + rng.exponential(np.broadcast_to(extra["excess"], shape))


def huber_logpdf(xp: Any, r, sigma, delta, erf) -> Any:
    """Log density of the Huber distribution at residual ``r``.

    f(r) ∝ exp(−H_δ(r)/σ²) with H_δ the Huber loss (quadratic for |r| ≤ δ, linear
    beyond): its mode is the minimizer of Σ H_δ(r_i), i.e. the classical Huber fit.
    In standard units u = r/σ and k = δ/σ the normalizer is
    σ·[√(2π)·(2Φ(k) − 1) + 2·exp(−k²/2)/k].

    Parameters
    ----------
    xp
        The array namespace: numpy or ``pytensor.tensor``.
    r
        Residuals.
    sigma
        Scale.
    delta
        Threshold.
    erf
        The error function of ``xp``.

    Returns
    -------
    array
    """
    u = r / sigma
    k = delta / sigma
    au = xp.abs(u)
    rho = xp.where(au <= k, 0.5 * u * u, k * au - 0.5 * k * k)
    z = math.sqrt(2 * math.pi) * erf(k / math.sqrt(2)) + 2 * xp.exp(-0.5 * k * k) / k
    return -rho - xp.log(z) - xp.log(sigma)


class Huber(Likelihood):
    """The density whose mode is the Huber-loss fit that published replications use.

    ``delta`` is the Huber threshold on log-loss residuals (Hoffmann et al. 2022 use 1e-3).
    """

    name = "huber"
    description = "Huber density on log loss (mode = the classical Huber fit)"
    extra: dict[str, Prior] = {}

    def __init__(self, delta: float = 1e-3):
        if not delta > 0:
            raise InputError(f"the Huber threshold delta must be positive, got {delta}")
        self.delta = float(delta)

    def options(self):
        """The Huber threshold.

        Returns
        -------
        dict
        """
        return {"delta": self.delta}

    def observe(self, name, mu, sigma, extra, observed, **kwargs):
        import pymc as pm
        import pytensor.tensor as pt

        delta = self.delta

        def logp(value, mu, sigma):
            return huber_logpdf(pt, value - mu, sigma, delta, pt.erf)

        def random(mu, sigma, rng=None, size=None):
            return _huber_draw(np.random.default_rng(rng), mu, sigma, delta, size)

        return pm.CustomDist(name, mu, sigma, logp=logp, random=random, observed=observed, **kwargs)

    def logpdf(self, y, mu, sigma, extra):
        return huber_logpdf(np, np.asarray(y) - mu, sigma, self.delta, special.erf)

    def draw(self, rng, mu, sigma, extra):
        return _huber_draw(rng, mu, sigma, self.delta, None)


def _huber_draw(rng: np.random.Generator, mu, sigma, delta: float, size) -> np.ndarray:
    """Exact draws: a truncated normal core with probability ∝ its mass, else Laplace tails."""
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    shape = np.broadcast(mu, sigma).shape if size is None else tuple(np.atleast_1d(size))
    mu, sigma = np.broadcast_to(mu, shape), np.broadcast_to(sigma, shape)
    k = delta / sigma
    core = math.sqrt(2 * math.pi) * special.erf(k / math.sqrt(2))
    tails = 2 * np.exp(-0.5 * k * k) / k
    in_core = rng.uniform(size=shape) < core / (core + tails)
    u_core = stats.truncnorm.rvs(-k, k, size=shape, random_state=rng)
    u_tail = (k + rng.exponential(1.0, size=shape) / k) * rng.choice([-1.0, 1.0], size=shape)
    return mu + sigma * np.where(in_core, u_core, u_tail)


LIKELIHOODS = {"normal": Normal, "student-t": StudentT, "huber": Huber, "exgaussian": ExGaussian}


def get_likelihood(likelihood: str | Likelihood, **options: Any) -> Likelihood:
    """A likelihood by name (``LIKELIHOODS``) with its options, or the likelihood itself.

    Parameters
    ----------
    likelihood
        A likelihood name or object.
    **options
        Its options (e.g. ``delta``).

    Returns
    -------
    Likelihood
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    key = str(likelihood).strip().lower()
    if key not in LIKELIHOODS:
        raise InputError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    try:
        return LIKELIHOODS[key](**options)
    except TypeError:
        raise InputError(f"likelihood {key!r} takes no options {', '.join(options)}") from None
