"""Point fits of a law by multi-start L-BFGS on the Huber loss in log space (the law's own
parametrization): the classical baseline's optimizer, and where a multimodal law's chains start.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from scipy import optimize, special

from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import BayesScalingError
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.model.likelihoods import Huber
from bayes_scaling.model.pymc_model import log_inputs

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

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    priors
        Resolved priors.
    centre
        The data's centre.
    starts
        Starting points.
    seed
        Random seed; the same seed gives the same result.
    delta
        Huber threshold.

    Returns
    -------
    dict of str to float
    """
    best, names, transforms, _ = _multistart(runs, law, priors, centre, starts=starts,
                                             rng=np.random.default_rng([seed, 7]), delta=delta)
    return {n: float(transforms[n][1](t)) for n, t in zip(names, best.x, strict=True)}

