"""The model size that is optimal over a model's life: training plus serving.

Chinchilla-optimal allocation minimises training compute for a loss.  A model that then
serves T tokens costs 2·N FLOP per token more (Sardana et al. 2024, *Beyond Chinchilla-Optimal*,
with point estimates), so the optimum moves to smaller models trained on more tokens as T grows.
Here, for every posterior draw of the loss law (structural error included), the model size N
that reaches a target loss at the least total compute — or total energy, with training energy
per FLOP and serving energy per token drawn from their own posteriors — is found numerically:
an outer golden-section search on log N, and for each N the tokens D that reach the target by
bisection on log D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError

__all__ = ['SERVE_FLOP_PER_PARAM_TOKEN', 'ServingCost', 'tokens_for_loss', 'lifetime_optimum', 'lifetime_table']

#: Inference FLOP per active parameter per token (a forward pass).
SERVE_FLOP_PER_PARAM_TOKEN = 2.0
_LOG_N = (math.log(1e6), math.log(1e15))
_LOG_D = (math.log(1e6), math.log(1e24))
JOULES_PER_MWH = 3.6e9


class ServingCost:
    """Per-draw cost of training and serving, in FLOP (``energy=False``) or joules.

    ``joules_per_flop``: draws of training energy per FLOP; ``joules_per_token_ref`` and
    ``slope``: draws of the serving energy per token of a model with ``n_ref`` active parameters,
    and of its elasticity in N (J/token ∝ N^slope).  Without them the cost is FLOP.

    Parameters
    ----------
    joules_per_flop
        Training J per FLOP draws (None: FLOP).
    joules_per_token_ref
        Serving J per token at ``n_ref``.
    slope
        Slope of log J per token in log N.
    n_ref
        The reference model size.
    """

    def __init__(self, *, joules_per_flop: np.ndarray | None = None, joules_per_token_ref: np.ndarray | None = None,
                 slope: np.ndarray | None = None, n_ref: float = 70e9):
        given = [x is not None for x in (joules_per_flop, joules_per_token_ref, slope)]
        if any(given) and not all(given):
            raise InputError("an energy cost needs joules_per_flop, joules_per_token_ref and slope together")
        self.energy = all(given)
        self.joules_per_flop, self.joules_per_token_ref, self.slope, self.n_ref = (
            joules_per_flop, joules_per_token_ref, slope, n_ref)

    def resized(self, draws: int) -> ServingCost:
        """The same cost with its draws cycled or cut to ``draws`` (to pair them with loss draws).

        Parameters
        ----------
        draws
            Draws wanted.

        Returns
        -------
        ServingCost
        """
        if not self.energy:
            return self
        return ServingCost(joules_per_flop=np.resize(self.joules_per_flop, draws),
                           joules_per_token_ref=np.resize(self.joules_per_token_ref, draws),
                           slope=np.resize(self.slope, draws), n_ref=self.n_ref)

    def training(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Training cost of N, D per draw.

        Parameters
        ----------
        n
            Parameters N (per draw).
        d
            Tokens D (per draw).

        Returns
        -------
        numpy.ndarray
            Training cost per draw.
        """
        flop = FLOP_PER_PARAM_TOKEN * n * d
        return flop * self.joules_per_flop if self.energy else flop

    def serving(self, n: np.ndarray, tokens: float) -> np.ndarray:
        """Serving cost of ``tokens`` at N per draw.

        Parameters
        ----------
        n
            Parameters N (per draw).
        tokens
            Tokens served.

        Returns
        -------
        numpy.ndarray
            Serving cost per draw.
        """
        if self.energy:
            return self.joules_per_token_ref * (n / self.n_ref) ** self.slope * tokens
        return SERVE_FLOP_PER_PARAM_TOKEN * n * tokens


def tokens_for_loss(fc, log_n: np.ndarray, target: float, *, iterations: int = 70) -> np.ndarray:
    """log D at which each draw's expected loss (structural drift included) reaches ``target`` with
    log N = ``log_n`` (one per draw); NaN where even 10^24 tokens do not reach it.

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` (or a law average).
    log_n
        log N per draw.
    target
        The target loss.
    iterations
        Iterations of the search.

    Returns
    -------
    numpy.ndarray
    """
    log_t = math.log(target)

    def log_loss(log_d):
        return fc.expected_log_loss_per_draw(np.exp(log_n)[:, None], np.exp(log_d)[:, None])[:, 0]

    lo = np.full_like(log_n, _LOG_D[0])
    hi = np.full_like(log_n, _LOG_D[1])
    reachable = log_loss(hi) <= log_t
    for _ in range(iterations):
        mid = (lo + hi) / 2
        above = log_loss(mid) > log_t
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(reachable, (lo + hi) / 2, np.nan)


def lifetime_optimum(fc, *, target_loss: float, tokens_served: float, cost: ServingCost | None = None,
                     iterations: int = 80) -> dict[str, np.ndarray]:
    """Per posterior draw, the N (and D) reaching ``target_loss`` at the least training + serving cost.

    Returns draws of ``N``, ``D``, ``training`` and ``serving`` cost (FLOP, or J with an energy
    ``cost``), ``total``; draws that cannot reach the target are NaN.

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` (or a law average).
    target_loss
        The loss to reach (nats per token).
    tokens_served
        Tokens served over the model's life.
    cost
        The cost of training and serving (default: FLOP).
    iterations
        Iterations of the search.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    if not target_loss > 0 or not tokens_served >= 0:
        raise InputError("target_loss must be positive and tokens_served non-negative")
    cost = (cost or ServingCost()).resized(fc.n_draws)

    def total(log_n):
        log_d = tokens_for_loss(fc, log_n, target_loss)
        n, d = np.exp(log_n), np.exp(log_d)
        value = cost.training(n, d) + cost.serving(n, float(tokens_served))
        return np.where(np.isfinite(value), value, np.inf)

    a = np.full(fc.n_draws, _LOG_N[0])
    b = np.full(fc.n_draws, _LOG_N[1])
    g = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):  # golden section; sizes too small to reach the target cost +inf
        c1, c2 = b - g * (b - a), a + g * (b - a)
        left = total(c1) < total(c2)
        b, a = np.where(left, c2, b), np.where(left, a, c1)
    log_n = (a + b) / 2
    log_d = tokens_for_loss(fc, log_n, target_loss)
    n, d = np.exp(log_n), np.exp(log_d)
    ok = np.isfinite(log_d)
    train, serve = cost.training(n, d), cost.serving(n, float(tokens_served))
    nan = np.full(fc.n_draws, np.nan)
    return {"N": np.where(ok, n, nan), "D": np.where(ok, d, nan), "training": np.where(ok, train, nan),
            "serving": np.where(ok, serve, nan), "total": np.where(ok, train + serve, nan)}


def lifetime_table(fc, *, target_loss: float, tokens_served: Sequence[float], cost: ServingCost | None = None,
                   level: float = 0.9) -> pd.DataFrame:
    """One row per number of tokens served (0 = Chinchilla-optimal): N*, D*, tokens per parameter,
    training, serving and total cost (FLOP or MWh) with ``level`` intervals, and P(serving > training).

    Parameters
    ----------
    fc
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` (or a law average).
    target_loss
        The loss to reach (nats per token).
    tokens_served
        Tokens served over the model's life.
    cost
        The cost of training and serving (default: FLOP).
    level
        Probability of the credible intervals.

    Returns
    -------
    pandas.DataFrame
    """
    from bayes_scaling.intervals import summarize

    energy = cost is not None and cost.energy
    unit = "mwh" if energy else "flop"
    scale = JOULES_PER_MWH if energy else 1.0
    rows = []
    base = lifetime_optimum(fc, target_loss=target_loss, tokens_served=0.0, cost=cost)
    for tokens in [0.0, *sorted(float(t) for t in tokens_served if t > 0)]:
        opt = base if tokens == 0 else lifetime_optimum(fc, target_loss=target_loss, tokens_served=tokens, cost=cost)
        ok = np.isfinite(opt["total"])
        row: dict[str, Any] = {"tokens_served": tokens, "p_reachable": float(ok.mean())}
        if ok.sum() < 2:
            rows.append(row)
            continue
        values = {"N": opt["N"], "D": opt["D"], "tokens_per_param": opt["D"] / opt["N"],
                  "N_vs_chinchilla_optimal": opt["N"] / base["N"],
                  f"training_{unit}": opt["training"] / scale, f"serving_{unit}": opt["serving"] / scale,
                  f"total_{unit}": opt["total"] / scale}
        for key, v in values.items():
            s = summarize(v[np.isfinite(v)], ci_prob=level).iloc[0]
            row |= {key: s["median"], f"{key}_lower": s["lower"], f"{key}_upper": s["upper"]}
        row["p_serving_exceeds_training"] = float(np.mean(opt["serving"][ok] > opt["training"][ok]))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(level=level, target_loss=target_loss, objective="energy" if energy else "compute",
                       note="tokens_served = 0 is the Chinchilla-optimal (training-only) allocation")
    return table
