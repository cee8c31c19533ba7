"""Pre-posterior analysis: how narrow a forecast's interval is expected to be once some new runs
have been trained, computed from the current posterior without refitting.

For each of ``S`` simulated outcomes a source posterior draw gives the new runs' log losses, drawn
from the current predictive (the law, its structural drift beyond the data, the noise); the
posterior after those runs is the current draws reweighted by the new runs' likelihood under each
draw's law (importance weights).  The forecast after is the reweighted law at the target plus the
structural drift from the new largest run to the target: a run nearer the target shrinks the
extrapolation distance as well as the law's uncertainty.  The expected width is the mean over the
outcomes; each outcome uses the same uniforms throughout (common random numbers), so the widths
of two candidate sets differ by their runs, not by simulation noise.

Why importance weights and not refits, what it costs and how well it predicts the widths of real
refits: ``docs/design/experiment-design.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Preposterior", "effective_sample_size"]


def effective_sample_size(log_weights: np.ndarray) -> np.ndarray:
    """Kish's effective sample size of each row of unnormalized log weights.

    Parameters
    ----------
    log_weights
        Log weights, (outcomes, draws).

    Returns
    -------
    numpy.ndarray
        One effective sample size per row.

    Examples
    --------
    >>> round(float(effective_sample_size(np.zeros((1, 100)))[0]), 6)
    100.0
    """
    w = _normalized(log_weights)
    return 1.0 / np.sum(w * w, axis=-1)


def _normalized(log_weights: np.ndarray) -> np.ndarray:
    w = np.exp(log_weights - log_weights.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


@dataclass
class Preposterior:
    """The current posterior of a forecast, and what new runs would tell it.

    Parameters
    ----------
    target
        Draws of the forecast quantity's law part at the target, in logs (draws,): log loss at
        the compute-optimal allocation without the structural drift, or log N*.
    slopes
        Each draw's structural drift per decade (draws,), or None: no drift (N*, or a fit taken as
        exact).
    c_ref
        The largest fitted run's compute (FLOP): the drift is measured from it.
    target_compute
        The target budget (FLOP).
    law_log_loss
        Each draw's law at the candidates, log loss (draws, candidates): what the weights score.
    outcomes
        Simulated log losses of the candidates (outcomes, candidates), each row from one draw of
        the current predictive.
    log_density
        ``log_density(y, mu)``: log density of observed log losses ``y`` (outcomes, 1) under the
        laws ``mu`` (1, draws); the fit's likelihood with each draw's noise.
    level
        The credible level of the widths.
    seed
        Seed of the resampling uniforms and of the drift's pairing.
    """

    target: np.ndarray
    slopes: np.ndarray | None
    c_ref: float
    target_compute: float
    law_log_loss: np.ndarray
    outcomes: np.ndarray
    log_density: Callable[[np.ndarray, np.ndarray], np.ndarray]
    level: float = 0.9
    seed: int = 0
    _uniforms: np.ndarray = field(init=False, repr=False)
    _pairing: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        rng = np.random.default_rng([self.seed, 37])
        n_out, n_draws = self.outcomes.shape[0], len(self.target)
        # systematic resampling: one offset per outcome, a fixed drift draw per resampled slot
        self._uniforms = (np.arange(n_draws)[None, :] + rng.random((n_out, 1))) / n_draws
        self._pairing = rng.permutation(n_draws)

    @property
    def n_outcomes(self) -> int:
        return self.outcomes.shape[0]

    @property
    def n_draws(self) -> int:
        return len(self.target)

    def start(self) -> np.ndarray:
        """Log weights before any new run: zeros, (outcomes, draws).

        Returns
        -------
        numpy.ndarray
        """
        return np.zeros((self.n_outcomes, self.n_draws))

    def loglik(self, column: int) -> np.ndarray:
        """Each outcome's log likelihood of candidate ``column`` under every draw, (outcomes, draws).

        Parameters
        ----------
        column
            The candidate.

        Returns
        -------
        numpy.ndarray
        """
        return self.log_density(self.outcomes[:, column:column + 1], self.law_log_loss[None, :, column])

    def distance(self, c_top: float) -> float:
        """Decades from the largest run (``c_top``, at least the fit's own) to the target.

        Parameters
        ----------
        c_top
            The largest run's compute after the new runs.

        Returns
        -------
        float
        """
        return float(max(np.log10(self.target_compute / max(c_top, self.c_ref)), 0.0))

    def quantiles(self, log_weights: np.ndarray, c_top: float) -> np.ndarray:
        """The forecast's lower, median and upper quantiles after the runs that gave ``log_weights``,
        per outcome, in logs: (outcomes, 3).

        Parameters
        ----------
        log_weights
            Log weights of the draws, (outcomes, draws).
        c_top
            The largest run's compute after the new runs.

        Returns
        -------
        numpy.ndarray
        """
        w = _normalized(log_weights)
        cdf = np.cumsum(w, axis=1)
        cdf[:, -1] = 1.0
        rows = np.arange(self.n_outcomes)[:, None]
        # one searchsorted for all rows: row r's cdf and uniforms lie in [r, r + 1]
        picks = np.searchsorted((cdf + rows).ravel(), (self._uniforms + rows).ravel()).reshape(cdf.shape)
        picks = np.minimum(picks - rows * self.n_draws, self.n_draws - 1)
        values = self.target[picks]
        if self.slopes is not None:
            values = values + self.slopes[self._pairing][None, :] * self.distance(c_top)
        tail = (1.0 - self.level) / 2.0
        return np.quantile(values, [tail, 0.5, 1.0 - tail], axis=1).T

    def widths(self, log_weights: np.ndarray, c_top: float) -> np.ndarray:
        """The interval's width relative to its median, per outcome: (exp(upper) − exp(lower)) /
        exp(median), a fraction of the forecast.

        Parameters
        ----------
        log_weights
            Log weights of the draws, (outcomes, draws).
        c_top
            The largest run's compute after the new runs.

        Returns
        -------
        numpy.ndarray

        Examples
        --------
        A normal posterior with sd 0.1 in logs has a 90% interval 2 × 1.645 × 0.1 wide (at first
        order): no new run, no change.

        >>> rng = np.random.default_rng(0)
        >>> pre = Preposterior(target=rng.normal(0, 0.1, 4000), slopes=None, c_ref=1.0, target_compute=10.0,
        ...                    law_log_loss=np.zeros((4000, 1)), outcomes=np.zeros((8, 1)),
        ...                    log_density=lambda y, mu: np.zeros(np.broadcast_shapes(y.shape, mu.shape)))
        >>> round(float(pre.widths(pre.start(), 1.0).mean()), 2)
        0.33
        """
        q = np.exp(self.quantiles(log_weights, c_top))
        return (q[:, 2] - q[:, 0]) / q[:, 1]
