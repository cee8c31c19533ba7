"""What an isoFLOP analysis is checked and compared by: back-tests of the optima beyond a cut, the
comparison of Approach 2's allocation with the parametric fit's (Approach 3), and the cost of an
allocation that is not the optimum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central, equal_tailed
from bayes_scaling.isoflop.classical import budget_optimum, naive_isoflop
from bayes_scaling.isoflop.model import (
    ISOFLOP_GAP,
    IsoflopFit,
    curvature_at,
    design_of,
    fit_isoflop,
    optimal_loss,
    profile,
)

__all__ = ["isoflop_backtest", "compare_approaches", "allocation_cost", "MIN_BRACKETED"]

#: A held-out budget is scored when at least this share of its own vertex draws lies inside its runs'
#: range (± one decade): below it, its runs do not say where its optimum is.
MIN_BRACKETED = 0.5


def isoflop_backtest(runs, *, cut: float, shape: str = "parabola", level: float = DEFAULT_LEVEL, draws: int = 1000,
                     tune: int = 1000, chains: int = 4, seed: int = 0, fit: IsoflopFit | None = None,
                     parametric=None) -> pd.DataFrame:
    """Fit the budgets below ``cut``, forecast the optimum of each budget above it, and score the
    forecast against that budget's own optimum (:func:`~bayes_scaling.isoflop.classical.budget_optimum`).

    Parameters
    ----------
    runs
        The runs (``N``, ``D``, ``C``, ``loss``).
    cut
        Compute (FLOP) below which budgets are fitted.
    shape
        The profile's shape (:data:`~bayes_scaling.isoflop.model.SHAPES`).
    level
        Credible level of the intervals scored.
    draws, tune, chains, seed
        Sampler settings of the fit.
    fit
        The fit below the cut, when it exists already.
    parametric
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` of a parametric fit to the runs below
        the cut (Approach 3): its forecasts of the same optima are scored beside (``parametric_…``).

    Returns
    -------
    pandas.DataFrame
        One row per held-out budget with four runs of three sizes or more (five in a compute slice): ``C``, ``runs``,
        ``decades_beyond_data``, ``bracketed`` (share of the budget's own vertex draws inside its runs'
        range), ``scored`` (``bracketed`` ≥ :data:`MIN_BRACKETED`: coverage is taken over these), for ``N`` and
        ``loss`` the observed optimum (``observed_…`` median with ``_lower``/``_upper``), the forecast
        (``forecast_…`` with bounds), ``inside_…`` (the observed median inside the forecast interval)
        ``naive_N`` (the classical parabola fit's power law, below the cut) and, with ``parametric``,
        ``parametric_N`` and ``parametric_loss`` with bounds and ``inside_…_parametric``.

    Raises
    ------
    InputError
        When no budget above the cut has four runs.
    """
    iso = fit if fit is not None else fit_isoflop(runs, shape=shape, cut=cut, draws=draws, tune=tune, chains=chains,
                                                  seed=seed)
    frame, labels, budgets, design = design_of(runs, gap=iso.config.get("gap", ISOFLOP_GAP))
    # a budget's own optimum takes three coefficients and a noise variance, and in a slice a compute term
    fewest = 5 if design == "slices" else 4
    held = [k for k, c in enumerate(budgets)
            if c >= cut and (labels == k).sum() >= fewest and np.unique(frame.loc[labels == k, "N"]).size >= 3]
    if not held:
        raise InputError(f"no budget at or above {cut:.3g} FLOP has {fewest} runs of three sizes: nothing to score")
    naive = naive_isoflop(iso.runs, iso.budgets)
    rows = []
    for k in held:
        part = frame[labels == k]
        observed = budget_optimum(np.log10(part["N"]), part["loss"], budgets[k], seed=seed,
                                  log_compute=np.log10(part["C"]) if design == "slices" else None)
        forecast = iso.optimum(budgets[k], seed=seed)
        row = {"C": float(budgets[k]), "runs": len(part),
               "decades_beyond_data": float(np.log10(budgets[k] / iso.budgets.max())),
               "bracketed": observed["bracketed"], "scored": observed["bracketed"] >= MIN_BRACKETED,
               "naive_N": float(10 ** (naive["intercept"] + naive["a"] * np.log10(budgets[k])))}
        if parametric is not None:
            allocation = parametric.allocation(budgets[k])
            loss, _ = parametric.loss_at_compute(budgets[k])
            forecast_3 = {"N": allocation["N"][:, 0], "loss": loss[:, 0]}
        for name in ("N", "loss"):
            lo, med, hi = central(forecast[name][:, 0], level)
            if observed[name].size:
                olo, omed, ohi = central(observed[name], level)
            else:
                olo = omed = ohi = np.nan
            row |= {f"observed_{name}": float(omed), f"observed_{name}_lower": float(olo),
                    f"observed_{name}_upper": float(ohi), f"forecast_{name}": float(med),
                    f"forecast_{name}_lower": float(lo), f"forecast_{name}_upper": float(hi),
                    f"inside_{name}": bool(lo <= omed <= hi)}
            if parametric is not None:
                plo, pmed, phi = central(forecast_3[name], level)
                row |= {f"parametric_{name}": float(pmed), f"parametric_{name}_lower": float(plo),
                        f"parametric_{name}_upper": float(phi), f"inside_{name}_parametric": bool(plo <= omed <= phi)}
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs |= {"cut": cut, "level": level, "shape": iso.shape, "fitted_budgets": int(iso.budgets.size),
                    "design": design}
    return table


def compare_approaches(iso: IsoflopFit, forecaster, compute, *, tolerance: float = 0.1,
                       level: float = DEFAULT_LEVEL, seed: int = 0) -> pd.DataFrame:
    """N* from Approach 2 (the isoFLOP model) and Approach 3 (a parametric fit) side by side, and the
    probability that they differ by more than ``tolerance`` decades.

    The two posteriors are independent, so draws are paired at random.  Approach 2's N* is its
    power law's line (no budget's own scatter), as Approach 3's is its law's optimum.

    Parameters
    ----------
    iso
        The isoFLOP fit.
    forecaster
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` of a law of N and D.
    compute
        Budgets (FLOP).
    tolerance
        Difference in log10 N* that matters (0.1: 26%).
    level
        Credible level of the intervals.
    seed
        Seed of the pairing.

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``C``, ``N_isoflop`` and ``N_parametric`` with bounds, ``ratio`` (isoFLOP ÷
        parametric, median with bounds) and ``p_differ``; a final row ``C = NaN`` compares the exponents
        ``a`` (N* ∝ C^a) where the law has them, in columns ``a_isoflop``…; ``attrs["exponents"]``.
    """
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    two = iso.optimum(c, scatter=False)["N"]
    three = forecaster.allocation(c)["N"]
    rng = np.random.default_rng([seed, 23])
    n = min(two.shape[0], three.shape[0])
    two, three = two[rng.permutation(two.shape[0])[:n]], three[rng.permutation(three.shape[0])[:n]]
    diff = np.log10(two) - np.log10(three)
    rows = []
    for j, budget in enumerate(c):
        row = {"C": float(budget)}
        for name, draws in (("N_isoflop", two[:, j]), ("N_parametric", three[:, j]), ("ratio", 10 ** diff[:, j])):
            lo, med, hi = central(draws, level)
            row |= {name: float(med), f"{name}_lower": float(lo), f"{name}_upper": float(hi)}
        row["p_differ"] = float(np.mean(np.abs(diff[:, j]) > tolerance))
        rows.append(row)
    table = pd.DataFrame(rows)
    try:
        a3 = forecaster.allocation_exponents()["a"]
    except InputError:
        a3 = None
    if a3 is not None:
        a2 = iso.exponents["a"]
        m = min(a2.size, a3.size)
        pair = a2[rng.permutation(a2.size)[:m]] - a3[rng.permutation(a3.size)[:m]]
        table.attrs["exponents"] = {"a_isoflop": [float(v) for v in central(a2, level)],
                                    "a_parametric": [float(v) for v in central(a3, level)],
                                    "p_differ_by_0.05": float(np.mean(np.abs(pair) > 0.05))}
    table.attrs |= {"tolerance": tolerance, "level": level}
    return table


def allocation_cost(iso: IsoflopFit, n_params: float, compute: float, *, level: float = DEFAULT_LEVEL,
                    seed: int = 0) -> dict[str, float]:
    """What training ``n_params`` parameters at budget ``compute`` gives up against the optimum.

    The budget's profile is drawn from the model (a fitted budget's own curve, else a new budget's:
    its optimum from the power laws with their scatter, its curvature from the pooled population),
    so the loss given up is Δ = c · g_s(log10 N − x*).  The *deadweight compute* is the share of the
    budget that reaching the same loss at the optimum would not need: 1 − C_eq / C, where the optimum
    at C_eq has the chosen allocation's loss L* + Δ (along the optimum's power law in C).

    Parameters
    ----------
    iso
        The isoFLOP fit.
    n_params
        The parameters trained.
    compute
        The budget (FLOP).
    level
        Credible level of the intervals.
    seed
        Seed of a new budget's draws.

    Returns
    -------
    dict of str to float
        ``loss_given_up`` and ``deadweight_fraction`` (medians) with ``_lower``/``_upper``, and
        ``optimal_N`` (median).

    Raises
    ------
    InputError
        For a size or compute that is not positive.
    """
    if not (n_params > 0 and compute > 0):
        raise InputError("the parameters and the compute must be positive")
    rng = np.random.default_rng([seed, 29])
    x = np.log10(n_params) - iso.x_centre
    fitted = np.flatnonzero(np.isclose(iso.budgets, compute, rtol=0.05))
    if fitted.size:
        k = int(fitted[0])
        x_star, l_star, curv = (iso._draws(v)[:, k] for v in ("x_star", "l_star", "curvature"))
    else:
        lc = np.log10(compute) - iso.c_centre
        d = {v: iso._draws(v) for v in ("a", "a0", "sigma_n", "l0", "l1", "sigma_l", "mu_c", "tau_c")}
        # fits saved before the curvature trend existed have none: a constant curvature
        d["gamma_c"] = iso._draws("gamma_c") if "gamma_c" in iso.tree["posterior"] else 0.0
        m = d["a"].size
        x_star = d["a0"] + d["a"] * lc + d["sigma_n"] * rng.standard_normal(m)
        l_star = optimal_loss(d | {"E": iso._draws("E")}, lc, d["sigma_l"] * rng.standard_normal(m))
        curv = curvature_at(d, lc, d["tau_c"] * rng.standard_normal(m))
    given_up = curv * profile(x - x_star, iso._draws("skew"))
    # Along the optimum's law, log(L* − E) falls by l1 per decade: the compute that reaches the chosen
    # allocation's loss at the optimum is C · 10^(log(1 + Δ / (L* − E)) / l1).
    reducible = np.maximum(l_star - iso._draws("E"), 1e-12)
    deadweight = 1.0 - 10 ** (np.log1p(given_up / reducible) / iso._draws("l1"))
    out = {"optimal_N": float(np.median(10 ** (x_star + iso.x_centre)))}
    for name, draws in (("loss_given_up", given_up), ("deadweight_fraction", deadweight)):
        lo, hi = equal_tailed(draws, level)
        out |= {name: float(np.median(draws)), f"{name}_lower": float(lo), f"{name}_upper": float(hi)}
    return out
