"""The classical baseline: a Huber-loss point fit in log space with multi-start L-BFGS and
bootstrap intervals, as published replications of Hoffmann et al. (2022) do.

It minimises Σ Huber_δ(log L̂(runs; θ) − log loss) over the law's parameters (the same
law object, in its centred parametrization with log/logit transforms for positive and unit
parameters), from many starting points; intervals come from refitting bootstrap resamples
of the runs.  Predictions for held-out runs add noise from the same Huber density, its scale fitted to
the full fit's residuals by maximum likelihood, so the baseline goes through the same
scoring as the Bayesian fits.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from .errors import BayesScalingError
from .laws import NUMPY, ScalingLaw, get_law
from .likelihoods import Huber
from .model import log_inputs
from .priors import DataStats
from .runs import RunTable

__all__ = ["ClassicalFit", "huber_fit", "sampled_optimum"]

log = logging.getLogger(__name__)


def _transforms(law: ScalingLaw, priors: dict):
    """Per sampled name: (to_unconstrained, from_unconstrained)."""
    out = {}
    for s in law.sampled:
        prior = priors[s.name]
        if prior.dist == "Beta":
            out[s.name] = (special.logit, special.expit)
        elif prior.positive:
            out[s.name] = (np.log, np.exp)
        else:
            out[s.name] = (lambda v: v, lambda v: v)
    return out


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * a - 0.5 * delta * delta)


@dataclass
class ClassicalFit:
    """A Huber point fit with bootstrap draws of the natural parameters."""

    law: ScalingLaw
    params: dict[str, float]
    bootstrap: dict[str, np.ndarray]
    residual_scale: float
    delta: float
    objective: float

    def log_mu(self, runs: RunTable, *, bootstrap: bool = True) -> np.ndarray:
        x = {k: v[None, :] for k, v in log_inputs(self.law, runs).items()}
        source = self.bootstrap if bootstrap else {k: np.array([v]) for k, v in self.params.items()}
        return self.law.log_loss(NUMPY, x, {k: v[:, None] for k, v in source.items()})

    def predictive_log_draws(self, runs: RunTable, *, seed: int = 0) -> np.ndarray:
        mu = self.log_mu(runs)
        rng = np.random.default_rng(seed)
        return Huber(self.delta).draw(rng, mu, np.full(mu.shape, self.residual_scale), {})

    def pointwise_log_likelihood(self, runs: RunTable) -> np.ndarray:
        mu = self.log_mu(runs)
        return Huber(self.delta).logpdf(np.log(runs.loss)[None, :], mu, self.residual_scale, {})


def _huber_scale(resid: np.ndarray, delta: float) -> float:
    """Maximum-likelihood scale of the Huber density for residuals (the threshold δ fixed).

    Not the residual MAD: with δ fixed in absolute units the density's tails decay at rate
    δ/σ², so a scale set by the spread of the residuals would make the tails far too wide.
    """
    huber = Huber(delta)

    def nll(log_sigma: float) -> float:
        return -float(np.sum(huber.logpdf(resid, 0.0, math.exp(log_sigma), {})))

    spread = max(float(np.median(np.abs(resid))), 1e-6)
    res = optimize.minimize_scalar(nll, bounds=(math.log(spread) - 10, math.log(spread) + 5), method="bounded")
    return float(math.exp(res.x))


#: Forward-difference step of the gradient, in unconstrained parameter units (scipy's L-BFGS-B default).
_STEP = 1e-8


def _objective_and_gradient(theta, names, transforms, law, x, y, centre, delta):
    """Σ Huber_δ(log L̂ − log loss) at ``theta`` and its forward-difference gradient.

    The base point and its k shifted copies go through the law in one vectorized call: the
    same differences scipy would take, without k + 1 passes through Python.
    """
    k = len(theta)
    points = np.repeat(theta[None, :], k + 1, axis=0)
    points[1:] += np.eye(k) * _STEP
    step = np.diag(points[1:]) - theta  # the step actually taken, after rounding
    # The optimizer explores extreme values: overflow there just means "bad point".
    with np.errstate(all="ignore"):
        s = {n: transforms[n][1](points[:, i:i + 1]) for i, n in enumerate(names)}
        pred = law.log_loss(NUMPY, {key: v[None, :] for key, v in x.items()}, law.natural(NUMPY, s, centre))
        values = np.sum(_huber(pred - y[None, :], delta), axis=-1)
        values = np.where(np.isfinite(values), values, 1e10)
        return float(values[0]), (values[1:] - values[0]) / step


def _fit_once(x: dict[str, np.ndarray], y: np.ndarray, law: ScalingLaw, starts: np.ndarray, names, transforms,
              centre, delta):
    """The best L-BFGS fit from ``starts`` to log inputs ``x`` and log losses ``y``."""
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for start in starts:
            res = optimize.minimize(_objective_and_gradient, start, jac=True, method="L-BFGS-B",
                                    args=(names, transforms, law, x, y, centre, delta))
            if best is None or res.fun < best.fun:
                best = res
    return best


def _multistart(runs: RunTable, law: ScalingLaw, priors: dict, centre: dict, *, starts: int, rng, delta: float):
    """The best of ``starts`` L-BFGS runs (plus one from the priors' medians) in unconstrained space."""
    transforms = _transforms(law, priors)
    names = list(law.sampled_names)
    draws = {n: priors[n].sample(rng, starts) for n in names}
    starts_u = np.column_stack([transforms[n][0](draws[n]) for n in names])
    medians = np.array([transforms[n][0](np.median(priors[n].sample(rng, 4001))) for n in names])
    starts_u = np.vstack([medians, starts_u])
    best = _fit_once(log_inputs(law, runs), np.log(runs.loss), law, starts_u, names, transforms, centre, delta)
    if best is None or not np.all(np.isfinite(best.x)):
        raise BayesScalingError(f"the Huber fit of {law.name} did not converge from any of {starts + 1} starts")
    return best, names, transforms, starts_u


def sampled_optimum(runs: RunTable, law: ScalingLaw, priors: dict, centre: dict, *, starts: int = 64,
                    seed: int = 0, delta: float = 1e-3) -> dict[str, float]:
    """The multi-start Huber optimum as values of the law's *sampled* quantities.

    Used to start the chains of multimodal laws (the broken power law) in the main mode.
    """
    best, names, transforms, _ = _multistart(runs, law, priors, centre, starts=starts,
                                             rng=np.random.default_rng([seed, 7]), delta=delta)
    return {n: float(transforms[n][1](t)) for n, t in zip(names, best.x, strict=True)}


def huber_fit(runs: RunTable, *, law: str | ScalingLaw = "chinchilla", delta: float = 1e-3, starts: int = 64,
              bootstrap: int = 100, seed: int = 0) -> ClassicalFit:
    """Huber-loss fit in log space from ``starts`` starting points, with ``bootstrap`` resample refits.

    Starting points are drawn from the law's data-scaled default priors (plus their medians).
    """
    law = get_law(law)
    stats = DataStats.from_runs(runs)
    rng = np.random.default_rng(seed)
    best, names, transforms, starts_u = _multistart(runs, law, law.default_priors(stats), stats.centre,
                                                    starts=starts, rng=rng, delta=delta)

    def natural(theta):
        with np.errstate(all="ignore"):
            s = {n: transforms[n][1](t) for n, t in zip(names, theta, strict=True)}
            return {k: float(v) for k, v in law.natural(NUMPY, s, stats.centre).items()}

    params = natural(best.x)
    x = log_inputs(law, runs)
    resid = np.log(runs.loss) - law.log_loss(NUMPY, x, params)
    scale = _huber_scale(resid, delta)
    boot = {k: np.empty(bootstrap) for k in params}
    local = [best.x, *starts_u[rng.choice(len(starts_u), size=3, replace=False)]]
    y = np.log(runs.loss)
    for b in range(bootstrap):
        idx = rng.integers(0, len(runs), len(runs))  # a resample of the runs, as index arrays
        res = _fit_once({k: v[idx] for k, v in x.items()}, y[idx], law, np.array(local), names, transforms,
                        stats.centre, delta)
        for k, v in natural(res.x).items():
            boot[k][b] = v
    log.info("Huber fit of %s: objective %.4g, residual scale %.4g, %d bootstrap refits", law.name, best.fun,
             scale, bootstrap)
    return ClassicalFit(law, params, boot, max(scale, 1e-6), delta, float(best.fun))
