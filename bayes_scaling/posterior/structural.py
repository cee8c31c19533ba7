"""Structural error: how far a fitted law's forecast drifts from real runs beyond the data.

A law fitted below some compute forecasts the runs beyond it with errors that are systematic and
larger than its posterior says.  The error in log loss at a run ``d = log10(C / C_ref)`` decades
beyond the largest training budget ``C_ref`` (zero inside the data) is modelled as::

    δ = (b + τ·z)·d + ω·d·ε,      z, ε ~ N(0, 1)

``b`` is the drift per decade, ``τ`` how much the drift of one fit varies (``z`` is shared by every
run forecast from one posterior draw), ``ω`` the extra run-to-run scatter per decade.  ``ρ ≤ 1``
scales the law-only spread: a forecast is the law of a central posterior draw plus ρ × each draw's
deviation from it (:meth:`StructuralError.respread`), then the drift and scatter.

The errors of one back-test are correlated through the shared slope; their likelihood is the
multivariate normal ``N(b·d, diag(ρ²s² + ω²d²) + τ²·d·dᵀ)`` (``s``: the law's own predictive
spread), evaluated in closed form (:func:`cut_loglik`, written once for numpy and PyTensor).
Why these choices: ``docs/design/structural-error.md``.

"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.options import DISCREPANCIES, DRIFT_RULES, LEARNING  # noqa: F401 - the modes, named there

PARAMS = ("b", "tau", "omega", "rho")


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


#: What a fit keeps of its internal back-tests: per held-out run, the cut, its position in the
#: fitted runs, its compute, distance, the error of the law-only median and the law-only spread.
BACKTEST_COLUMNS = ("cut", "run", "C", "d", "error", "spread")


def cut_loglik(xp: Any, b, tau, omega, d, e, s):
    """log N(e; b·d, diag(s² + ω²d²) + τ²·d·dᵀ) for the errors ``e`` of one back-test.

    ``b, tau, omega`` broadcast against a leading axis (draws, shape (M, 1)); ``d, e, s``
    are the held-out runs' distances, errors and law-only spreads (shape (1, n)).  The
    rank-one covariance is inverted by Sherman–Morrison.  ``xp`` is numpy or
    ``pytensor.tensor``.

    Parameters
    ----------
    xp
        The array namespace: numpy or ``pytensor.tensor``.
    b
        Drift.
    tau
        Spread of the drift per decade.
    omega
        Extra scatter per decade.
    d
        Decades beyond the data of each held-out run.
    e
        Errors of the law-only medians (log loss).
    s
        Law-only predictive spreads.

    Returns
    -------
    array
    """
    b, t2 = _per_draw(xp, b), _per_draw(xp, tau * tau)
    k, big_p, big_q = quadratic_in_drift(xp, cut_sums(xp, omega, d, e, s), t2, d.shape[-1])
    return k - 0.5 * big_p * b * b + big_q * b


def cut_sums(xp: Any, omega, d, e, s) -> tuple:
    """What the likelihood of one back-test needs of its runs, for any drift b and slope sd τ:
    Σ e²/v, Σ e·d/v, Σ d²/v and Σ log v per value of ω, with v = s² + ω²d².

    Parameters
    ----------
    xp
        The array namespace: numpy or ``pytensor.tensor``.
    omega
        Extra scatter per decade.
    d
        Decades beyond the data of each held-out run.
    e
        Errors of the law-only medians (log loss).
    s
        Law-only predictive spreads.

    Returns
    -------
    tuple
    """
    var = s * s + (omega * omega) * (d * d)
    inv = 1.0 / var
    return (xp.sum(e * e * inv, axis=-1), xp.sum(e * d * inv, axis=-1), xp.sum(d * d * inv, axis=-1),
            xp.sum(xp.log(var), axis=-1))


def quadratic_in_drift(xp: Any, sums: tuple, t2, n: int) -> tuple:
    """One back-test's log-likelihood as K − ½P·b² + Q·b, from :func:`cut_sums` and τ² = ``t2``.

    Sherman–Morrison on diag(v) + τ²·d·dᵀ: P = Σd²/v / (1 + τ²Σd²/v), Q = Σe·d/v / (1 + τ²Σd²/v),
    K = −½(Σe²/v − τ²(Σe·d/v)²/(1 + τ²Σd²/v) + Σ log v + log(1 + τ²Σd²/v)) − n·½log 2π.
    Being quadratic in b is what lets :func:`update` integrate the drift in closed form.

    Parameters
    ----------
    xp
        The array namespace: numpy or ``pytensor.tensor``.
    sums
        :func:`cut_sums`'s result.
    t2
        τ².
    n
        Runs held out.

    Returns
    -------
    tuple
        (K, P, Q).
    """
    ee, ed, dd, logdet = sums
    one_plus = 1.0 + t2 * dd
    k = -0.5 * (ee - t2 * ed * ed / one_plus + logdet + xp.log(one_plus)) - n * _HALF_LOG_2PI
    return k, dd / one_plus, ed / one_plus


def _per_draw(xp: Any, x):
    """(M, 1) → (M,), to meet the per-draw sums; scalars and (M,) pass through."""
    return xp.squeeze(x, axis=-1) if getattr(x, "ndim", 0) > 1 else x


def spread_scale(xp: Any, log_shrink):
    """ρ = exp(−u), u = exp(``log_shrink``): how many times the law-only predictive's spread a
    dataset's forecasts scatter about its centre, at most 1 (``xp``: numpy or ``pytensor.tensor``).

    Parameters
    ----------
    xp
        The array namespace: numpy or ``pytensor.tensor``.
    log_shrink
        log u.

    Returns
    -------
    array
    """
    return xp.exp(-xp.exp(log_shrink))


def _cuts(errors: pd.DataFrame) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for _, g in errors.groupby("cut", sort=True):
        yield g["d"].to_numpy(float), g["error"].to_numpy(float), g["spread"].to_numpy(float)


@dataclass
class StructuralError:
    """Draws of (b, τ, ω) for one fit, and the training budget C_ref they are measured from.

    ``shift(C, rng)`` gives draws of δ at budgets C, shape (draws, points).  ``backtests``
    holds the fit's internal back-tests (:data:`BACKTEST_COLUMNS`), or None: they rank laws by
    how they forecast (:func:`bayes_scaling.compare.lfo.lfo_weights`) and, for ``"calibrated"``,
    updated the population.

    Parameters
    ----------
    b
        Drift draws.
    tau
        Drift-spread draws.
    omega
        Scatter draws.
    c_ref
        The largest training budget in FLOP: distances are measured from it.
    source
        Where the draws come from.
    info
        What the draws were learned from.
    backtests
        The fit's own back-tests.
    rho
        ρ draws.
    """

    b: np.ndarray
    tau: np.ndarray
    omega: np.ndarray
    c_ref: float
    source: str
    info: dict[str, Any] = field(default_factory=dict)
    backtests: pd.DataFrame | None = None
    rho: np.ndarray | None = None

    def __post_init__(self):
        if self.rho is None:  # learned before ρ existed: the law's own spread, as is
            self.rho = np.ones_like(np.asarray(self.b, dtype=float))

    @property
    def n_draws(self) -> int:
        return len(self.b)

    def spread_scale(self, C: np.ndarray | None = None) -> np.ndarray:
        """ρ of each draw, shape (draws, 1); with budgets ``C``, ρ beyond the training data and 1
        inside it, shape (draws, points).

        Parameters
        ----------
        C
            Compute budgets in FLOP.

        Returns
        -------
        numpy.ndarray
        """
        rho = self.rho[:, None]
        return rho if C is None else np.where(self._distance_2d(C) > 0, rho, 1.0)

    def respread(self, log_draws: np.ndarray, centre: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
        """Law-only draws of log loss (draws, points) with their spread about ``centre`` (the law of
        the fit's central draw, broadcast against them) scaled by ρ: centre + ρ·(draw − centre) —
        everywhere, or with budgets ``C`` only beyond the data.  For a new run's draws μ + σε this
        scales the law's uncertainty and the noise alike: (centre + ρ(μ − centre)) + ρσε.

        Parameters
        ----------
        log_draws
            Law-only draws of log loss, (draws, points).
        centre
            The central draw's law at the points.
        C
            Compute budgets in FLOP.

        Returns
        -------
        numpy.ndarray
        """
        return centre + self.spread_scale(C) * (log_draws - centre)

    def forecast(self, log_draws: np.ndarray, centre: np.ndarray, C: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
        """Law-only predictive draws of log loss at budgets ``C`` (draws, points) made a forecast with
        this structural error: beyond the data, respread by ρ about ``centre``, then shifted by the
        drift and scatter (:meth:`respread`, :meth:`shift`).

        Parameters
        ----------
        log_draws
            Law-only draws of log loss, (draws, points).
        centre
            The central draw's law at the points.
        C
            Compute budgets in FLOP.
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
        """
        return self.respread(log_draws, centre, C) + self.shift(C, rng)

    def distance(self, C: np.ndarray) -> np.ndarray:
        """Decades beyond the training data (0 inside it).

        Parameters
        ----------
        C
            Compute budgets in FLOP.

        Returns
        -------
        numpy.ndarray
        """
        return np.maximum(np.log10(np.asarray(C, dtype=float) / self.c_ref), 0.0)

    def slopes(self, rng: np.random.Generator) -> np.ndarray:
        """One drift per decade per draw: b + τ·z.

        Parameters
        ----------
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
        """
        return self.b + self.tau * rng.standard_normal(self.n_draws)

    def _distance_2d(self, C: np.ndarray) -> np.ndarray:
        d = self.distance(np.atleast_1d(C))
        return d if d.ndim == 2 else d[None, :]

    def drift(self, C: np.ndarray, slopes: np.ndarray) -> np.ndarray:
        """The drift κ·d of each draw's slope at budgets ``C`` (1-D, or one row per draw).

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        slopes
            One slope per draw.

        Returns
        -------
        numpy.ndarray
        """
        return slopes[:, None] * self._distance_2d(C)

    def scatter(self, C: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new run's extra scatter ω·d·ε at budgets ``C``: shape (draws, points).

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
        """
        d = self._distance_2d(C)
        return self.omega[:, None] * d * rng.standard_normal(np.broadcast_shapes((self.n_draws, 1), d.shape))

    def shift(self, C: np.ndarray, rng: np.random.Generator, *, slopes: np.ndarray | None = None) -> np.ndarray:
        """Draws of δ = drift + scatter in log loss at budgets ``C``: shape (draws, len(C)).

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        rng
            A numpy random Generator.
        slopes
            Slopes to use (None: drawn).

        Returns
        -------
        numpy.ndarray
        """
        kappa = self.slopes(rng) if slopes is None else slopes
        return self.drift(C, kappa) + self.scatter(C, rng)

    def thinned(self, keep: np.ndarray) -> StructuralError:
        """The same error over the draws ``keep``.

        Parameters
        ----------
        keep
            Indices of the draws kept.

        Returns
        -------
        StructuralError
        """
        return StructuralError(self.b[keep], self.tau[keep], self.omega[keep], self.c_ref, self.source, self.info,
                               self.backtests, self.rho[keep])

    def summary(self) -> pd.DataFrame:
        """Medians and intervals of b, τ, ω, ρ.

        Returns
        -------
        pandas.DataFrame
        """
        rows = {name: getattr(self, name) for name in PARAMS}
        return pd.DataFrame({k: {"median": np.median(v), "q5": np.quantile(v, 0.05), "q95": np.quantile(v, 0.95)}
                             for k, v in rows.items()}).T

    def describe(self) -> str:
        """Its draws in words (medians, [5%, 95%]): the drift, its spread, the extra scatter and ρ.

        Returns
        -------
        str
        """
        se = self.summary()
        return (f"drift {se.loc['b', 'median']:+.4f} log loss per decade [{se.loc['b', 'q5']:+.4f}, "
                f"{se.loc['b', 'q95']:+.4f}], spread of the drift {se.loc['tau', 'median']:.4f}, extra scatter "
                f"{se.loc['omega', 'median']:.4f} per decade; the law's own spread × ρ = {se.loc['rho', 'median']:.2f} "
                f"[{se.loc['rho', 'q5']:.2f}, {se.loc['rho', 'q95']:.2f}]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (reference budget, source, what it learned from).

        Returns
        -------
        dict
        """
        return {"c_ref": self.c_ref, "source": self.source, "info": self.info}

