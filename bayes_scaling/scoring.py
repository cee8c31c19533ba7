"""Scores of probabilistic predictions of held-out runs, from predictive draws.

Every predictor (a Bayesian fit or the classical bootstrap baseline) supplies draws of the
log loss of each held-out run, shape (draws, runs), and a pointwise log predictive density;
the same functions score them all, so comparisons are like for like.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

from bayes_scaling.intervals import equal_tailed

__all__ = ['coverage', 'crps', 'log_predictive_density', 'median_abs_error', 'score', 'LEVELS']

LEVELS = (0.5, 0.8, 0.9, 0.95)


def coverage(draws: np.ndarray, observed: np.ndarray, level: float) -> float:
    """Share of observations inside the equal-tailed ``level`` predictive interval.

    Parameters
    ----------
    draws
        Predictive draws, shape (draws, observations).
    observed
        The observations, one per column of ``draws``.
    level
        Probability of the interval.

    Returns
    -------
    float
        Between 0 and 1.
    """
    lo, hi = equal_tailed(draws, level)
    return float(np.mean((observed >= lo) & (observed <= hi)))


def crps(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of each observation (lower is better), from samples.

    CRPS = E|X − y| − ½ E|X − X'|, with the second term computed exactly from sorted samples.

    Parameters
    ----------
    draws
        Predictive draws, shape (draws, observations).
    observed
        The observations, one per column of ``draws``.

    Returns
    -------
    numpy.ndarray
        One score per observation, in the units of the draws.
    """
    x = np.sort(np.asarray(draws, dtype=float), axis=0)
    n = x.shape[0]
    term1 = np.mean(np.abs(x - observed[None, :]), axis=0)
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    term2 = np.sum(weights * x, axis=0) / (n * n)
    return term1 - term2


def log_predictive_density(pointwise_loglik: np.ndarray) -> np.ndarray:
    """log of the posterior-averaged density of each observation: log mean_s p(y | θ_s).

    Parameters
    ----------
    pointwise_loglik
        log p(y_i | θ_s), shape (draws, observations).

    Returns
    -------
    numpy.ndarray
        One log density per observation.
    """
    return logsumexp(pointwise_loglik, axis=0) - np.log(pointwise_loglik.shape[0])


def median_abs_error(draws: np.ndarray, observed: np.ndarray) -> float:
    """Median over runs of |median prediction − observed| (in the units of the draws).

    Parameters
    ----------
    draws
        Predictive draws, shape (draws, observations).
    observed
        The observations, one per column of ``draws``.

    Returns
    -------
    float
    """
    return float(np.median(np.abs(np.median(draws, axis=0) - observed)))


def score(log_draws: np.ndarray, log_observed: np.ndarray, pointwise_loglik: np.ndarray,
          levels: Sequence[float] = LEVELS) -> dict[str, float]:
    """All scores on the log-loss scale; ``mae_pct`` is the median absolute error in percent of loss,
    ``width_90_pct`` the median width of the 90% intervals in percent of the predicted loss,
    ``bias_pct`` the mean signed error (observed − predicted median) in percent.

    Parameters
    ----------
    log_draws
        Predictive draws of log loss, shape (draws, runs).
    log_observed
        Observed log loss of each run.
    pointwise_loglik
        log p(observed | θ_s), shape (draws, runs).
    levels
        Interval probabilities whose coverage is reported.

    Returns
    -------
    dict of str to float
        ``coverage_…`` per level, ``crps``, ``lpd``, ``mae_pct``, ``width_90_pct``, ``bias_pct``.
    """
    out = {f"coverage_{int(round(level * 100))}": coverage(log_draws, log_observed, level) for level in levels}
    out["crps"] = float(np.mean(crps(log_draws, log_observed)))
    out["lpd"] = float(np.mean(log_predictive_density(pointwise_loglik)))
    # The median commutes with exp: take it on the log scale (exp of heavy-tailed draws overflows).
    predicted = np.exp(np.median(log_draws, axis=0))
    observed = np.exp(log_observed)
    out["mae_pct"] = 100 * float(np.median(np.abs(predicted - observed))) / float(np.median(observed))
    lo, hi = equal_tailed(log_draws, 0.9)
    out["width_90_pct"] = 100 * float(np.median((np.exp(hi) - np.exp(lo)) / predicted))
    out["bias_pct"] = 100 * float(np.mean(log_observed - np.median(log_draws, axis=0)))
    return out
