"""Step 2's structural error: how far a task's sigmoid, fitted to smaller runs, misses the larger
ones.

A sigmoid fitted to the runs below some compute forecasts the larger runs with errors larger than
its posterior says (a task's curve bends later or sooner than the fitted one). In the logit of a
task's accuracy above chance, ``q = (acc − c) / (1 − c)``, the error at a run ``d`` decades beyond
the largest fitted budget is modelled as a drift that grows with the distance:

    logit q  →  logit q + σ · z_t · d,        z_t ~ N(0, 1) per task and posterior draw

``σ`` (logit units per decade) is learned from the fitted runs themselves: step 2 is refitted
below the cuts of :func:`inner_cuts` and its forecasts scored at the fitted runs above them, at
their observed inputs (step 1's own error is the law's structural error). A refit's predictive
spread (its posterior and a run's noise) is what it already admits; σ's posterior on a grid,
``σ ~ HalfNormal(1)``, each error Student-t about zero with that spread plus
``((1 − c)·q̂(1 − q̂)·σ·d)²`` (the drift carried to the accuracy scale), gives one σ per forecast
draw. A forecast inside the data (``d ≤ 0``) has none. Why these choices:
``docs/design/downstream.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SIGMA_GRID", "drift_accuracy", "inner_cuts", "sample_sigma", "sigma_posterior"]

log = logging.getLogger(__name__)

#: The grid of σ (logit units per decade) the posterior is evaluated on.
SIGMA_GRID = np.linspace(0.0, 6.0, 601)
#: Scale of σ's half-normal prior.
SIGMA_PRIOR_SCALE = 1.0
#: Student-t degrees of freedom of a back-test's errors (as in step 2's likelihood).
NU = 5.0
#: Fewest runs below an inner cut.
MIN_INNER_RUNS = 6
#: Distances (decades) the inner cuts aim at.
INNER_DISTANCES = (1.0, 0.75, 0.5, 0.25)


def inner_cuts(compute: np.ndarray, *, source: str = "runs", distances: Sequence[float] = INNER_DISTANCES,
               min_train: int = MIN_INNER_RUNS) -> list[float]:
    """Cuts inside the fitted runs for step 2's own back-tests
    (:func:`~bayes_scaling.calibration.rolling.extrapolation_cuts` at ``distances``); none when
    the runs are too few, said in the log.

    Parameters
    ----------
    compute
        Compute of each fitted run (FLOP).
    source
        Named in messages.
    distances
        Target distances (decades).
    min_train
        Fewest runs below a cut.

    Returns
    -------
    list of float
        Cuts in FLOP (runs with C ≤ cut are refitted).
    """
    from bayes_scaling.calibration.rolling import extrapolation_cuts
    from bayes_scaling.errors import InputError

    try:  # the cuts read only the runs' compute and name
        return extrapolation_cuts(SimpleNamespace(C=np.asarray(compute, dtype=float), source=source),
                                  distances=distances, min_train=min_train, min_test=1)
    except InputError:
        log.warning("%s: too few runs for step 2's own back-tests; σ is its prior alone", source)
        return []


def _drift_slope(predicted: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """d acc / d logit q at the forecast: (1 − c)·q(1 − q)."""
    q = np.clip((predicted - chance) / (1 - chance), 1e-6, 1 - 1e-6)
    return (1 - chance) * q * (1 - q)


def sigma_posterior(errors: pd.DataFrame, chance: np.ndarray) -> np.ndarray:
    """σ's posterior on :data:`SIGMA_GRID` (normalized weights), from the inner back-tests'
    errors; the prior alone without any.

    Parameters
    ----------
    errors
        One row per held-out accuracy of an inner back-test: ``task`` (index into ``chance``),
        ``d`` (decades beyond that back-test's fitted runs), ``error`` (observed − the refit's
        predictive median), ``predicted`` (that median) and ``spread`` (the refit's predictive
        sd: its posterior and a run's noise).
    chance
        Chance level per task.

    Returns
    -------
    numpy.ndarray
        Weights on :data:`SIGMA_GRID`, summing to 1.

    Notes
    -----
    Each error is Student-t about zero with variance ``spread² + (slope · σ · d)²``, the slope
    ``(1 − c)·q̂(1 − q̂)`` carrying the logit drift to the accuracy; the runs are taken as
    independent given σ.
    """
    log_w = stats.halfnorm.logpdf(SIGMA_GRID, scale=SIGMA_PRIOR_SCALE)
    if len(errors):
        task = errors["task"].to_numpy(dtype=int)
        drift = _drift_slope(errors["predicted"].to_numpy(dtype=float), chance[task]) * errors["d"].to_numpy()
        sd = np.sqrt(errors["spread"].to_numpy(dtype=float)[None, :] ** 2 + (SIGMA_GRID[:, None] * drift) ** 2)
        log_w = log_w + stats.t.logpdf(errors["error"].to_numpy()[None, :] / sd, NU).sum(axis=1) \
            - np.log(sd).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def sample_sigma(weights: np.ndarray, size: int, *, seed: int = 0) -> np.ndarray:
    """Draws of σ from its grid posterior, jittered within a grid step.

    Parameters
    ----------
    weights
        :func:`sigma_posterior`'s weights.
    size
        Number of draws.
    seed
        Seed.

    Returns
    -------
    numpy.ndarray
        (size,), non-negative.

    Examples
    --------
    >>> weights = np.exp(-0.5 * ((SIGMA_GRID - 0.5) / 0.05) ** 2)
    >>> round(float(np.median(sample_sigma(weights / weights.sum(), 4000, seed=1))), 1)
    0.5
    """
    rng = np.random.default_rng([seed, 47])
    step = SIGMA_GRID[1] - SIGMA_GRID[0]
    return np.clip(SIGMA_GRID[rng.choice(SIGMA_GRID.size, size=size, p=weights)]
                   + rng.uniform(-step / 2, step / 2, size), 0.0, None)


def drift_accuracy(p: np.ndarray, chance: np.ndarray, sigma: np.ndarray, beyond: np.ndarray, *,
                   seed: int = 0) -> np.ndarray:
    """Expected accuracies ``p`` (draws, tasks, points) moved by the structural drift.

    Parameters
    ----------
    p
        Accuracies on the fitted curves, (draws, tasks, points).
    chance
        Chance level per task, broadcastable to ``p``.
    sigma
        σ per draw, (draws,).
    beyond
        Decades beyond the fitted data per point (≤ 0 inside it), (points,) or (draws, points).
    seed
        Seed of the per-(draw, task) slopes.

    Returns
    -------
    numpy.ndarray
        Same shape as ``p``.

    Examples
    --------
    >>> p = np.full((2000, 1, 2), 0.6)
    >>> moved = drift_accuracy(p, 0.25, np.full(2000, 1.0), np.array([0.0, 1.0]), seed=1)
    >>> bool(np.all(moved[:, 0, 0] == 0.6)), round(float(np.median(moved[:, 0, 1])), 2)
    (True, 0.6)
    """
    d = np.clip(np.asarray(beyond, dtype=float), 0.0, None)
    d = d[None, None, :] if d.ndim == 1 else d[:, None, :]
    rng = np.random.default_rng([seed, 53])
    slope = sigma[:, None, None] * rng.standard_normal((p.shape[0], p.shape[1], 1))
    q = np.clip((p - chance) / (1 - chance), 1e-9, 1 - 1e-9)
    shifted = 1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + slope * d)))
    return np.where(d > 0, chance + (1 - chance) * shifted, p)
