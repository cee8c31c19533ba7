"""Structural error: how far a fitted law's forecast drifts from real runs beyond the data.

A law fitted below some compute forecasts the runs beyond it with errors that are
systematic (on every real dataset studied, a drift that grows with the distance) and larger
than the posterior says: the law is not exactly true.  This module models that error in
log loss at a run ``d = log10(C / C_ref)`` decades beyond the largest training budget
``C_ref`` (zero inside the data)::

    δ = (b + τ·z)·d + ω·d·ε,      z, ε ~ N(0, 1)

``b`` is the drift per decade, ``τ`` how much the drift of one fit varies (``z`` is shared by
every run forecast from one posterior draw: a random slope), ``ω`` the extra run-to-run scatter
per decade. Both grow linearly in d, as the error of a misestimated exponent does; a growth as
d^γ, tried with the populations relearned leaving one dataset out, scored the same pooled (mean
CRPS 0.0110 for γ = 0.5, 0.7 and 1) and only moved the misses between datasets (γ = 0.5: better
on two Gadre corpora, 90% coverage 0.96–0.98 on chinchilla). A dataset's (b, τ, ω) are drawn
from a **population** learned from rolling
back-tests of many published datasets (a hierarchical model, :func:`fit_population`; its draws
ship as the ``extrapolation-population`` dataset, rebuilt by
``datasets/build/extrapolation_errors.py``), and **rescaled by the dataset's own internal
back-tests** (fits below cuts of its own runs, :func:`update`): the population conditioned on
the errors those back-tests made — the drift integrated in closed form, its scales by quadrature
on a grid — taken for either sign of the drift (``discrepancy="scaled"``, the default). Those
back-tests fit fewer runs than the fit and err differently from its forecasts: λ, how many times
larger their drift and scatter are, is learned by the population from pairs of inner back-tests
and forecasts of the published datasets, and the update reads them through it. The back-tests
say how *large* a dataset's drift and scatter are, not which way the drift goes: a law's drift
below a cut says little about its direction above it (on chinchilla, +0.009 per decade at 1e20
FLOP, -0.034 beyond 3e21), and learning the direction too (``"calibrated"``) forecast worse,
leaving one dataset out (mean CRPS 0.0123 against 0.0116 scaled and 0.0112 for the population
alone, ``"population"``; the scaled intervals were the better calibrated per dataset and
narrower: ``benchmarks/bench_calibration.py``).

The errors of one back-test are correlated through the shared slope; their likelihood is
the multivariate normal ``N(b·d, diag(ρ²s² + ω²d²) + τ²·d·dᵀ)`` (``s``: the law's own
predictive spread), evaluated in closed form (:func:`cut_loglik`, written once for numpy
and PyTensor).

**ρ ≤ 1: when the law-only posterior is too wide.**  The law-only predictive can also
overstate a forecast's error: on the three Gadre et al. corpora (17–33 runs below a cut, a few
of them at 5 tokens per parameter far off the law, a Student-t likelihood with 1.7–10 degrees of
freedom) the errors of back-tests inside the runs and of forecasts beyond them were about half
the law-only spread (median |error| / spread 0.35–0.54, against 0.67 for a calibrated normal),
and a structural error can only add to it.  ρ = exp(−u), learned per dataset with the
population (log u_k ~ N(μ_u, σ_u²)) and read from a dataset's own back-tests by :func:`update`,
scales the law-only spread: a forecast is the law of a central posterior draw plus ρ × each
draw's deviation from it (:meth:`StructuralError.respread`), then the drift and scatter.  ρ is shared by
a dataset's inner back-tests and its forecasts (on Gadre both erred alike relative to the spread).
It is at most 1: an unbounded ρ, tried first, read misfitting-final's inner back-tests (which err
twice as much as its forecasts near the data) as ρ ≈ 1.2 and widened its forecasts from 10.6% to
16.1% (CRPS +0.057 ×100 against the law alone, leaving one dataset out); errors larger than the
law says are the drift and scatter's to explain.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["StructuralError", "cut_loglik", "cut_sums", "quadratic_in_drift", "fit_population", "load_population",
           "population_draws", "update", "DISCREPANCIES", "LEARNING", "slope_summary", "predictive_log_density",
           "predictive_error_draws", "BACKTEST_COLUMNS", "kept_backtests", "POPULATION_COLUMNS"]

log = logging.getLogger(__name__)

#: ``"scaled"``: the population, its size of drift and scatter updated by the dataset's own
#: back-tests, the direction of the drift left open (the default);
#: ``"population"``: the population's predictive for a new dataset, as is;
#: ``"calibrated"``: the population updated by the dataset's own back-tests, direction included;
#: ``"none"``: the law is taken as exact.
DISCREPANCIES = ("scaled", "population", "calibrated", "none")
#: The modes that learn from back-tests of the dataset's own runs.
LEARNING = ("scaled", "calibrated")
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
    """
    b, t2 = _per_draw(xp, b), _per_draw(xp, tau * tau)
    k, big_p, big_q = quadratic_in_drift(xp, cut_sums(xp, omega, d, e, s), t2, d.shape[-1])
    return k - 0.5 * big_p * b * b + big_q * b


def cut_sums(xp: Any, omega, d, e, s) -> tuple:
    """What the likelihood of one back-test needs of its runs, for any drift b and slope sd τ:
    Σ e²/v, Σ e·d/v, Σ d²/v and Σ log v per value of ω, with v = s² + ω²d²."""
    var = s * s + (omega * omega) * (d * d)
    inv = 1.0 / var
    return (xp.sum(e * e * inv, axis=-1), xp.sum(e * d * inv, axis=-1), xp.sum(d * d * inv, axis=-1),
            xp.sum(xp.log(var), axis=-1))


def quadratic_in_drift(xp: Any, sums: tuple, t2, n: int) -> tuple:
    """One back-test's log-likelihood as K − ½P·b² + Q·b, from :func:`cut_sums` and τ² = ``t2``.

    Sherman–Morrison on diag(v) + τ²·d·dᵀ: P = Σd²/v / (1 + τ²Σd²/v), Q = Σe·d/v / (1 + τ²Σd²/v),
    K = −½(Σe²/v − τ²(Σe·d/v)²/(1 + τ²Σd²/v) + Σ log v + log(1 + τ²Σd²/v)) − n·½log 2π.
    Being quadratic in b is what lets :func:`update` integrate the drift in closed form.
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
    dataset's forecasts scatter about its centre, at most 1 (``xp``: numpy or ``pytensor.tensor``)."""
    return xp.exp(-xp.exp(log_shrink))


def _cuts(errors: pd.DataFrame) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for _, g in errors.groupby("cut", sort=True):
        yield g["d"].to_numpy(float), g["error"].to_numpy(float), g["spread"].to_numpy(float)


@dataclass
class StructuralError:
    """Draws of (b, τ, ω) for one fit, and the training budget C_ref they are measured from.

    ``shift(C, rng)`` gives draws of δ at budgets C, shape (draws, points).  ``backtests``
    holds the fit's internal back-tests (:data:`BACKTEST_COLUMNS`), or None: they rank laws by
    how they forecast (:func:`bayes_scaling.compare.lfo_weights`) and, for ``"calibrated"``,
    updated the population.
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
        inside it, shape (draws, points)."""
        rho = self.rho[:, None]
        return rho if C is None else np.where(self._distance_2d(C) > 0, rho, 1.0)

    def respread(self, log_draws: np.ndarray, centre: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
        """Law-only draws of log loss (draws, points) with their spread about ``centre`` (the law of
        the fit's central draw, broadcast against them) scaled by ρ: centre + ρ·(draw − centre) —
        everywhere, or with budgets ``C`` only beyond the data.  For a new run's draws μ + σε this
        scales the law's uncertainty and the noise alike: (centre + ρ(μ − centre)) + ρσε."""
        return centre + self.spread_scale(C) * (log_draws - centre)

    def forecast(self, log_draws: np.ndarray, centre: np.ndarray, C: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
        """Law-only predictive draws of log loss at budgets ``C`` (draws, points) made a forecast with
        this structural error: beyond the data, respread by ρ about ``centre``, then shifted by the
        drift and scatter (:meth:`respread`, :meth:`shift`)."""
        return self.respread(log_draws, centre, C) + self.shift(C, rng)

    def distance(self, C: np.ndarray) -> np.ndarray:
        """Decades beyond the training data (0 inside it)."""
        return np.maximum(np.log10(np.asarray(C, dtype=float) / self.c_ref), 0.0)

    def slopes(self, rng: np.random.Generator) -> np.ndarray:
        """One drift per decade per draw: b + τ·z."""
        return self.b + self.tau * rng.standard_normal(self.n_draws)

    def _distance_2d(self, C: np.ndarray) -> np.ndarray:
        d = self.distance(np.atleast_1d(C))
        return d if d.ndim == 2 else d[None, :]

    def drift(self, C: np.ndarray, slopes: np.ndarray) -> np.ndarray:
        """The drift κ·d of each draw's slope at budgets ``C`` (1-D, or one row per draw)."""
        return slopes[:, None] * self._distance_2d(C)

    def scatter(self, C: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new run's extra scatter ω·d·ε at budgets ``C``: shape (draws, points)."""
        d = self._distance_2d(C)
        return self.omega[:, None] * d * rng.standard_normal(np.broadcast_shapes((self.n_draws, 1), d.shape))

    def shift(self, C: np.ndarray, rng: np.random.Generator, *, slopes: np.ndarray | None = None) -> np.ndarray:
        """Draws of δ = drift + scatter in log loss at budgets ``C``: shape (draws, len(C))."""
        kappa = self.slopes(rng) if slopes is None else slopes
        return self.drift(C, kappa) + self.scatter(C, rng)

    def thinned(self, keep: np.ndarray) -> StructuralError:
        return StructuralError(self.b[keep], self.tau[keep], self.omega[keep], self.c_ref, self.source, self.info,
                               self.backtests, self.rho[keep])

    def summary(self) -> pd.DataFrame:
        rows = {name: getattr(self, name) for name in PARAMS}
        return pd.DataFrame({k: {"median": np.median(v), "q5": np.quantile(v, 0.05), "q95": np.quantile(v, 0.95)}
                             for k, v in rows.items()}).T

    def describe(self) -> str:
        """Its draws in words (medians, [5%, 95%]): the drift, its spread, the extra scatter and ρ."""
        se = self.summary()
        return (f"drift {se.loc['b', 'median']:+.4f} log loss per decade [{se.loc['b', 'q5']:+.4f}, "
                f"{se.loc['b', 'q95']:+.4f}], spread of the drift {se.loc['tau', 'median']:.4f}, extra scatter "
                f"{se.loc['omega', 'median']:.4f} per decade; the law's own spread × ρ = {se.loc['rho', 'median']:.2f} "
                f"[{se.loc['rho', 'q5']:.2f}, {se.loc['rho', 'q95']:.2f}]")

    def to_dict(self) -> dict[str, Any]:
        return {"c_ref": self.c_ref, "source": self.source, "info": self.info}


# --------------------------------------------------------------------------- the population
def fit_population(errors: pd.DataFrame, *, draws: int = 1000, tune: int = 2000, chains: int = 4,
                   seed: int = 0, shared_direction: bool = False) -> pd.DataFrame:
    """Hierarchical model of (b, τ, ω) across datasets, from their back-test errors.

    ``errors`` has one row per held-out run: ``dataset``, ``cut``, ``d``, ``error``,
    ``spread``.  Each dataset k has b_k ~ N(μ_b, σ_b²), log τ_k ~ N(μ_τ, σ_τ²), log ω_k ~
    N(μ_ω, σ_ω²); every back-test contributes :func:`cut_loglik`.  Returns posterior draws of
    the population parameters (one row per draw, :data:`POPULATION_COLUMNS`); their sampling
    diagnostics are in ``attrs["diagnostics"]`` (``"summary"``: as printed) and problems are
    warned about.  The spreads of
    the log scales have a boundary-avoiding prior (:func:`_spread_prior`); a dataset's log scales
    are sampled centred where its inner back-tests hold at least 200 runs (they pin them), and
    non-centred elsewhere.

    **Inner back-tests.**  Rows with ``kind == "inner"`` are back-tests *inside* the training runs
    of a forecast (``origin``: the cut of that forecast; ``cut``: their own, smaller one), what
    a user's fit learns from (:func:`update`).  Fitted to fewer runs and cut where the runs are
    fewer, they do not err as the forecasts do (more on misfitting-final, less on chinchilla).
    Their errors are modelled as those of the dataset's
    structural error scaled by λ_k, log λ_k ~ N(μ_λ, σ_λ²): drift λb, slope sd λτ, scatter λω,
    the law-only spread unscaled.  A dataset with both kinds fixes its λ; :func:`update` uses the
    population's λ to read a new dataset's inner back-tests at the scale of its forecasts.
    Without inner rows, λ = 1 (μ_λ = σ_λ = 0).

    **ρ.**  Every law-only spread of dataset k, inner or outer, is scaled by ρ_k = exp(−u_k),
    log u_k ~ N(μ_u, σ_u²) (μ_u ~ N(log 0.1, 1.5²): ρ ≈ 0.9 a priori): how far the law-only posterior
    overstates the dataset's errors (see the module docstring).

    By default μ_b = 0: a new dataset's drift is as likely up as down, and its own back-tests
    (:func:`update`) say which.  The published datasets disagree on the direction (chinchilla
    and gadre-rpj drift down, misfitting-final and gadre-c4 up; with μ_b free its posterior
    was 0.005 [-0.007, 0.017], P(μ_b > 0) = 0.76), and leaving one dataset out, μ_b = 0 scored
    as well or better pooled (CRPS 0.0123 vs 0.0124, 90% coverage 0.94 vs 0.93, 50% 0.45 vs
    0.44) without pushing every forecast in the direction of the majority.
    ``shared_direction=True`` learns μ_b.
    """
    import nutpie

    from .diagnostics import check_sampling
    from .sampling import compiled_nutpie_model

    names = sorted(errors["dataset"].unique())
    if len(names) < 2:
        raise InputError("a population of structural errors needs back-tests of at least two datasets")
    layout = _BacktestLayout(errors, names)
    # compiled as fits are (bayes_scaling.compiled): the numba code comes from the disk cache, so
    # the draws of a seed do not depend on whether this process compiled it first
    compiled, _ = compiled_nutpie_model(lambda: _population_model(layout, shared_direction=shared_direction),
                                        key=None, data=None, initial_points=None)
    # the scales of a dataset's forecasts and of its inner back-tests are learned together, so their
    # posterior is correlated: a low-rank mass matrix took 2.6x fewer steps per draw than a diagonal
    # one; at target_accept 0.95 a few draws still diverged where the spreads are small
    tree = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=False,
                         target_accept=0.99, adaptation="low_rank")
    post = tree["posterior"].to_dataset()
    frame = pd.DataFrame({c: np.broadcast_to(post[c].values, post["mu_log_tau"].shape).ravel()
                          for c in POPULATION_COLUMNS})
    learned = [c for c in POPULATION_COLUMNS if post[c].values.std() > 0]
    diagnostics = check_sampling(tree, learned, label="population of structural errors")
    frame.attrs.update(datasets=names, divergences=diagnostics.divergences,
                       diagnostics=diagnostics.to_dict() | {"summary": str(diagnostics)})
    return frame


def _population_model(layout: _BacktestLayout, *, shared_direction: bool):
    """The PyMC model of :func:`fit_population` (see there)."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        mu_b = pm.Normal("mu_b", 0.0, 0.02) if shared_direction else pm.Deterministic("mu_b", pt.as_tensor(0.0))
        sigma_b = pm.HalfNormal("sigma_b", 0.02)
        mu_tau = pm.Normal("mu_log_tau", math.log(0.005), 1.0)
        sigma_tau = _spread_prior(pm, "sigma_log_tau")
        mu_omega = pm.Normal("mu_log_omega", math.log(0.005), 1.0)
        sigma_omega = _spread_prior(pm, "sigma_log_omega")
        if layout.has_inner:
            mu_lam = pm.Normal("mu_log_lambda", 0.0, 1.0)
            sigma_lam = _spread_prior(pm, "sigma_log_lambda")
        else:
            mu_lam = pm.Deterministic("mu_log_lambda", pt.as_tensor(0.0))
            sigma_lam = pm.Deterministic("sigma_log_lambda", pt.as_tensor(0.0))
        centred = layout.well_measured()

        def per_dataset(name, mu, sigma, centred=centred):
            # centred where a dataset's back-tests pin its value, non-centred where they leave it to the prior
            value = pt.zeros(layout.n_datasets)
            if (~centred).any():
                raw = pm.Normal(f"{name}_offset", 0.0, 1.0, shape=int((~centred).sum()))
                value = pt.set_subtensor(value[np.flatnonzero(~centred)], mu + sigma * raw)
            if centred.any():
                value = pt.set_subtensor(value[np.flatnonzero(centred)],
                                         pm.Normal(name, mu, sigma, shape=int(centred.sum())))
            return value

        b = per_dataset("b", mu_b, sigma_b, centred=np.zeros_like(centred))
        tau = pt.exp(per_dataset("log_tau", mu_tau, sigma_tau))
        omega = pt.exp(per_dataset("log_omega", mu_omega, sigma_omega))
        lam = pt.exp(per_dataset("log_lambda", mu_lam, sigma_lam)) if layout.has_inner else pt.ones(layout.n_datasets)
        mu_shrink = pm.Normal("mu_log_shrink", math.log(0.1), 1.5)
        rho = spread_scale(pt, per_dataset("log_shrink", mu_shrink, _spread_prior(pm, "sigma_log_shrink")))
        pm.Potential("backtests", layout.loglik(pt, b, tau, omega, lam, rho))
    return model


def _spread_prior(pm: Any, name: str):
    """Prior of the spread between datasets of a log scale: LogNormal(log 0.5, 0.5), 90% within
    0.22–1.14 (a dataset's scale differs from the next one's by a factor of about 1.2–3).

    Five datasets say little about a spread between them.  With a prior whose mode is zero
    (HalfNormal(0.5)) or near it (Gamma(2, 4)) the sampler entered the neck of the funnel that a
    small spread makes with the datasets whose back-tests pin their scales: with Gamma(2, 4) at
    target_accept 0.99, 4–17 divergent transitions in 3 of 9 fits; with this one, none in 8 fits
    (seeds 0–3; 500 and 1,000 draws), R-hat ≤ 1.013.  The
    published datasets do differ: fitted one by one, their scatter per decade ω ranges over
    0.002–0.016 and their λ over 0.24–3.3.
    """
    return pm.LogNormal(name, math.log(0.5), 0.5)


class _BacktestLayout:
    """Every back-test of every dataset laid out for one vectorized likelihood: the runs in one
    array, a row per back-test (cut) summing its runs, each back-test's dataset and kind."""

    def __init__(self, errors: pd.DataFrame, names: list[str]):
        kind = errors["kind"] if "kind" in errors.columns else pd.Series("outer", index=errors.index)
        if not kind.isin(["outer", "inner"]).all():
            raise InputError("back-test errors: column 'kind' holds 'outer' or 'inner' only")
        frame = errors.assign(kind=kind, dataset_index=errors["dataset"].map({n: k for k, n in enumerate(names)}))
        keys = ["dataset_index", "kind", *(["origin"] if "origin" in frame.columns else []), "cut"]
        frame = frame.sort_values(keys, kind="stable")
        group = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
        first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
        self.d, self.e, self.s = (frame[c].to_numpy(float) for c in ("d", "error", "spread"))
        self.run_cut = group
        self.cut_dataset = frame["dataset_index"].to_numpy()[first]
        self.cut_inner = (frame["kind"].to_numpy()[first] == "inner")
        self.cut_runs = np.bincount(group).astype(float)
        self.cut_last = np.r_[first[1:] - 1, len(group) - 1]  # each back-test's runs are contiguous
        self.has_inner = bool(self.cut_inner.any())
        self.n_datasets = len(names)

    def well_measured(self, runs: int = 200) -> np.ndarray:
        """Per dataset: whether its inner back-tests hold at least ``runs`` runs (they then pin its
        scales, which are best sampled centred)."""
        held = np.bincount(self.cut_dataset[self.cut_inner], weights=self.cut_runs[self.cut_inner],
                           minlength=self.n_datasets)
        return held >= runs

    def _per_cut(self, xp: Any, x):
        """Σ of ``x`` over each back-test's runs, as differences of a cumulative sum."""
        at_last = xp.cumsum(x)[self.cut_last]
        return at_last - xp.concatenate([xp.zeros(1), at_last[:-1]])

    def loglik(self, xp: Any, b, tau, omega, lam, rho):
        """Σ over back-tests of :func:`cut_loglik`, an inner one's (b, τ, ω) scaled by its dataset's λ,
        every law-only spread by its dataset's ρ."""
        scale = xp.where(self.cut_inner, lam[self.cut_dataset], 1.0)  # per back-test
        run_omega = (scale * omega[self.cut_dataset])[self.run_cut]
        run_rho = rho[self.cut_dataset][self.run_cut]
        var = (run_rho * self.s) ** 2 + run_omega**2 * self.d**2
        sums = tuple(self._per_cut(xp, x) for x in (self.e**2 / var, self.e * self.d / var, self.d**2 / var,
                                                     xp.log(var)))
        t2 = (scale * tau[self.cut_dataset]) ** 2
        k, big_p, big_q = quadratic_in_drift(xp, sums, t2, self.cut_runs)
        drift = scale * b[self.cut_dataset]
        return xp.sum(k - 0.5 * big_p * drift * drift + big_q * drift)


#: A population table's columns: hyperparameters of a dataset's (b, τ, ω) and of λ, how much larger
#: the errors of back-tests inside a fit's training runs are than those of its forecasts.
POPULATION_COLUMNS = ("mu_b", "sigma_b", "mu_log_tau", "sigma_log_tau", "mu_log_omega", "sigma_log_omega",
                      "mu_log_lambda", "sigma_log_lambda", "mu_log_shrink", "sigma_log_shrink")
#: Columns a population learned before λ or ρ existed may lack, and their values then: λ = 1, ρ = 1.
_OPTIONAL_COLUMNS = {"mu_log_lambda": 0.0, "sigma_log_lambda": 0.0, "mu_log_shrink": -np.inf,
                     "sigma_log_shrink": 0.0}


def _population_columns(population: pd.DataFrame) -> dict[str, np.ndarray]:
    """The population's rows as arrays per :data:`POPULATION_COLUMNS` (λ = 1 where it has none)."""
    missing = [c for c in POPULATION_COLUMNS if c not in population.columns and c not in _OPTIONAL_COLUMNS]
    if missing:
        raise InputError(f"a population of structural errors needs columns {', '.join(missing)}")
    return {c: (population[c].to_numpy(float) if c in population.columns
                else np.full(len(population), _OPTIONAL_COLUMNS[c])) for c in POPULATION_COLUMNS}


def load_population(law: str, likelihood: str) -> pd.DataFrame:
    """Population draws for ``law`` fitted with ``likelihood`` from the ``extrapolation-population``
    dataset; a law without back-tests of its own falls back to the Chinchilla law's (logged)."""
    from .datasets import load_dataset

    table = load_dataset("extrapolation-population")
    for want_law, want_lik in ((law, likelihood), (law, None), ("chinchilla", "student-t")):
        rows = table[(table["law"] == want_law) & ((table["likelihood"] == want_lik) if want_lik else True)]
        if len(rows):
            break
    if (want_law, want_lik) != (law, likelihood):
        log.info("structural error: no population learned for %s / %s; using %s / %s", law, likelihood,
                 want_law, rows["likelihood"].iloc[0])
    frame = rows.reindex(columns=list(POPULATION_COLUMNS)).fillna(_OPTIONAL_COLUMNS).reset_index(drop=True)
    frame.attrs["source"] = (f"extrapolation-population ({want_law} / {rows['likelihood'].iloc[0]}: back-tests of "
                             f"{rows['datasets'].iloc[0]})")
    return frame


def population_draws(population: pd.DataFrame, n: int, rng: np.random.Generator, *,
                     inner: bool = False) -> dict[str, np.ndarray]:
    """(b, τ, ω) of a *new* dataset: the population's predictive, ``n`` draws.  ``inner``: as its
    back-tests inside a fit's training runs see them, each scaled by the dataset's λ
    (:func:`fit_population`)."""
    cols = _population_columns(population)
    pick = rng.integers(0, len(population), n)
    z = rng.standard_normal((n, 3))
    out = {"b": cols["mu_b"][pick] + cols["sigma_b"][pick] * z[:, 0],
           "tau": np.exp(cols["mu_log_tau"][pick] + cols["sigma_log_tau"][pick] * z[:, 1]),
           "omega": np.exp(cols["mu_log_omega"][pick] + cols["sigma_log_omega"][pick] * z[:, 2])}
    if inner:
        lam = np.exp(cols["mu_log_lambda"][pick] + cols["sigma_log_lambda"][pick] * rng.standard_normal(n))
        out = {k: v * lam for k, v in out.items()}
    out["rho"] = spread_scale(np, cols["mu_log_shrink"][pick] + cols["sigma_log_shrink"][pick] * rng.standard_normal(n))
    return out


def _drift_integrated(cuts: list, tau: np.ndarray, omega: np.ndarray, rho: np.ndarray):
    """All cuts' log-likelihood as K − ½P·b² + Q·b (:func:`quadratic_in_drift`) on a grid of
    (τ, ω, ρ): ``tau`` (T,), ``omega`` (W,) and ``rho`` (R,) span it; returns K, P, Q of shape
    (T, W, R).  ρ multiplies each run's law-only spread."""
    t2 = (tau * tau)[:, None, None]
    total = [np.zeros((len(tau), len(omega), len(rho)))] * 3
    for d, e, s in cuts:
        sums = cut_sums(np, omega[:, None, None], d[None, None, :], e[None, None, :],
                        rho[None, :, None] * s[None, None, :])
        total = [a + b for a, b in zip(total, quadratic_in_drift(np, sums, t2, len(d)), strict=True)]
    return tuple(total)


def _drift_marginal(k, big_p, big_q, mu_b, sigma_b):
    """With b ~ N(μ_b, σ_b²) integrated out of −½P·b² + Q·b + K: log M = K + H²/2Λ − μ_b²/2σ_b² −
    ½ log(σ_b²Λ), Λ = P + 1/σ_b², H = Q + μ_b/σ_b²; and b | back-tests ~ N(H/Λ, 1/Λ).
    Returns (log M, H/Λ, Λ)."""
    prior_prec = 1.0 / (sigma_b * sigma_b)
    prec = big_p + prior_prec
    h = big_q + mu_b * prior_prec
    log_m = k + 0.5 * h * h / prec - 0.5 * mu_b * mu_b * prior_prec - 0.5 * np.log(prec / prior_prec)
    return log_m, h / prec, prec


#: The quadrature of :func:`update`: log τ and log ω on a grid over this range (per decade, in
#: log loss; beyond it a scale is as good as zero or absurdly large), log u (ρ = exp(−u)) over its
#: own (ρ from 0.999 down to 0.05); first coarse, then fine over the cells that hold the posterior.
_LOG_SCALE_RANGE = (math.log(1e-5), math.log(0.5))
_LOG_SHRINK_RANGE = (math.log(1e-3), math.log(3.0))
_COARSE_POINTS, _FINE_POINTS = (24, 24, 12), (40, 40, 12)
#: At most this many population rows (evenly thinned) enter the quadrature: the cost is rows × cells.
_MAX_ROWS = 1000
#: Coarse cells whose posterior is within this factor of the largest bound the fine grid.
_MASS_CUTOFF = 1e-9
#: Population rows per block of the grid computation (bounds memory: rows × cells floats).
_ROW_BLOCK = 128
_FULL_RANGES = (_LOG_SCALE_RANGE, _LOG_SCALE_RANGE, _LOG_SHRINK_RANGE)
_AXES = (("tau", "mu_log_tau", "sigma_log_tau"), ("omega", "mu_log_omega", "sigma_log_omega"),
         ("shrink", "mu_log_shrink", "sigma_log_shrink"))


class _Grid:
    """The back-tests' likelihood on a grid of (log τ, log ω, log u), b integrated, for any
    population row.  An axis whose population spread is zero (a population without ρ) is the
    single point of its mean."""

    def __init__(self, cuts: list, axes: tuple[np.ndarray, np.ndarray, np.ndarray], symmetric: bool):
        self.axes, self.symmetric = axes, symmetric
        self.k, self.big_p, self.big_q = _drift_integrated(cuts, np.exp(axes[0]), np.exp(axes[1]),
                                                           spread_scale(np, axes[2]))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.k.shape

    def marginal(self, rows: dict[str, np.ndarray], cells: tuple[np.ndarray, ...] | None = None):
        """log M (either mirror, averaged, when symmetric) and the pieces to draw b: for every
        row at every cell, shape (rows, T, W, R); or, with ``cells`` = (i, j, l), row n at cell
        (i[n], j[n], l[n])."""
        if cells is None:
            k, big_p, big_q = self.k, self.big_p, self.big_q
            mu_b, sigma_b = rows["mu_b"][:, None, None, None], rows["sigma_b"][:, None, None, None]
        else:
            k, big_p, big_q = (x[cells] for x in (self.k, self.big_p, self.big_q))
            mu_b, sigma_b = rows["mu_b"], rows["sigma_b"]
        log_up, mean_up, prec = _drift_marginal(k, big_p, big_q, mu_b, sigma_b)
        if not self.symmetric or not np.any(mu_b):  # N(0, σ_b²) is its own mirror
            return log_up, log_up, mean_up, mean_up, prec
        # the mean likelihood of ±b is that of b under the prior mirrored: N(−μ_b, σ_b²)
        log_down, mean_down, _ = _drift_marginal(k, big_p, big_q, -mu_b, sigma_b)
        return np.logaddexp(log_up, log_down), log_up, mean_up, mean_down, prec

    def log_post(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        """log prior(log τ, log ω, log u | row) + log M, shape (rows, T·W·R)."""
        total = self.marginal(rows)[0]
        for axis, (values, (_, mu, sd)) in enumerate(zip(self.axes, _AXES, strict=True)):
            if len(values) > 1:
                z = (values[None, :] - rows[mu][:, None]) / rows[sd][:, None]
                shape = [len(z), 1, 1, 1]
                shape[axis + 1] = len(values)
                total = total + (-0.5 * z * z - np.log(rows[sd][:, None])).reshape(shape)
        return total.reshape(len(total), -1)


def _row_blocks(rows: dict[str, np.ndarray]):
    n = len(rows["mu_b"])
    for start in range(0, n, _ROW_BLOCK):
        yield {c: v[start:start + _ROW_BLOCK] for c, v in rows.items()}


def _at_inner_scale(population: pd.DataFrame, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The population's rows as the prior of back-tests inside a fit's runs, and the λ of each:
    with a λ of the new dataset drawn per row, their (b, τ, ω) are λ × the forecasts' (ρ, a
    property of the dataset's law-only spread, is shared)."""
    rows = _population_columns(population)
    lam = np.exp(rows.pop("mu_log_lambda") + rows.pop("sigma_log_lambda") * rng.standard_normal(len(population)))
    rows |= {"mu_b": rows["mu_b"] * lam, "sigma_b": rows["sigma_b"] * lam,
             "mu_log_tau": rows["mu_log_tau"] + np.log(lam), "mu_log_omega": rows["mu_log_omega"] + np.log(lam)}
    return rows, lam


def _axes(rows: dict[str, np.ndarray], points: tuple[int, int, int],
          spans: list[tuple[float, float]] | None = None) -> tuple[np.ndarray, ...]:
    """The grid's axes: log τ, log ω over :data:`_LOG_SCALE_RANGE`, log u over :data:`_LOG_SHRINK_RANGE`
    (or the given ``spans``); u ≡ its mean (ρ ≡ 1 for a population learned without it) where the
    population has no spread of it."""
    ranges = spans or _FULL_RANGES
    fixed = not np.any(rows["sigma_log_shrink"])
    return tuple(np.array([float(np.mean(rows["mu_log_shrink"]))]) if axis == 2 and fixed else np.linspace(lo, hi, n)
                 for axis, ((lo, hi), n) in enumerate(zip(ranges, points, strict=True)))


def _posterior_cells(cuts: list, rows: dict[str, np.ndarray], symmetric: bool) -> _Grid:
    """A fine grid over the cells where the coarse grid's posterior (maximized over population
    rows) is within :data:`_MASS_CUTOFF` of its peak."""
    coarse = _Grid(cuts, _axes(rows, _COARSE_POINTS), symmetric)
    best = np.max([coarse.log_post(block).max(axis=0) for block in _row_blocks(rows)], axis=0)
    held = (best > best.max() + math.log(_MASS_CUTOFF)).reshape(coarse.shape)
    spans = []
    for axis, values in enumerate(coarse.axes):
        step = values[1] - values[0] if len(values) > 1 else 0.0
        where = values[held.any(axis=tuple(a for a in range(3) if a != axis))]
        full = _FULL_RANGES[axis]
        spans.append((max(where.min() - step, full[0]), min(where.max() + step, full[1])))
    return _Grid(cuts, _axes(rows, _FINE_POINTS, spans), symmetric)


def update(population: pd.DataFrame, errors: pd.DataFrame | None, *, draws: int, c_ref: float, seed: int = 0,
           proposals: int = 40_000, source: str = "", symmetric: bool = False) -> StructuralError:
    """The structural error of one fit: the population, updated by its own back-test errors.

    With ``errors`` (rows: ``cut``, ``d``, ``error``, ``spread``), the posterior of a new
    dataset's (b, τ, ω, ρ) given those errors, the population as prior: the drift b is integrated
    in closed form (Gaussian given the rest, :func:`_drift_marginal`), and (log τ, log ω, log u)
    by quadrature on a grid — coarse over the whole range, then fine where the posterior lies —
    for every population row (up to 1,000, evenly thinned).  ``draws`` are drawn from the grid
    (uniform within a cell), each with a population row from its posterior given the cell and b
    from its conditional posterior.  Unlike importance sampling from the population, this does not collapse onto a
    few draws when a dataset's back-tests lie in the population's tail (misfitting-final, left
    out of its population: 1–20 effective draws of 640,000).  Without ``errors``,
    ``proposals`` draws of the population's predictive are used as is.  ``symmetric``: the
    errors tell how *large* the drift and scatter are, not which way the drift goes — each
    draw is weighted by the mean likelihood of ±b and its sign is then drawn at random, so the
    update leaves the median where the law puts it.

    The back-tests are fits to fewer runs than the forecast's, and err more: the population's λ
    (:func:`fit_population`) says by how much.  Each population row gets a λ of the new dataset
    drawn from it; the row's prior is moved to the back-tests' scale (λb, λτ, λω), updated there,
    and each draw divided by its λ — so a dataset whose λ is uncertain gets a mixture.
    ``info["inner_scale"]`` is the median λ of the draws, ``info["spread_scale"]`` that of ρ.
    """
    rng = np.random.default_rng([seed, 19])
    info: dict[str, Any] = {}
    if errors is None or not len(errors):
        prop = population_draws(population, proposals, rng)
        idx = rng.choice(proposals, size=draws)
        info.update(proposals=proposals, internal_backtests=0, internal_runs=0)
        return StructuralError(prop["b"][idx], prop["tau"][idx], prop["omega"][idx], float(c_ref), source, info,
                               rho=prop["rho"][idx])
    cuts = list(_cuts(errors))
    if len(population) > _MAX_ROWS:
        population = population.iloc[np.linspace(0, len(population) - 1, _MAX_ROWS).astype(int)]
    rows, lam = _at_inner_scale(population, rng)
    grid = _posterior_cells(cuts, rows, symmetric)
    # the posterior mass of every (row, cell): at most 1,000 × 19,200 float32, 77 MB
    log_post = np.concatenate([grid.log_post(block).astype(np.float32) for block in _row_blocks(rows)])
    mass = np.exp(log_post - log_post.max())
    del log_post
    w = mass.sum(axis=0, dtype=float)  # rows summed out
    w /= w.sum()
    cell = rng.choice(w.size, size=draws, p=w)
    # a population row for each draw, from its posterior given the cell
    r = np.empty(draws, dtype=int)
    u = rng.random(draws)
    for c in np.unique(cell):
        at = np.flatnonzero(cell == c)
        cdf = np.cumsum(mass[:, c], dtype=float)
        r[at] = np.minimum(np.searchsorted(cdf, u[at] * cdf[-1], side="right"), len(cdf) - 1)
    i, j, m = np.unravel_index(cell, grid.shape)
    picked = {c: v[r] for c, v in rows.items()}
    log_lik, log_up, mean_up, mean_down, prec = grid.marginal(picked, (i, j, m))
    mean = mean_up
    if symmetric:  # which mirror each draw came from, then its sign at random
        mean = np.where(rng.random(draws) < np.exp(log_up - log_lik), mean_up, mean_down)
    b = mean + rng.standard_normal(draws) / np.sqrt(prec)
    if symmetric:
        b = b * rng.choice(np.array([-1.0, 1.0]), size=draws)
        info["symmetric"] = True
    log_tau, log_omega, log_shrink = (axis[index] + rng.uniform(-0.5, 0.5, draws) * (
        axis[1] - axis[0] if len(axis) > 1 else 0.0) for axis, index in zip(grid.axes, (i, j, m), strict=True))
    tau, omega, rho = np.exp(log_tau), np.exp(log_omega), spread_scale(np, log_shrink)
    b, tau, omega = b / lam[r], tau / lam[r], omega / lam[r]  # back to the scale of forecasts
    info.update(inner_scale=float(np.median(lam[r])), spread_scale=float(np.median(rho)), grid_cells=int(w.size),
                effective_cells=float(1.0 / np.sum(w * w)), population_rows=len(population),
                internal_backtests=len(cuts), internal_runs=len(errors))
    return StructuralError(b, tau, omega, float(c_ref), source, info, kept_backtests(errors), rho=rho)


def kept_backtests(errors: pd.DataFrame) -> pd.DataFrame:
    """What a fit keeps of its internal back-tests (:data:`BACKTEST_COLUMNS`)."""
    return errors.reindex(columns=list(BACKTEST_COLUMNS)).reset_index(drop=True)


def predictive_error_draws(population: pd.DataFrame, errors: pd.DataFrame, *, draws: int = 2000,
                           seed: int = 0) -> np.ndarray:
    """Draws (draws, runs) of the error of each back-test's law-only median under a *new* dataset's
    structural error: (b + τz)·d + √(s² + ω²d²)·ε — the distribution whose density
    :func:`predictive_log_density` gives.  Like it, for a fit's back-tests inside its own runs:
    (b, τ, ω) scaled by λ."""
    rng = np.random.default_rng([seed, 59])
    p = population_draws(population, draws, np.random.default_rng([seed, 53]), inner=True)
    d, s = (errors[k].to_numpy(float)[None, :] for k in ("d", "spread"))
    sd = np.sqrt(s * s + p["omega"][:, None] ** 2 * d * d)
    return (p["b"] + p["tau"] * rng.standard_normal(draws))[:, None] * d + sd * rng.standard_normal(sd.shape)


def predictive_log_density(population: pd.DataFrame, errors: pd.DataFrame, *, draws: int = 4000,
                           seed: int = 0) -> np.ndarray:
    """log p(e) of each back-test error under a *new* dataset's structural error (the population's
    predictive, not updated by these errors): the law-only median's error ``e`` at distance ``d``
    with law-only spread ``s`` has density E[N(e; b·d, s² + (τ² + ω²)·d²)] over (b, τ, ω) — for the
    back-tests inside a fit's own runs it is given, (b, τ, ω) scaled by the population's λ.

    The pointwise density of a forecast of each run beyond a cut — what leave-future-out
    comparison scores — with the law's predictive taken as normal (median, robust sd).

    The law's own spread enters as is (ρ = 1, here and in :func:`predictive_error_draws`): ρ
    rescales a fit's forecasts by what its back-tests say, and the population's ρ, not updated by
    the errors scored, would reward a law whose spread is too wide — on simulated runs of the
    Chinchilla law (1% noise) a law of compute alone, its noise widened by missing N and D, took
    96% of the stacking weight from the true law that way (with ρ = 1: none of it).
    """
    from scipy.special import logsumexp

    p = population_draws(population, draws, np.random.default_rng([seed, 37]), inner=True)
    d, e, s = (errors[k].to_numpy(float)[None, :] for k in ("d", "error", "spread"))
    var = s * s + (p["tau"][:, None] ** 2 + p["omega"][:, None] ** 2) * d * d
    r = e - p["b"][:, None] * d
    logpdf = -0.5 * (r * r / var + np.log(var)) - _HALF_LOG_2PI
    return logsumexp(logpdf, axis=0) - math.log(draws)


def slope_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per back-test: the weighted least-squares drift per decade and its standard error."""
    rows = []
    for (name, cut), g in errors.groupby(["dataset", "cut"], sort=True):
        d, e, s = g["d"].to_numpy(float), g["error"].to_numpy(float), g["spread"].to_numpy(float)
        w = 1 / s**2
        rows.append({"dataset": name, "cut": cut, "runs": len(g), "d_max": d.max(),
                     "drift_per_decade": float((w * d * e).sum() / (w * d * d).sum()),
                     "se": float(1 / np.sqrt((w * d * d).sum()))})
    return pd.DataFrame(rows)

