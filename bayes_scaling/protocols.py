"""The two contracts the rest of the package is written against.

* :class:`Predictive` — what scores held-out runs (back-tests, LOO, leave-future-out): the
  law's mean at the runs, predictive draws of their log loss, and the pointwise
  log-likelihood.  :class:`~bayes_scaling.posterior.fit_result.Fit` (a posterior) and
  :class:`~bayes_scaling.compare.classical.ClassicalFit` (a point fit with bootstrap draws) keep it.
* :class:`Forecasts` — what tables, plots, energy and lifetime tables read: draws of the
  loss at compute budgets or at (N, D), the compute-optimal allocation and the compute that
  reaches a target.  :class:`~bayes_scaling.forecast.forecaster.Forecaster` (one law) and
  :class:`~bayes_scaling.forecast.averaging.LawAverage` (several) keep it.

Both are ``typing.Protocol``: a new implementation needs no base class, and
``tests/test_protocols.py`` checks every implementation against the contract (names and the
shapes of what they return).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ['Forecasts', 'Predictive']


@runtime_checkable
class Predictive(Protocol):
    """A fitted law that scores runs: every array is (draws, runs), on log loss."""

    def log_mu(self, runs: Any) -> np.ndarray:
        """The law's log mean loss at the runs."""

    def predictive_log_draws(self, runs: Any, *, seed: Any = 0) -> np.ndarray:
        """Draws of a new run's log loss at each run's inputs."""

    def pointwise_log_likelihood(self, runs: Any) -> np.ndarray:
        """log p(observed log loss | draw), per draw and run."""


@runtime_checkable
class Forecasts(Protocol):
    """Draws of forecasts: every loss array is (n_draws, points); ``law`` has ``name``,
    ``title`` and ``inputs``; ``fit.runs`` are the training runs; ``structural`` is None when
    the law is taken as exact."""

    n_draws: int
    law: Any
    fit: Any
    structural: Any

    def decades_beyond_data(self, C: Any) -> np.ndarray:
        """Decades of compute beyond the largest training run (0 inside the data)."""

    def loss(self, *, predictive: bool = False, **inputs: Any) -> np.ndarray:
        """Loss draws at inputs (N and D, or C)."""

    def loss_at_compute(self, C: Any, *, allocation: str = "optimal", tokens_per_param: float | None = None,
                        N: float | None = None, predictive: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """Loss draws at compute budgets and how the budget was allocated."""

    def allocation(self, C: Any, *, method: str = "auto") -> dict[str, Any]:
        """Compute-optimal N*, D* draws at budgets."""

    def compute_for_loss(self, target: float, *, predictive: bool = False) -> dict[str, Any]:
        """Draws of the compute reaching a target loss (NaN where unreachable) and P(reachable)."""

    def expected_log_loss_per_draw(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """log expected loss where N and D differ per draw."""
