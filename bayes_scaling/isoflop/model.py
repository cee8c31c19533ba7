"""A Bayesian isoFLOP model (Hoffmann et al. 2022's Approach 2, with uncertainty).

The runs (the lowest loss at each (N, D)) are grouped by compute budget, or on an irregular grid by
slice of compute (:func:`~bayes_scaling.isoflop.design.isoflop_budgets`). In each budget ``k`` the
loss is a curve in x = log10 N around the budget's optimum:

    loss = L*_k + c_k · g_s(x − x*_k)  + noise (Student-t, ν = 4),   g_s(d) = 2 (e^(s·d) − 1 − s·d) / s²

g_s is convex with its minimum at d = 0 and tends to the parabola d² as s → 0: ``shape="parabola"``
fixes the skew s at 0 (the usual fit); ``"asymmetric"`` learns one skew shared by every budget, so
that a profile may rise faster on one side (real profiles do: the parametric law's isoFLOP profiles
rise faster towards small models when α > β).  The curvatures are partially pooled about a trend in
compute, log c_k ~ N(μ_c + γ_c · (log10 C_k − c̄), τ_c): profiles flatten as the reducible loss
shrinks (under the Chinchilla law log c falls 0.36 per decade), so a budget whose grid misses its
optimum borrows its curvature from the trend.
The optima lie on power laws in compute, each with its own scatter:

    x*_k = a0 + a · (log10 C_k − c̄) + σ_N · z        (N* ∝ C^a, so D* = C / 6N* ∝ C^(1 − a))
    log(L*_k − E) = l0 + l1 · (log10 C_k − c̄) + σ_L · z

A run whose compute C differs from its budget's (in a slice) has its budget's profile moved to its
own compute along these laws: optimum x*_k + a · (log10 C − log10 C_k), L* and log c at log10 C
(:func:`expected_loss`); at a budget's exact compute nothing moves.

The optimal loss falls as a power law towards an irreducible E (a pure power law, E = 0, forecast
held-out budgets' optima too low on the Chinchilla runs).

Priors (x and log10 C centred on the data): a ~ N(0.5, 0.25) (Chinchilla 0.46–0.50, Kaplan 0.73);
a0 ~ N(0, 1) decade; σ_N ~ HalfNormal(0.1) decades; E = the smallest loss × sigmoid(u), u ~ N(0,
1.5); l1 ~ N(−0.3, 0.3) per decade (Chinchilla: about −0.36, i.e. L* − E ∝ C^−0.16); l0 ~ N(log of
half the median loss, 1); σ_L ~ HalfNormal(0.05); μ_c ~ N(log 0.1, 1) (loss per decade² off the
optimum); γ_c ~ N(0, 0.5) per decade; τ_c ~ HalfNormal(0.5); s ~ N(0, 1) per decade; noise ~ HalfNormal(0.05).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.isoflop.design import (
    MIN_SIZES,
    MIN_SPAN,
    SLICE_WIDTH,
    best_of_repeats,
    isoflop_budgets,
)
from bayes_scaling.options import ISOFLOP_SHAPES

__all__ = ["SHAPES", "IsoflopFit", "fit_isoflop", "load_isoflop"]

#: Marks a netCDF file written by :meth:`IsoflopFit.save`.
FILE_KIND = "bayes_scaling isoflop fit"

log = logging.getLogger(__name__)

SHAPES = ISOFLOP_SHAPES
#: Fewest budgets a power law through the optima is fitted to.
MIN_BUDGETS = 3
#: Fewest runs a budget needs (a curve with its optimum has three parameters).
MIN_RUNS_PER_BUDGET = 3
#: Runs within this many decades of compute share a budget: tighter than a figure's grouping, since a
#: budget's runs should have one compute (ladders' budgets are exact; digitized ones scatter ~0.01).
ISOFLOP_GAP = 0.02
NU = 4.0
VAR_NAMES = ["a", "a0", "sigma_n", "E", "l0", "l1", "sigma_l", "mu_c", "gamma_c", "tau_c", "skew", "sigma"]


@dataclass
class IsoflopFit:
    """Posterior draws of the isoFLOP model and the runs it was fitted to.

    Parameters
    ----------
    tree
        DataTree with ``posterior`` ((chain, draw) and ``budget`` dimensions) and ``sample_stats``.
    budgets
        Compute of each budget fitted (FLOP), smallest first.
    runs
        The runs fitted: ``N``, ``D``, ``C``, ``loss`` and ``budget`` (the index into ``budgets``).
    shape
        ``"parabola"`` or ``"asymmetric"``.
    x_centre
        The mean log10 N the model is centred on.
    c_centre
        The mean log10 C of the budgets.
    diagnostics
        The sampler's diagnostics.
    left_out
        Runs in no budget (fewer than three runs near their compute), not fitted.
    """

    tree: Any
    budgets: np.ndarray
    runs: pd.DataFrame
    shape: str
    x_centre: float
    c_centre: float
    diagnostics: Any = None
    left_out: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def _draws(self, name: str) -> np.ndarray:
        """A posterior variable's draws with (chain, draw) stacked: shape (draws,) or (draws, budget)."""
        values = np.asarray(self.tree["posterior"][name].values)
        return values.reshape(-1, *values.shape[2:])

    @property
    def exponents(self) -> dict[str, np.ndarray]:
        """Draws of a (N* ∝ C^a) and b = 1 − a (D* ∝ C^b)."""
        a = self._draws("a")
        return {"a": a, "b": 1.0 - a}

    def budget_optima(self) -> dict[str, np.ndarray]:
        """Draws of each fitted budget's optimum: ``N``, ``D`` and ``loss``, shape (draws, budgets)."""
        n = 10 ** (self._draws("x_star") + self.x_centre)
        return {"N": n, "D": self.budgets[None, :] / (FLOP_PER_PARAM_TOKEN * n), "loss": self._draws("l_star")}

    def optimum(self, compute: Any, *, seed: int = 0, scatter: bool = True) -> dict[str, np.ndarray]:
        """Draws of the compute-optimal N*, D* and loss L* at budgets ``compute``: the power laws through
        the optima, with their scatter (``scatter=False``: the laws' lines alone).

        Parameters
        ----------
        compute
            Compute budgets in FLOP.
        seed
            Seed of the scatter's draws.
        scatter
            Include the optima's scatter about their power laws (a new budget's own optimum).

        Returns
        -------
        dict of str to numpy.ndarray
            ``N``, ``D``, ``loss``, each (draws, budgets).
        """
        c = np.atleast_1d(np.asarray(compute, dtype=float))
        if np.any(~(c > 0)) or not np.all(np.isfinite(c)):
            raise InputError("compute budgets must be positive and finite")
        lc = np.log10(c)[None, :] - self.c_centre
        rng = np.random.default_rng([seed, 3])
        a, a0, sn = self._draws("a")[:, None], self._draws("a0")[:, None], self._draws("sigma_n")[:, None]
        l0, l1, sl = self._draws("l0")[:, None], self._draws("l1")[:, None], self._draws("sigma_l")[:, None]
        zn = rng.standard_normal((a.shape[0], c.size)) if scatter else 0.0
        zl = rng.standard_normal((a.shape[0], c.size)) if scatter else 0.0
        n = 10 ** (a0 + a * lc + sn * zn + self.x_centre)
        loss = optimal_loss({"E": self._draws("E")[:, None], "l0": l0, "l1": l1}, lc, sl * zl)
        return {"N": n, "D": c[None, :] / (FLOP_PER_PARAM_TOKEN * n), "loss": loss}

    def table(self, compute: Any, *, level: float = DEFAULT_LEVEL, seed: int = 0) -> pd.DataFrame:
        """The optimum at each budget: ``N``, ``D``, ``tokens_per_param`` and ``loss``, medians with
        ``level`` intervals, and how far each budget lies beyond the largest fitted one.

        Parameters
        ----------
        compute
            Compute budgets in FLOP.
        level
            Credible level of the intervals.
        seed
            Seed of the scatter's draws.

        Returns
        -------
        pandas.DataFrame
        """
        c = np.atleast_1d(np.asarray(compute, dtype=float))
        draws = self.optimum(c, seed=seed)
        draws["tokens_per_param"] = draws["D"] / draws["N"]
        rows = []
        for j, budget in enumerate(c):
            row = {"C": float(budget), "decades_beyond_data": float(np.log10(budget / self.budgets.max()))}
            for name in ("N", "D", "tokens_per_param", "loss"):
                lo, med, hi = central(draws[name][:, j], level)
                row |= {name: float(med), f"{name}_lower": float(lo), f"{name}_upper": float(hi)}
            rows.append(row)
        table = pd.DataFrame(rows)
        table.attrs["level"] = level
        return table

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the fit as one netCDF file, atomically (:func:`load_isoflop` reads it back).

        Parameters
        ----------
        path
            The file (``.nc``).
        overwrite
            Replace an existing file.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        InputError
            When the file exists and ``overwrite`` is not set, or its folder does not exist.
        """
        import xarray as xr

        from bayes_scaling.io.outputs import new_file_target, write_netcdf

        target = new_file_target(path, overwrite=overwrite)
        stored = self.tree.copy()
        stored["runs"] = xr.Dataset({c: ("run", self.runs[c].to_numpy()) for c in self.runs.columns})
        stored.attrs = {"kind": FILE_KIND, "budgets": json.dumps([float(b) for b in self.budgets]),
                        "shape": self.shape, "x_centre": self.x_centre, "c_centre": self.c_centre,
                        "left_out": self.left_out, "config": json.dumps(self.config, default=str)}
        write_netcdf(stored, target)
        return target

    def _params(self) -> dict[str, np.ndarray]:
        """The posterior draws :func:`expected_loss` reads: scalars as (draws, 1), per budget (draws, budgets)."""
        d = {v: self._draws(v) for v in ("x_star", "a", "E", "l0", "l1", "sigma_l", "z_l", "mu_c", "gamma_c", "tau_c",
                                          "z_c", "skew")}
        p = {v: d[v][:, None] for v in ("a", "E", "l0", "l1", "mu_c", "gamma_c", "skew")}
        return p | {"x_star": d["x_star"], "dev_l": d["sigma_l"][:, None] * d["z_l"],
                    "dev_c": d["tau_c"][:, None] * d["z_c"]}

    def at_budget_compute(self) -> np.ndarray:
        """Each fitted run's loss moved to its budget's compute: the loss less the model's (median)
        difference between the run's expected loss at its own compute and at its budget's.  Runs of an
        exact budget barely move; runs of a compute slice are shown on their slice's profile.

        Returns
        -------
        numpy.ndarray
            One loss per row of :attr:`runs`.
        """
        k = self.runs["budget"].to_numpy()
        x = np.log10(self.runs["N"].to_numpy()) - self.x_centre
        lc = np.log10(self.budgets) - self.c_centre
        own = np.log10(self.runs["C"].to_numpy()) - self.c_centre
        p = self._params()
        moved = expected_loss(p, x, k, own, lc) - expected_loss(p, x, k, lc[k], lc)
        return self.runs["loss"].to_numpy() - np.median(moved, axis=0)

    def curve(self, budget: int, log_n: np.ndarray) -> np.ndarray:
        """Draws of budget ``budget``'s expected loss at log10 N = ``log_n``, shape (draws, points).

        Parameters
        ----------
        budget
            Index into :attr:`budgets`.
        log_n
            log10 N of the points.

        Returns
        -------
        numpy.ndarray
        """
        x = np.asarray(log_n, dtype=float)[None, :] - self.x_centre
        d = x - self._draws("x_star")[:, budget, None]
        return self._draws("l_star")[:, budget, None] + self._draws("curvature")[:, budget, None] * profile(
            d, self._draws("skew")[:, None])


def profile(d, skew, *, np=np):
    """The profile's shape g_s(d) = 2 (e^(s·d) − 1 − s·d) / s², the parabola d² at s = 0 (its series
    d² + s·d³/3 near it), in numpy or PyTensor (``np=pytensor.tensor``)."""
    small = np.abs(skew) < 1e-4
    safe = np.where(small, 1.0, skew)
    return np.where(small, d ** 2 + skew * d ** 3 / 3, 2 * (np.expm1(safe * d) - safe * d) / safe ** 2)


def load_isoflop(path: str | os.PathLike) -> IsoflopFit:
    """Read a fit written by :meth:`IsoflopFit.save`; its diagnostics are computed again.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    IsoflopFit

    Raises
    ------
    InputError
        When the file is missing, unreadable or not an isoFLOP fit.
    """
    import xarray as xr

    from bayes_scaling.io.outputs import read_marked_tree
    from bayes_scaling.sampling.diagnostics import check_sampling

    source = Path(path)
    tree = read_marked_tree(source, kind=FILE_KIND, what="an isoFLOP fit",
                            writer="bayes_scaling.isoflop.model.IsoflopFit.save")
    runs = tree["runs"].to_dataset().to_dataframe().reset_index(drop=True)
    runs["budget"] = runs["budget"].astype(int)
    shape = str(tree.attrs["shape"])
    del tree["runs"]
    posterior = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(),
                                       "sample_stats": tree["sample_stats"].to_dataset()})
    diagnostics = check_sampling(posterior, [v for v in VAR_NAMES if shape == "asymmetric" or v != "skew"],
                                 label=f"isoFLOP fit {source.name}")
    return IsoflopFit(posterior, np.asarray(json.loads(tree.attrs["budgets"])), runs, shape,
                      float(tree.attrs["x_centre"]), float(tree.attrs["c_centre"]), diagnostics,
                      int(tree.attrs["left_out"]), json.loads(tree.attrs["config"]))


def expected_loss(p, x, k, lc_run, lc, *, np=np):
    """The model's expected loss of runs at log10 N = ``x`` (centred) in budgets ``k``, each at its own
    log10 compute ``lc_run`` (centred; ``lc`` the budgets'): its budget's profile moved along the
    optimum's power laws to the run's compute.  For runs at their budget's exact compute this is
    L*_k + c_k · g_s(x − x*_k).  ``p`` maps the model's variables to values (numpy arrays with draws
    on a leading axis and budgets last, or PyTensor variables with ``np=pytensor.tensor``)."""
    shift = lc_run - lc[k]
    x_star = p["x_star"][..., k] + p["a"] * shift
    return (optimal_loss(p, lc_run, p["dev_l"][..., k], np=np)
            + curvature_at(p, lc_run, p["dev_c"][..., k], np=np) * profile(x - x_star, p["skew"], np=np))


def optimal_loss(p, lc, dev, *, np=np):
    """The optimum's loss at centred log10 compute ``lc``: L* = E + exp(l0 + l1 · lc + dev), ``dev`` a
    budget's deviation σ_L·z (0 on the law's line); numpy or PyTensor (``np=pytensor.tensor``)."""
    return p["E"] + np.exp(p["l0"] + p["l1"] * lc + dev)


def curvature_at(p, lc, dev, *, np=np):
    """A profile's curvature (loss per decade² at its optimum) at centred log10 compute ``lc``:
    exp(μ_c + γ_c · lc + dev), ``dev`` a budget's deviation τ_c·z."""
    return np.exp(p["mu_c"] + p["gamma_c"] * lc + dev)


def _build(x: np.ndarray, y: np.ndarray, k: np.ndarray, lc_run: np.ndarray, lc: np.ndarray, *, shape: str,
           loss_centre: float, loss_floor: float):
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"budget": np.arange(lc.size), "run": np.arange(y.size)}
    with pm.Model(coords=coords) as model:
        a = pm.Normal("a", 0.5, 0.25)
        a0 = pm.Normal("a0", 0.0, 1.0)
        sigma_n = pm.HalfNormal("sigma_n", 0.1)
        z_n = pm.Normal("z_n", 0.0, 1.0, dims="budget")
        x_star = pm.Deterministic("x_star", a0 + a * lc + sigma_n * z_n, dims="budget")
        e = pm.Deterministic("E", loss_floor * pm.math.sigmoid(pm.Normal("e_raw", 0.0, 1.5)))
        l0 = pm.Normal("l0", loss_centre, 1.0)
        l1 = pm.Normal("l1", -0.3, 0.3)
        sigma_l = pm.HalfNormal("sigma_l", 0.05)
        z_l = pm.Normal("z_l", 0.0, 1.0, dims="budget")
        params = {"x_star": x_star, "a": a, "E": e, "l0": l0, "l1": l1, "dev_l": sigma_l * z_l}
        pm.Deterministic("l_star", optimal_loss(params, lc, params["dev_l"], np=pt), dims="budget")
        params["mu_c"] = pm.Normal("mu_c", math.log(0.1), 1.0)
        params["gamma_c"] = pm.Normal("gamma_c", 0.0, 0.5)
        tau_c = pm.HalfNormal("tau_c", 0.5)
        params["dev_c"] = tau_c * pm.Normal("z_c", 0.0, 1.0, dims="budget")
        pm.Deterministic("curvature", curvature_at(params, lc, params["dev_c"], np=pt), dims="budget")
        if shape == "asymmetric":
            params["skew"] = pm.Normal("skew", 0.0, 1.0)
        else:
            params["skew"] = pm.Deterministic("skew", pt.as_tensor_variable(0.0))
        mu = expected_loss(params, x, k, lc_run, lc, np=pt)
        sigma = pm.HalfNormal("sigma", 0.05)
        pm.StudentT("loss", nu=NU, mu=mu, sigma=sigma, observed=y, dims="run")
    return model


def _start(*, loss_centre: float) -> dict[str, float]:
    """Every chain's start: the priors' centres, not jittered.  Chains jittered about PyMC's support
    points (a in [−0.5, 1.5]) could settle in a far mode where a budget's grid lies wholly above its
    optimum (misfitting-final's smallest slices): one chain stayed at a = 0.93 while three found 0.53."""
    return {"a": 0.5, "a0": 0.0, "sigma_n": 0.05, "e_raw": 0.0, "l0": loss_centre, "l1": -0.3, "sigma_l": 0.02,
            "mu_c": math.log(0.1), "gamma_c": 0.0, "tau_c": 0.2, "sigma": 0.02}


def design_of(runs, *, gap: float = ISOFLOP_GAP) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str]:
    """The runs an isoFLOP analysis reads (the lowest loss at each (N, D)) and their budgets.

    Parameters
    ----------
    runs
        A :class:`~bayes_scaling.data.runs.RunTable` (or anything with ``N``, ``D``, ``C``, ``loss``).
    gap
        Runs within this many decades of compute share an exact budget.

    Returns
    -------
    tuple
        (the runs: ``N``, ``D``, ``C``, ``loss``; each run's budget, -1 for none; the budgets' compute;
        ``"exact"`` or ``"slices"``: :func:`~bayes_scaling.isoflop.design.isoflop_budgets`).
    """
    frame = pd.DataFrame({name: np.asarray(getattr(runs, name), dtype=float) for name in ("N", "D", "C", "loss")})
    frame = best_of_repeats(frame)
    labels, budgets, design = isoflop_budgets(frame["C"], frame["N"], gap=gap, min_runs=MIN_RUNS_PER_BUDGET)
    return frame, labels, budgets, design


def fit_isoflop(runs, *, shape: str = "parabola", cut: float | None = None, draws: int = 1000, tune: int = 1000,
                chains: int = 4, seed: int = 0, gap: float = ISOFLOP_GAP) -> IsoflopFit:
    """Fit the isoFLOP model (module docstring) to the runs' budgets.

    Parameters
    ----------
    runs
        A :class:`~bayes_scaling.data.runs.RunTable` (or anything with ``N``, ``D``, ``C``, ``loss``).
    shape
        ``"parabola"`` or ``"asymmetric"``.
    cut
        Fit only the budgets below this compute (FLOP): a back-test's training budgets.
    draws, tune, chains
        NUTS draws and tuning steps per chain, and chains.
    seed
        Seed of the sampler; the same seed gives the same draws.
    gap
        Runs within this many decades of compute share a budget.

    Returns
    -------
    IsoflopFit

    Raises
    ------
    InputError
        For an unknown shape, or with fewer than three budgets of three runs.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.isoflop.model import fit_isoflop
    >>> iso = fit_isoflop(bs.load_dataset("chinchilla"), draws=200, tune=200, chains=2, seed=1)
    >>> bool(0.3 < float(iso.exponents["a"].mean()) < 0.8)
    True
    """
    from bayes_scaling.sampling.diagnostics import check_sampling
    from bayes_scaling.sampling.nuts import run_sampler
    from bayes_scaling.sampling.settings import SamplerSettings

    if shape not in SHAPES:
        raise InputError(f"unknown isoFLOP shape {shape!r}; choose one of {', '.join(SHAPES)}")
    frame, labels, budgets, design = design_of(runs, gap=gap)
    if cut is not None:  # the budgets at or above the cut, and any run at or above it, are not fitted
        kept = np.flatnonzero(budgets < cut)
        remap = np.full(budgets.size, -1)
        remap[kept] = np.arange(kept.size)
        labels = np.where((labels >= 0) & (frame["C"].to_numpy() < cut), remap[np.maximum(labels, 0)], -1)
        budgets = budgets[kept]
    frame["budget"] = labels
    used = frame[frame["budget"] >= 0].reset_index(drop=True)
    if budgets.size < MIN_BUDGETS:
        where = f" below {cut:.3g} FLOP" if cut is not None else ""
        raise InputError(f"an isoFLOP analysis needs at least {MIN_BUDGETS} budgets of {MIN_RUNS_PER_BUDGET} or more "
                         f"runs of {MIN_SIZES} sizes spread over {MIN_SPAN:g} decades each{where} (runs within "
                         f"{gap:g} decades of compute share a "
                         f"budget, or on an irregular grid a slice of {SLICE_WIDTH:g} decades); found {budgets.size}")
    x = np.log10(used["N"].to_numpy())
    x_centre = float(x.mean())
    c_centre = float(np.log10(budgets).mean())
    lc = np.log10(budgets) - c_centre
    lc_run = np.log10(used["C"].to_numpy()) - c_centre
    y = used["loss"].to_numpy()
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed)
    tree, timing = run_sampler(lambda: _build(x - x_centre, y, used["budget"].to_numpy(), lc_run, lc, shape=shape,
                                              loss_centre=float(np.log(np.median(y) / 2)),
                                              loss_floor=float(y.min())), settings,
                               initial_points=_start(loss_centre=float(np.log(np.median(y) / 2))))
    diagnostics = check_sampling(tree, [v for v in VAR_NAMES if shape == "asymmetric" or v != "skew"],
                                 label="isoFLOP fit")
    left_out = int((frame["budget"] < 0).sum())
    if left_out:
        log.info("isoFLOP fit: %d runs share no budget with two others (or lie above the cut) and are not fitted",
                 left_out)
    if design == "slices":
        log.info("isoFLOP fit: the runs share few exact budgets; %d compute slices of %g decades (each run's profile "
                 "at its own compute)", budgets.size, SLICE_WIDTH)
    if frame.attrs.get("repeats_dropped"):
        log.info("isoFLOP fit: %d runs repeat another's N and D (a sweep) and enter as the lowest loss at each",
                 frame.attrs["repeats_dropped"])
    config = {"approach": 2, "shape": shape, "cut": cut, "design": design, "repeats_dropped": frame.attrs.get("repeats_dropped", 0), "draws": draws, "tune": tune, "chains": chains, "seed": seed, "gap": gap,
              "timing": timing}
    return IsoflopFit(tree, budgets, used, shape, x_centre, c_centre, diagnostics, left_out, config)
