"""A dataset's structural error from the population and its own back-tests: the population
conditioned on the errors of the law's back-tests inside the runs (:func:`update`: the drift
integrated in closed form, its scales by quadrature on a coarse-then-fine grid), and the
predictive density of back-test errors under the population.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.calibration.population import _population_columns, population_draws
from bayes_scaling.posterior.structural import (
    _HALF_LOG_2PI,
    BACKTEST_COLUMNS,
    StructuralError,
    _cuts,
    cut_sums,
    quadratic_in_drift,
    spread_scale,
)

#: What a fit's own back-tests do to the drift b (:func:`update`).
DRIFTS = ("updated", "mirrored", "population")


__all__ = ['DRIFTS', 'kept_backtests', 'predictive_error_draws', 'predictive_log_density', 'slope_summary', 'update']


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


#: Prior probability that the law holds on a new dataset (no structural error worth the name): the
#: rule of succession over the six independent datasets the population was learned from, none of
#: which the law held on, 1 / (6 + 2).  :func:`update` mixes it in as rows of its own.
LAW_HOLDS_SHARE = 1 / 8
#: A dataset on which the law holds: drift and scatter per decade about 10⁻⁴ (log-normal, sd 1),
#: a hundredth of the published datasets' (about 10⁻²), no shared direction.
_LAW_HOLDS = {"mu_b": 0.0, "sigma_b": 1e-5, "mu_log_tau": math.log(1e-4), "sigma_log_tau": 1.0,
              "mu_log_omega": math.log(1e-4), "sigma_log_omega": 1.0}


def _with_law_holding(population: pd.DataFrame, share: float) -> pd.DataFrame:
    """The population with a share ``share`` of rows on which the law holds (:data:`_LAW_HOLDS`): copies
    of evenly spaced rows (their λ and ρ kept) with negligible drift and scatter."""
    if share <= 0:
        return population
    extra = int(round(len(population) * share / (1 - share)))
    held = population.iloc[np.linspace(0, len(population) - 1, extra).astype(int)].assign(**_LAW_HOLDS)
    return pd.concat([population, held], ignore_index=True)


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
           proposals: int = 40_000, source: str = "", drift: str = "updated",
           symmetric: bool | None = None) -> StructuralError:
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
    errors tell how *large* the drift and scatter are, not which way the drift goes.

    ``drift`` says what the dataset's own back-tests do to the drift b: ``"updated"``, b from its
    posterior given them (direction included); ``"mirrored"``, each draw weighted by the mean
    likelihood of ±b and its sign then drawn at random, so the update leaves the median where the
    law puts it (μ_b = 0) or spreads it evenly on both sides; ``"population"``, b from the
    population's N(μ_b, σ_b²) as for a new dataset — the direction the *other* datasets share —
    while τ, ω and ρ are still learned from the back-tests (b integrated out under that prior).

    The back-tests are fits to fewer runs than the forecast's, and err more: the population's λ
    (:func:`fit_population`) says by how much.  Each population row gets a λ of the new dataset
    drawn from it; the row's prior is moved to the back-tests' scale (λb, λτ, λω), updated there,
    and each draw divided by its λ — so a dataset whose λ is uncertain gets a mixture.
    ``info["inner_scale"]`` is the median λ of the draws, ``info["spread_scale"]`` that of ρ.

    Parameters
    ----------
    population
        Population draws (:func:`~bayes_scaling.calibration.population.load_population`).
    errors
        The fit's own back-test errors (None: the population alone).
    draws
        Number of draws.
    c_ref
        The largest training budget in FLOP: distances are measured from it.
    seed
        Random seed; the same seed gives the same result.
    proposals
        Grid size of the quadrature.
    source
        Where the draws come from.
    drift
        ``"updated"``, ``"mirrored"`` or ``"population"`` (see above; :data:`~bayes_scaling.posterior.structural.DRIFT_RULES`
        maps each discrepancy mode to one).
    symmetric
        Deprecated: ``True`` is ``drift="mirrored"``.

    Returns
    -------
    StructuralError
    """
    if symmetric is not None:
        drift = "mirrored" if symmetric else drift
    if drift not in DRIFTS:
        raise ValueError(f"drift must be one of {', '.join(DRIFTS)}, not {drift!r}")
    symmetric = drift == "mirrored"
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
    population = _with_law_holding(population, LAW_HOLDS_SHARE)
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
    if drift == "population":  # the prior's drift, at the back-tests' scale like the row
        b = picked["mu_b"] + picked["sigma_b"] * rng.standard_normal(draws)
        info["drift"] = "population"
    else:
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
    """What a fit keeps of its internal back-tests (:data:`BACKTEST_COLUMNS`).

    Parameters
    ----------
    errors
        Back-test errors, one row per held-out run (``HeldOut.errors()`` columns).

    Returns
    -------
    pandas.DataFrame
    """
    return errors.reindex(columns=list(BACKTEST_COLUMNS)).reset_index(drop=True)


def predictive_error_draws(population: pd.DataFrame, errors: pd.DataFrame, *, draws: int = 2000,
                           seed: int = 0) -> np.ndarray:
    """Draws (draws, runs) of the error of each back-test's law-only median under a *new* dataset's
    structural error: (b + τz)·d + √(s² + ω²d²)·ε — the distribution whose density
    :func:`predictive_log_density` gives.  Like it, for a fit's back-tests inside its own runs:
    (b, τ, ω) scaled by λ.

    Parameters
    ----------
    population
        Population draws (:func:`~bayes_scaling.calibration.population.load_population`).
    errors
        Back-test errors, one row per held-out run (``HeldOut.errors()`` columns).
    draws
        Number of draws.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    numpy.ndarray
        Shape (draws, runs).
    """
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

    Parameters
    ----------
    population
        Population draws (:func:`~bayes_scaling.calibration.population.load_population`).
    errors
        Back-test errors, one row per held-out run (``HeldOut.errors()`` columns).
    draws
        Number of draws.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    numpy.ndarray
        One log density per error.
    """
    from scipy.special import logsumexp

    p = population_draws(population, draws, np.random.default_rng([seed, 37]), inner=True)
    d, e, s = (errors[k].to_numpy(float)[None, :] for k in ("d", "error", "spread"))
    var = s * s + (p["tau"][:, None] ** 2 + p["omega"][:, None] ** 2) * d * d
    r = e - p["b"][:, None] * d
    logpdf = -0.5 * (r * r / var + np.log(var)) - _HALF_LOG_2PI
    return logsumexp(logpdf, axis=0) - math.log(draws)


def slope_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per back-test: the weighted least-squares drift per decade and its standard error.

    Parameters
    ----------
    errors
        Back-test errors, one row per held-out run (``HeldOut.errors()`` columns).

    Returns
    -------
    pandas.DataFrame
        One row per back-test.
    """
    rows = []
    for (name, cut), g in errors.groupby(["dataset", "cut"], sort=True):
        d, e, s = g["d"].to_numpy(float), g["error"].to_numpy(float), g["spread"].to_numpy(float)
        w = 1 / s**2
        rows.append({"dataset": name, "cut": cut, "runs": len(g), "d_max": d.max(),
                     "drift_per_decade": float((w * d * e).sum() / (w * d * d).sum()),
                     "se": float(1 / np.sqrt((w * d * d).sum()))})
    return pd.DataFrame(rows)

