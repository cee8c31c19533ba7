"""The population of structural errors across published datasets: a hierarchical model of the
drift b, its spread tau, the scatter omega, lambda (how much more back-tests inside a fit's runs
err than its forecasts) and rho <= 1 (how far the law-only spread overstates errors), fitted
to the rolling back-tests of every calibration dataset (:func:`fit_population`); its draws ship
as the ``extrapolation-population`` dataset (:func:`load_population`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.options import DEFAULT_WINDOW
from bayes_scaling.posterior.structural import quadratic_in_drift, spread_scale

log = logging.getLogger(__name__)


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

    Parameters
    ----------
    errors
        Back-test errors, one row per held-out run (``HeldOut.errors()`` columns).
    draws
        Number of draws.
    tune
        Tuning steps per chain.
    chains
        Chains.
    seed
        Random seed; the same seed gives the same result.
    shared_direction
        One drift direction shared by every dataset.

    Returns
    -------
    pandas.DataFrame
        Posterior draws of the population; sampling diagnostics in ``attrs``.
    """
    import nutpie

    from bayes_scaling.sampling.diagnostics import check_sampling
    from bayes_scaling.sampling.nuts import compiled_nutpie_model

    names = sorted(errors["dataset"].unique())
    if len(names) < 2:
        raise InputError("a population of structural errors needs back-tests of at least two datasets")
    layout = _BacktestLayout(errors, names)
    # compiled as fits are (bayes_scaling.sampling.compiled): the numba code comes from the disk cache, so
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


def load_population(law: str, likelihood: str, *, window: float | str | None = DEFAULT_WINDOW) -> pd.DataFrame:
    """Population draws for ``law`` fitted with ``likelihood`` from the ``extrapolation-population``
    dataset; a law without back-tests of its own falls back to the Chinchilla law's (logged).
    The population was learned from back-tests of fits to every run (``window=None``) or to the
    runs near the frontier (any window: ``"frontier"``'s).

    Parameters
    ----------
    law
        A law name.
    likelihood
        A likelihood name.
    window
        The fit's training window (``fit(window=)``; default ``"frontier"``, as a fit's).

    Returns
    -------
    pandas.DataFrame
        Posterior draws of the population.
    """
    from bayes_scaling.data.datasets import load_dataset

    table = load_dataset("extrapolation-population")
    kind = "all" if window is None else "frontier"
    if "window" in table.columns:
        table = table[table["window"] == kind]
    for want_law, want_lik in ((law, likelihood), (law, None), ("chinchilla", "student-t")):
        rows = table[(table["law"] == want_law) & ((table["likelihood"] == want_lik) if want_lik else True)]
        if len(rows):
            break
    if (want_law, want_lik) != (law, likelihood):
        log.info("structural error: no population learned for %s / %s; using %s / %s", law, likelihood,
                 want_law, rows["likelihood"].iloc[0])
    frame = rows.reindex(columns=list(POPULATION_COLUMNS)).fillna(_OPTIONAL_COLUMNS).reset_index(drop=True)
    frame.attrs["source"] = (f"extrapolation-population ({want_law} / {rows['likelihood'].iloc[0]}, fits to "
                             f"{'every run' if kind == 'all' else 'the runs near the frontier'}: back-tests of "
                             f"{rows['datasets'].iloc[0]})")
    return frame


def population_draws(population: pd.DataFrame, n: int, rng: np.random.Generator, *,
                     inner: bool = False) -> dict[str, np.ndarray]:
    """(b, τ, ω) of a *new* dataset: the population's predictive, ``n`` draws.  ``inner``: as its
    back-tests inside a fit's training runs see them, each scaled by the dataset's λ
    (:func:`fit_population`).

    Parameters
    ----------
    population
        Population draws (:func:`~bayes_scaling.calibration.population.load_population`).
    n
        Number of draws.
    rng
        A numpy Generator.
    inner
        Also run the back-tests inside each training set.

    Returns
    -------
    dict of str to numpy.ndarray
        ``b``, ``tau``, ``omega`` (and ``rho``).
    """
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

