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
from dataclasses import dataclass

import numpy as np

from bayes_scaling.data.runs import RunTable
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.laws.registry import get_law
from bayes_scaling.model.likelihoods import Huber
from bayes_scaling.model.optimize import _fit_once, _huber_scale, _multistart
from bayes_scaling.model.pymc_model import log_inputs
from bayes_scaling.priors import DataStats

log = logging.getLogger(__name__)


__all__ = ['ClassicalFit', 'huber_fit']


@dataclass
class ClassicalFit:
    """A Huber point fit with bootstrap draws of the natural parameters.

    Parameters
    ----------
    law
        The law.
    params
        The point fit's natural parameters.
    bootstrap
        Bootstrap draws of each.
    residual_scale
        Huber scale of the residuals.
    delta
        Huber threshold.
    objective
        The fit's objective value.
    """

    law: ScalingLaw
    params: dict[str, float]
    bootstrap: dict[str, np.ndarray]
    residual_scale: float
    delta: float
    objective: float

    def log_mu(self, runs: RunTable, *, bootstrap: bool = True) -> np.ndarray:
        """Draws of the law's log loss at each run.

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        bootstrap
            Use the bootstrap draws (else the point fit).

        Returns
        -------
        numpy.ndarray
            (draws, runs).
        """
        x = {k: v[None, :] for k, v in log_inputs(self.law, runs).items()}
        source = self.bootstrap if bootstrap else {k: np.array([v]) for k, v in self.params.items()}
        return self.law.log_loss(NUMPY, x, {k: v[:, None] for k, v in source.items()})

    def predictive_log_draws(self, runs: RunTable, *, seed: int = 0) -> np.ndarray:
        """Replicated log losses (law plus Huber noise).

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        seed
            Random seed.

        Returns
        -------
        numpy.ndarray
            (draws, runs).
        """
        mu = self.log_mu(runs)
        rng = np.random.default_rng(seed)
        return Huber(self.delta).draw(rng, mu, np.full(mu.shape, self.residual_scale), {})

    def pointwise_log_likelihood(self, runs: RunTable) -> np.ndarray:
        """log p(log loss | draw) of each run.

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).

        Returns
        -------
        numpy.ndarray
            (draws, runs).
        """
        mu = self.log_mu(runs)
        return Huber(self.delta).logpdf(np.log(runs.loss)[None, :], mu, self.residual_scale, {})


def huber_fit(runs: RunTable, *, law: str | ScalingLaw = "chinchilla", delta: float = 1e-3, starts: int = 64,
              bootstrap: int = 100, seed: int = 0) -> ClassicalFit:
    """Huber-loss fit in log space from ``starts`` starting points, with ``bootstrap`` resample refits.

    Starting points are drawn from the law's data-scaled default priors (plus their medians).

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    delta
        Huber threshold.
    starts
        Starting points.
    bootstrap
        Bootstrap refits.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    ClassicalFit
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

