"""Law-averaged forecasts: several laws' forecasts mixed by how well each forecast beyond its data.

When several laws are fitted to the same runs, no single one is known to be true, and the one
that fits best inside the data (LOO) is not always the one that forecasts best beyond it.  A
:class:`LawAverage` is the mixture of the laws' posterior forecasts, each law contributing a
share of the draws equal to its weight — by default its leave-future-out stacking weight
(:func:`bayes_scaling.compare.lfo.lfo_weights`, from the back-tests each fit already ran).  Every
draw is one law's draw, so a draw's loss, allocation and compute for a target stay consistent.

It answers what a :class:`~bayes_scaling.forecast.forecaster.Forecaster` answers — ``loss_at_compute``,
``loss``, ``allocation``, ``compute_for_loss``, ``expected_log_loss_per_draw`` — so
:func:`~bayes_scaling.forecast.tables.forecast_table`, :func:`~bayes_scaling.forecast.tables.target_table`,
the plots and the energy tables take either.  Compute-optimal N* and D* come from the laws of N
and D in the mixture (their weights renormalized); a law of compute alone contributes to the
loss and to the compute for a target only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.forecast.forecaster import Allocation, Forecaster

__all__ = ['LawAverage', 'default_forecaster', 'draw_counts']

log = logging.getLogger(__name__)


def draw_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers of draws proportional to ``weights`` that sum to ``total`` (largest remainder).

    Parameters
    ----------
    weights
        Weights.
    total
        Draws in all.

    Returns
    -------
    numpy.ndarray
    """
    w = np.asarray(weights, dtype=float)
    if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(f"law weights must be non-negative and not all zero, got {list(w)}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


@dataclass(frozen=True)
class MixtureLaw:
    """What a law average says about itself where a law is expected (plots, tables)."""

    name: str
    title: str
    inputs: tuple[str, ...]


class LawAverage:
    """Forecasts from a weighted mixture of several fits' forecasts (one law each, same runs).

    Parameters
    ----------
    forecasters
        Name → :class:`~bayes_scaling.forecast.forecaster.Forecaster`, one per law.
    weights
        Name → weight (normalized here); laws of weight 0 are left out.
    seed
        Seed of which draws each law contributes and of the predictive noise.
    """

    def __init__(self, forecasters: Mapping[str, Forecaster], weights: Mapping[str, float], *, seed: int = 0):
        if set(weights) != set(forecasters):
            raise InputError(f"weights are for {sorted(weights)}, the forecasts for {sorted(forecasters)}")
        names = list(forecasters)
        w = np.array([float(weights[k]) for k in names])
        total = min(f.n_draws for f in forecasters.values())
        counts = draw_counts(w, total)
        rng = np.random.default_rng([seed, 41])
        self.components: dict[str, Forecaster] = {}
        for i, (name, count) in enumerate(zip(names, counts, strict=True)):
            if count:
                f = forecasters[name]
                keep = np.sort(rng.choice(f.n_draws, size=count, replace=False))
                self.components[name] = f.subset(keep, seed=[seed, 43, i])
        self.weights = pd.Series(w / w.sum(), index=pd.Index(names, name="law"), name="weight")
        self.n_draws = int(counts.sum())
        heaviest = self.components[max(self.components, key=lambda k: self.components[k].n_draws)]
        self.fit = heaviest.fit
        self.structural = heaviest.structural
        self.decades_beyond_data = heaviest.decades_beyond_data
        self._nd = {k: f for k, f in self.components.items() if {"N", "D"} <= set(f.law.inputs)}
        shares = ", ".join(f"{k} {self.weights[k]:.2f}" for k in names if self.weights[k] > 0)
        self.law = MixtureLaw(name=f"law average ({shares})", title=f"Law average ({shares})",
                              inputs=("N", "D") if self._nd else ("C",))

    @classmethod
    def from_fits(cls, fits: Mapping[str, Any], *, weights: Mapping[str, float] | None = None,
                  group: str | None = None, max_draws: int | None = None, seed: int = 0) -> LawAverage:
        """The law average of ``fits`` (name → Fit of the same runs); ``weights`` default to
        the leave-future-out stacking weights of :func:`bayes_scaling.compare.lfo.lfo_weights`."""
        from bayes_scaling.compare.lfo import lfo_weights

        if weights is None:
            weights = lfo_weights(fits)["stacking_weight"].to_dict()
        forecasters = {k: Forecaster(f, group=group, max_draws=max_draws, seed=seed) for k, f in fits.items()}
        return cls(forecasters, weights, seed=seed)

    def __repr__(self) -> str:
        return f"<LawAverage of {len(self.components)} laws, {self.n_draws} draws: {self.law.name}>"

    def _repr_html_(self) -> str:
        """Jupyter: the laws, their weights and their share of the draws."""
        table = pd.DataFrame({"weight": self.weights,
                              "draws": [self.components[k].n_draws if k in self.components else 0
                                        for k in self.weights.index]})
        return (f"<p><b>Law average</b> of {len(self.weights)} laws, {self.n_draws} posterior draws</p>"
                + table.to_html(float_format=lambda v: f"{v:.3g}"))

    # ------------------------------------------------------------------ the mixture
    def _require_nd(self, what: str) -> None:
        if not self._nd:
            raise InputError(f"{what} needs a law of both N and D among the averaged laws "
                             f"({', '.join(self.components)})")

    def loss_at_compute(self, C: Any, *, allocation: str = "optimal", tokens_per_param: float | None = None,
                        N: float | None = None, predictive: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """Draws of the loss at budgets ``C`` (see :meth:`Forecaster.loss_at_compute`); ``N`` and
        ``D`` in the returned info come from the laws of N and D.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        allocation
            ``"optimal"``, ``"tokens_per_param"`` or ``"fixed_n"``.
        tokens_per_param
            Tokens per parameter (with ``allocation="tokens_per_param"``).
        N
            Parameters (with ``allocation="fixed_n"``).
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.

        Returns
        -------
        tuple
            (draws × budgets, what was used).
        """
        losses, ns, ds, hows = [], [], [], []
        for name, f in self.components.items():
            loss, info = f.loss_at_compute(C, allocation=allocation, tokens_per_param=tokens_per_param, N=N,
                                           predictive=predictive)
            losses.append(loss)
            hows.append(f"{name}: {info['allocation']}")
            if "N" in info:
                ns.append(np.broadcast_to(info["N"], loss.shape))
                ds.append(np.broadcast_to(info["D"], loss.shape))
        C = np.atleast_1d(np.asarray(C, dtype=float))
        out: dict[str, Any] = {"allocation": "; ".join(hows), "decades_beyond_data": self.decades_beyond_data(C)}
        if ns:
            out.update(N=np.concatenate(ns), D=np.concatenate(ds))
        return np.concatenate(losses), out

    def loss(self, *, predictive: bool = False, **inputs: Any) -> np.ndarray:
        """Draws of the expected (or predictive) loss at the inputs; laws of compute alone are
        evaluated at C = 6·N·D.

        Parameters
        ----------
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.
        **inputs
            Raw inputs: ``N=``, ``D=`` or ``C=``.

        Returns
        -------
        numpy.ndarray
        """
        return np.concatenate([f.loss(predictive=predictive, **inputs) for f in self.components.values()])

    def allocation(self, C: Any, *, method: str = "auto") -> Allocation:
        """Compute-optimal N*, D* from the laws of N and D in the mixture.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        method
            ``"auto"``, ``"closed"`` (closed form) or ``"numeric"``.

        Returns
        -------
        Allocation
        """
        self._require_nd("a compute-optimal allocation")
        parts = [f.allocation(C, method=method) for f in self._nd.values()]
        n, d = np.concatenate([p["N"] for p in parts]), np.concatenate([p["D"] for p in parts])
        return Allocation(N=n, D=d, tokens_per_param=d / n, C=parts[0]["C"],
                          method="; ".join(f"{k}: {p.method}" for k, p in zip(self._nd, parts, strict=True)))

    def expected_log_loss_per_draw(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """log expected loss where N and D differ per draw (rows in the mixture's order).

        Parameters
        ----------
        n
            Parameters N (per draw).
        d
            Tokens D (per draw).

        Returns
        -------
        numpy.ndarray
        """
        out, start = [], 0
        for f in self.components.values():
            stop = start + f.n_draws
            out.append(f.expected_log_loss_per_draw(n[start:stop], d[start:stop]))
            start = stop
        return np.concatenate(out)

    def compute_for_loss(self, target: float, *, predictive: bool = False) -> dict[str, Any]:
        """Draws of the compute (and N*, D*, from laws of N and D; NaN for the others) at which the
        expected loss reaches ``target``; probabilities are over the whole mixture.

        Parameters
        ----------
        target
            The target loss (nats per token).
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.

        Returns
        -------
        dict
            ``C``, ``N``, ``D`` draws and ``p_reachable``.
        """
        parts = {k: f.compute_for_loss(target, predictive=predictive) for k, f in self.components.items()}
        sizes = np.array([f.n_draws for f in self.components.values()], dtype=float)
        out: dict[str, Any] = {"C": np.concatenate([p["C"] for p in parts.values()]), "target": float(target),
                               "p_reachable": float(np.dot(sizes, [p["p_reachable"] for p in parts.values()])
                                                    / sizes.sum())}
        if all("p_below_irreducible" in p for p in parts.values()):
            out["p_below_irreducible"] = float(np.dot(sizes, [p["p_below_irreducible"] for p in parts.values()])
                                               / sizes.sum())
        if self._nd:
            for key in ("N", "D"):
                out[key] = np.concatenate([p.get(key, np.full(f.n_draws, np.nan))
                                           for p, f in zip(parts.values(), self.components.values(), strict=True)])
        return out


def default_forecaster(fits: Mapping[str, Any], *, main: str, group: str | None = None, seed: int = 0,
                       max_draws: int | None = None) -> tuple[Forecaster | LawAverage, pd.DataFrame | None]:
    """What ``forecast`` and ``report`` forecast with: the law average of ``fits`` by their
    leave-future-out stacking weights when several laws are fitted, else the ``main`` law's fit.

    Returns the forecaster and the weights table (None for one law).  Where weights cannot be
    had — fits with groups or without back-tests of their own — the main law is used and a
    warning says why.

    Parameters
    ----------
    fits
        Fits by law.
    main
        The main law.
    group
        The group forecast.
    seed
        Random seed; the same seed gives the same result.
    max_draws
        At most this many draws per law.

    Returns
    -------
    tuple
        (forecaster, weights or None).
    """
    from bayes_scaling.compare.lfo import lfo_weights

    if len(fits) > 1:
        try:
            weights = lfo_weights(fits)
        except InputError as exc:
            log.warning("forecasting with the %s law alone, not a law average: %s", main, exc)
        else:
            average = LawAverage.from_fits(fits, weights=weights["stacking_weight"].to_dict(), group=group,
                                           max_draws=max_draws, seed=seed)
            return average, weights
    return Forecaster(fits[main], group=group, max_draws=max_draws, seed=seed), None
