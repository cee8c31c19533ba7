"""Task accuracy from loss, with uncertainty: the two-step downstream forecast.

Step 1 is the scaling law: a :class:`~bayes_scaling.forecast.forecaster.Forecaster` gives draws of
a new run's loss at (N, D), its structural error beyond the data included. Step 2 maps a loss to
each task's accuracy through a sigmoid between the task's chance level ``c_t`` and a ceiling
``u_t``:

    acc = c_t + (u_t − c_t) · σ(k_t · (m_t − z)),      z = (x − x̄) / s_x

where x is the step's input — the validation loss (``through="loss"``, the default), a task's own
loss column (``through="task-loss"``: a law of its own is fitted to it), or −log10 C
(``through="compute"``, the one-step variant) — standardized over the runs fitted. The slopes
k_t > 0, midpoints m_t and ceilings are partially pooled across tasks (log k_t ~ N(μ_k, τ_k),
m_t ~ N(μ_m, τ_m), logit((u_t − c_t)/(1 − c_t)) ~ N(μ_u, τ_u)). A run's observed accuracy is
Student-t (ν = 5) about it with the binomial variance of the task's ``items`` questions plus a
task's own scatter s_t (log s_t ~ N(μ_s, τ_s)).

Priors: μ_k ~ N(log 2, 1) (a standard deviation of the input moves a task by about half its range
at the midpoint); τ_k ~ HalfNormal(0.5); μ_m ~ N(0, 2), τ_m ~ HalfNormal(1.5) (midpoints inside or
beyond the data); μ_u ~ N(1.5, 1) (ceilings about 80% of the way from chance to 1), τ_u ~
HalfNormal(1); μ_s ~ N(log 0.01, 1), τ_s ~ HalfNormal(0.5).

The two steps are fitted apart (step 2 on the runs' observed inputs) and joined by drawing each
accuracy draw's input from step 1's predictive draws: the law's posterior, its structural error
and a new run's noise all reach the accuracy. Beyond the largest fitted budget, step 2 has a
structural error of its own, learned from refits of each task's sigmoid inside the fitted runs
(:mod:`bayes_scaling.downstream.structural`): the drawn σ is kept in the posterior as
``structural_sigma``. Tasks whose best runs are within
``min_above_chance`` of chance (or three binomial standard errors) are not fitted: they are
reported as near chance, never forecast.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN, RunTable
from bayes_scaling.data.tasks import task_accuracies, task_table
from bayes_scaling.downstream.sigmoid import sigmoid_accuracy
from bayes_scaling.downstream.step_two import (
    NU,
    VAR_NAMES,
    initial_points,
    inverse_items,
    resolution,
    sample_step_two,
)
from bayes_scaling.downstream.structural import (
    SIGMA_GRID,
    drift_accuracy,
    inner_cuts,
    sample_sigma,
    sigma_posterior,
)
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central
from bayes_scaling.options import DOWNSTREAM_THROUGH

__all__ = ["THROUGH", "DownstreamFit", "fit_downstream", "load_downstream"]

log = logging.getLogger(__name__)

#: What step 2 reads accuracy from.
THROUGH = DOWNSTREAM_THROUGH
#: Marks a netCDF file written by :meth:`DownstreamFit.save`.
FILE_KIND = "bayes_scaling downstream fit"
#: A task whose best three fitted runs are this close to chance is reported as near chance.
MIN_ABOVE_CHANCE = 0.05
#: Fewest runs with an accuracy a task needs to be fitted.
MIN_TASK_RUNS = 4
#: Draws (and tuning steps) per chain, at most, of the refits that learn step 2's structural error.
INNER_DRAWS = 300
#: A refit for the structural error whose R-hat exceeds this (or that diverges) is reported.
INNER_RHAT = 1.1


@dataclass
class DownstreamFit:
    """The posterior of step 2 for each task, joined to step 1 (the law) for forecasts.

    Parameters
    ----------
    tree
        DataTree with ``posterior`` ((chain, draw) and ``task`` dimensions) and ``sample_stats``;
        None when no task is above chance.
    tasks
        One row per task: ``task``, ``chance``, ``items``, ``status`` (``"fitted"`` or
        ``"near chance"``), ``runs`` (fitted runs with an accuracy) and ``best_observed`` (the mean
        of its three best fitted runs).
    runs
        The runs fitted: ``N``, ``D``, ``C``, ``x`` (step 2's input) and one accuracy column per task.
    through
        ``"loss"``, ``"task-loss"`` or ``"compute"``.
    x_centre, x_scale
        The standardization of the input.
    laws
        Step 1: a :class:`~bayes_scaling.forecast.forecaster.Forecaster` of the loss (``"loss"``),
        one per task (``"task-loss"``), or none (``"compute"``). Not stored in the file.
    """

    tree: Any
    tasks: pd.DataFrame
    runs: pd.DataFrame
    through: str
    x_centre: float
    x_scale: float
    laws: Any = None
    diagnostics: Any = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted_tasks(self) -> list[str]:
        """The tasks above chance, in the order of the posterior's ``task`` dimension."""
        return self.tasks.loc[self.tasks["status"] == "fitted", "task"].tolist()

    def _draws(self, name: str) -> np.ndarray:
        values = np.asarray(self.tree["posterior"][name].values)
        return values.reshape(-1, *values.shape[2:])

    @property
    def fitted_compute(self) -> float:
        """The largest compute fitted (FLOP): step 2's structural error grows beyond it."""
        return float(np.max(self.runs["C"]))

    def accuracy_at(self, x: np.ndarray, *, beyond: np.ndarray | None = None, predictive: bool = True,
                    seed: int = 0) -> np.ndarray:
        """Draws of each fitted task's accuracy at inputs ``x`` (step 2 alone).

        Parameters
        ----------
        x
            Inputs (losses, or −log10 C), shape (points,), or draws of them, (draws, points) or
            (draws, tasks, points).
        beyond
            Decades beyond the largest fitted budget of each point, (points,): step 2's structural
            error drifts the curve there. None: the curve as fitted (no structural error).
        predictive
            A new run's observed accuracy (binomial noise and the task's scatter), else the curve.
        seed
            Seed of the noise and of the structural drift.

        Returns
        -------
        numpy.ndarray
            (draws, tasks, points), in [0, 1].
        """
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None, None, :]
        elif x.ndim == 2:
            x = x[:, None, :]
        z = (x - self.x_centre) / self.x_scale
        fitted = self.tasks[self.tasks["status"] == "fitted"]
        chance = fitted["chance"].to_numpy()[None, :, None]
        k, m, ceiling = (self._draws(v)[:, :, None] for v in ("k", "m", "ceiling"))
        p = sigmoid_accuracy(z, chance, ceiling, k, m)
        if beyond is not None and "structural_sigma" in self.tree["posterior"]:
            p = drift_accuracy(p, chance, self._draws("structural_sigma"), np.asarray(beyond, dtype=float), seed=seed)
        if not predictive:
            return p
        rng = np.random.default_rng([seed, 41])
        inv_items = inverse_items(fitted["items"].to_numpy())[None, :, None]
        floor = resolution(fitted["items"].to_numpy())[None, :, None]
        sd = np.sqrt(p * (1 - p) * inv_items + self._draws("scatter")[:, :, None] ** 2 + floor ** 2)
        return np.clip(p + sd * rng.standard_t(NU, size=p.shape), 0.0, 1.0)

    def inputs(self, *, N: Any, D: Any, seed: int = 0) -> np.ndarray:
        """Draws of step 2's input at new runs (N, D): step 1's predictive draws, paired at random
        with step 2's draws; −log10 C exactly for ``through="compute"``.

        Parameters
        ----------
        N, D
            Parameters and tokens of the runs.
        seed
            Seed of the pairing and of step 1's noise.

        Returns
        -------
        numpy.ndarray
            (draws, points), or (draws, tasks, points) with a law per task.
        """
        n, d = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (N, D))
        if n.shape != d.shape or np.any(~(n > 0)) or np.any(~(d > 0)):
            raise InputError("N and D must be positive numbers of the same length")
        draws = self._draws("k").shape[0]
        if self.through == "compute":
            return np.broadcast_to(-np.log10(FLOP_PER_PARAM_TOKEN * n * d), (draws, n.size))
        if self.laws is None:
            raise InputError("this downstream fit has no law for its inputs (load_downstream(..., law=FIT))")
        rng = np.random.default_rng([seed, 43])

        def paired(forecaster) -> np.ndarray:
            losses = forecaster.loss(N=n, D=d, predictive=True)
            return losses[rng.integers(0, losses.shape[0], size=draws)]

        if self.through == "loss":
            return paired(self.laws)
        return np.stack([paired(self.laws[task]) for task in self.fitted_tasks], axis=1)

    def accuracy(self, *, N: Any, D: Any, predictive: bool = True, seed: int = 0):
        """Draws of each task's accuracy at new runs (N, D), both steps: near-chance tasks are NaN.

        Parameters
        ----------
        N, D
            Parameters and tokens of the runs.
        predictive
            A new run's observed accuracy (else the expected accuracy at step 1's loss draws). Both
            include step 2's structural error beyond the fitted runs.
        seed
            Seed.

        Returns
        -------
        xarray.DataArray
            Dimensions ``draw``, ``task`` (every task, fitted or not), ``run``; coordinates ``N``,
            ``D``, ``C`` on ``run``.
        """
        import xarray as xr

        n, d = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (N, D))
        values = np.full((self._draws("k").shape[0] if self.tree is not None else 1, len(self.tasks), n.size), np.nan)
        if self.tree is not None:
            rows = np.flatnonzero(self.tasks["status"].to_numpy() == "fitted")
            beyond = np.log10(FLOP_PER_PARAM_TOKEN * n * d / self.fitted_compute)
            values[:, rows, :] = self.accuracy_at(self.inputs(N=n, D=d, seed=seed), beyond=beyond,
                                                  predictive=predictive, seed=seed)
        return xr.DataArray(values, dims=("draw", "task", "run"),
                            coords={"task": self.tasks["task"].to_numpy(), "N": ("run", n), "D": ("run", d),
                                    "C": ("run", FLOP_PER_PARAM_TOKEN * n * d)}, name="accuracy")

    def table(self, *, N: Any, D: Any, observed: pd.DataFrame | None = None,
              level: float = DEFAULT_LEVEL, seed: int = 0) -> pd.DataFrame:
        """The forecast of each task at each run: median and ``level`` interval, with the observed
        accuracy where ``observed`` has it.

        Parameters
        ----------
        N, D
            Parameters and tokens of the runs.
        observed
            The runs' observed accuracies, one column per task, in the order of N and D.
        level
            Credible level.
        seed
            Seed.

        Returns
        -------
        pandas.DataFrame
            One row per (run, task): ``N``, ``D``, ``C``, ``task``, ``chance``, ``status``, ``observed``,
            ``median``, ``lower``, ``upper``, ``inside`` (observed inside the interval).
        """
        draws = self.accuracy(N=N, D=D, seed=seed).values
        lo, med, hi = (np.full(draws.shape[1:], np.nan) for _ in range(3))
        rows = self.tasks["status"].to_numpy() == "fitted"
        if rows.any():
            lo[rows], med[rows], hi[rows] = central(draws[:, rows, :], level)
        n, d = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (N, D))
        rows = []
        for i in range(n.size):
            for j, task in enumerate(self.tasks.itertuples()):
                seen = np.nan
                if observed is not None and task.task in observed.columns:
                    seen = float(observed[task.task].iloc[i])
                rows.append({"N": n[i], "D": d[i], "C": FLOP_PER_PARAM_TOKEN * n[i] * d[i], "task": task.task,
                             "chance": task.chance, "status": task.status, "observed": seen,
                             "median": med[j, i], "lower": lo[j, i], "upper": hi[j, i],
                             "inside": bool(lo[j, i] <= seen <= hi[j, i]) if np.isfinite(seen + med[j, i]) else None})
        out = pd.DataFrame(rows)
        out.attrs["level"] = level
        return out

    def curve(self, task: str, x: np.ndarray) -> np.ndarray:
        """Draws of task ``task``'s expected accuracy along inputs ``x`` (step 2's curve).

        Parameters
        ----------
        task
            A fitted task.
        x
            Inputs.

        Returns
        -------
        numpy.ndarray
            (draws, points).
        """
        if task not in self.fitted_tasks:
            raise InputError(f"task {task!r} was not fitted (near chance, or not a task of this fit)")
        return self.accuracy_at(np.asarray(x, dtype=float), predictive=False)[:, self.fitted_tasks.index(task), :]

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write step 2 as one netCDF file, atomically (:func:`load_downstream` reads it back with
        its law). A fit with no task above chance has no posterior to write.

        Parameters
        ----------
        path
            The file (``.nc``).
        overwrite
            Replace an existing file.

        Returns
        -------
        pathlib.Path
        """
        import xarray as xr

        from bayes_scaling.io.outputs import new_file_target, write_netcdf

        if self.tree is None:
            raise InputError("no task is above chance: there is no downstream posterior to save")
        target = new_file_target(path, overwrite=overwrite)
        stored = self.tree.copy()
        stored["runs"] = xr.Dataset({c: ("run", self.runs[c].to_numpy()) for c in self.runs.columns})
        stored["tasks"] = xr.Dataset({c: ("row", self.tasks[c].to_numpy()) for c in self.tasks.columns})
        stored.attrs = {"kind": FILE_KIND, "through": self.through, "x_centre": self.x_centre,
                        "x_scale": self.x_scale, "config": json.dumps(self.config, default=str)}
        write_netcdf(stored, target)
        return target


def load_downstream(path: str | os.PathLike, *, law: Any = None) -> DownstreamFit:
    """Read a fit written by :meth:`DownstreamFit.save`.

    Parameters
    ----------
    path
        The file.
    law
        Step 1: a :class:`~bayes_scaling.forecast.forecaster.Forecaster` (or a mapping task →
        Forecaster for ``through="task-loss"``); not needed for ``through="compute"``, or for
        :meth:`DownstreamFit.accuracy_at` alone.

    Returns
    -------
    DownstreamFit
    """
    import xarray as xr

    from bayes_scaling.io.outputs import read_marked_tree
    from bayes_scaling.sampling.diagnostics import check_sampling

    source = Path(path)
    tree = read_marked_tree(source, kind=FILE_KIND, what="a downstream fit",
                            writer="bayes_scaling.downstream.model.DownstreamFit.save")
    runs = tree["runs"].to_dataset().to_dataframe().reset_index(drop=True)
    tasks = tree["tasks"].to_dataset().to_dataframe().reset_index(drop=True)
    posterior = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(),
                                       "sample_stats": tree["sample_stats"].to_dataset()})
    diagnostics = check_sampling(posterior, VAR_NAMES, label=f"downstream fit {source.name}")
    return DownstreamFit(posterior, tasks, runs, str(tree.attrs["through"]), float(tree.attrs["x_centre"]),
                         float(tree.attrs["x_scale"]), law, diagnostics, json.loads(tree.attrs["config"]))


def _inputs(runs: RunTable, through: str, task_loss: Mapping[str, str] | None, tasks: Sequence[str]) -> np.ndarray:
    """Step 2's input per run, (runs,) or (runs, tasks) for task losses."""
    if through == "loss":
        return runs.loss
    if through == "compute":
        return -np.log10(runs.C)
    if not task_loss or set(tasks) - set(task_loss):
        missing = sorted(set(tasks) - set(task_loss or {}))
        raise InputError(f"through='task-loss' needs a task-loss column for every task; none for {', '.join(missing)}")
    columns = []
    for task in tasks:
        column = task_loss[task]
        if column not in runs.data.columns:
            raise InputError(f"{runs.source}: no task-loss column {column!r} (for task {task})")
        values = pd.to_numeric(runs.data[column], errors="coerce").to_numpy(dtype=float)
        if np.any(values <= 0):
            raise InputError(f"{runs.source}, column {column!r}: task losses must be positive")
        columns.append(values)
    return np.stack(columns, axis=1)


def fit_downstream(runs: RunTable, tasks: Sequence[str] | None = None, *, chance: Mapping[str, float] | float | None = None,
                   items: Mapping[str, float] | float | None = None, through: str = "loss",
                   task_loss: Mapping[str, str] | None = None, cut: float | None = None, law: Any = None,
                   law_name: str = "chinchilla", min_above_chance: float = MIN_ABOVE_CHANCE, structural: bool = True,
                   draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0) -> DownstreamFit:
    """Fit the two-step downstream model (module docstring) to the runs below ``cut``.

    Parameters
    ----------
    runs
        A :class:`~bayes_scaling.data.runs.RunTable` with one accuracy column per task.
    tasks
        The task columns (default: every column of accuracies in [0, 1]).
    chance, items
        Chance levels and questions per task (:func:`~bayes_scaling.data.tasks.task_table`).
    through
        Step 2's input: ``"loss"`` (the validation loss), ``"task-loss"`` (``task_loss`` columns) or
        ``"compute"`` (one step).
    task_loss
        Task → its task-loss column, for ``through="task-loss"``.
    cut
        Fit only the runs below this compute (FLOP).
    law
        Step 1, fitted already: a Forecaster of the loss below the cut (``"loss"``), or a mapping
        task → Forecaster (``"task-loss"``). Default: :func:`bayes_scaling.fitting.fit` of
        ``law_name`` with its defaults.
    law_name
        The law fitted for step 1 when ``law`` is not given.
    min_above_chance
        A task whose three best fitted runs average less than this above chance (or less than three
        binomial standard errors) is reported as near chance and not fitted.
    structural
        Learn step 2's structural error beyond the data from refits below cuts inside the fitted
        runs (:mod:`bayes_scaling.downstream.structural`); False: the fitted curves are taken as
        exact beyond the data.
    draws, tune, chains, seed
        NUTS settings of step 2 (and of step 1 when it is fitted here).

    Returns
    -------
    DownstreamFit

    Raises
    ------
    InputError
        For an unknown ``through``, missing columns or too few runs below the cut.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayes_scaling.data.reading import read_runs
    >>> rng = np.random.default_rng(0)
    >>> n = np.geomspace(1e7, 1e9, 12); loss = 2 + 60 / n ** 0.25
    >>> acc = 0.25 + 0.6 / (1 + np.exp(-4 * (2.8 - loss))) + rng.normal(0, 0.005, 12)
    >>> runs = read_runs(pd.DataFrame({"N": n, "D": 20 * n, "loss": loss, "quiz": acc}), min_runs=3)
    >>> fit = fit_downstream(runs, chance={"quiz": 0.25}, through="compute", structural=False,
    ...                    draws=200, tune=300, chains=2, seed=1)
    >>> fit.tasks[["task", "status"]].values.tolist()
    [['quiz', 'fitted']]
    """
    from bayes_scaling.sampling.settings import SamplerSettings

    if through not in THROUGH:
        raise InputError(f"unknown input {through!r} for step 2; choose one of {', '.join(THROUGH)}")
    table = task_table(runs, tasks, chance=chance, items=items)
    names = table["task"].tolist()
    fitted_runs = runs if cut is None else runs.subset(runs.C < cut, label=f"C < {cut:.3g}")
    if len(fitted_runs) < MIN_TASK_RUNS:
        raise InputError(f"{runs.source}: {len(fitted_runs)} runs below the cut; a downstream fit needs "
                         f"{MIN_TASK_RUNS} or more")
    acc = task_accuracies(fitted_runs, names)
    x = _inputs(fitted_runs, through, task_loss, names)
    x_all = x if x.ndim == 1 else x.ravel()
    x_centre, x_scale = float(np.nanmean(x_all)), float(np.nanstd(x_all)) or 1.0

    counts, best, status = [], [], []
    for j, task in enumerate(table.itertuples()):
        seen = acc[:, j][np.isfinite(acc[:, j])]
        counts.append(seen.size)
        top = float(np.sort(seen)[-3:].mean()) if seen.size else np.nan
        best.append(top)
        se = math.sqrt(task.chance * (1 - task.chance) / task.items) if task.items and task.items > 0 else 0.0
        above = top - task.chance > max(min_above_chance, 3 * se)
        status.append("fitted" if above and seen.size >= MIN_TASK_RUNS else "near chance" if not above
                      else "too few runs")
    table = table.assign(status=status, runs=counts, best_observed=best)
    keep = [j for j, s in enumerate(status) if s == "fitted"]
    for task in table.loc[table["status"] != "fitted"].itertuples():
        log.info("task %s: %s (best runs %.3f, chance %.3f): reported, not forecast", task.task, task.status,
                 task.best_observed, task.chance)

    frame = pd.DataFrame({"N": fitted_runs.N, "D": fitted_runs.D, "C": fitted_runs.C})
    if x.ndim == 1:
        frame["x"] = x
    for j, task in enumerate(names):
        frame[task] = acc[:, j]
    config = {"through": through, "cut": cut, "draws": draws, "tune": tune, "chains": chains, "seed": seed,
              "min_above_chance": min_above_chance, "task_loss": dict(task_loss or {}), "source": runs.source}
    if not keep:
        log.warning("no task is above chance in the runs fitted: nothing to forecast")
        return DownstreamFit(None, table, frame, through, x_centre, x_scale, None, None, config)

    inputs = np.repeat(x[:, None], len(keep), axis=1) if x.ndim == 1 else x[:, keep]
    kept = table.iloc[keep]
    z = (inputs - x_centre) / x_scale
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed)
    mask = np.isfinite(acc[:, keep]) & np.isfinite(z)
    start = initial_points(z[mask], acc[:, keep][mask], np.nonzero(mask)[1], kept["chance"].to_numpy(dtype=float))
    tree, diagnostics, timing = sample_step_two(z, acc[:, keep], kept, settings, label="downstream fit", start=start)
    config["timing"] = timing
    if structural:
        weights, config["structural"] = _structural_error(fitted_runs.C, z, acc[:, keep], kept, settings,
                                                          source=runs.source, full_start=start)
        sigma = sample_sigma(weights, chains * draws, seed=seed).reshape(chains, draws)
        tree["posterior"] = tree["posterior"].to_dataset().assign(structural_sigma=(("chain", "draw"), sigma))

    if law is None and through != "compute":
        law = _fit_step_one(fitted_runs, through, task_loss, kept["task"].tolist(), law_name=law_name,
                            draws=draws, tune=tune, chains=chains, seed=seed)
    return DownstreamFit(tree, table, frame, through, x_centre, x_scale, law, diagnostics, config)


def _structural_error(compute: np.ndarray, z: np.ndarray, observed: np.ndarray, tasks: pd.DataFrame, settings, *,
                      source: str, full_start: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """σ's grid posterior from step 2 refitted below cuts inside the fitted runs, scored at the
    fitted runs above them (:mod:`bayes_scaling.downstream.structural`); and its summary. The
    refits start where the fit of every run did (``full_start``)."""
    from bayes_scaling.calibration.rolling import robust_sd
    from bayes_scaling.sampling.diagnostics import SamplingWarning

    chance = tasks["chance"].to_numpy(dtype=float)
    rows: list[dict[str, float]] = []
    problems: list[str] = []
    cuts = inner_cuts(compute, source=source)
    for i, cut in enumerate(cuts):
        below = compute <= cut
        keep = [j for j in range(observed.shape[1]) if np.isfinite(observed[below, j]).sum() >= MIN_TASK_RUNS]
        if not keep:
            continue
        inner = replace(settings, draws=min(settings.draws, INNER_DRAWS), tune=min(settings.tune, INNER_DRAWS),
                        chains=min(settings.chains, 2), seed=settings.seed + 1 + i)
        log.info("step 2's back-test %d/%d: %d runs below C = %.3g", i + 1, len(cuts), int(below.sum()), cut)
        with warnings.catch_warnings():  # short refits: judged below by what σ needs of them
            warnings.simplefilter("ignore", SamplingWarning)
            start = {name: value[keep] if name.startswith("z_") else value for name, value in full_start.items()}
            tree, checked, _ = sample_step_two(z[below][:, keep], observed[below][:, keep], tasks.iloc[keep],
                                                inner, label=f"below C = {cut:.3g}", start=start)
        if checked.rhat_max > INNER_RHAT or checked.divergences:
            problems.append(f"below C = {cut:.3g}: {checked}")
        refit = DownstreamFit(tree, tasks.iloc[keep].assign(status="fitted"), pd.DataFrame({"C": compute[below]}),
                              "compute", 0.0, 1.0)
        held = np.flatnonzero(~below)
        draws = refit.accuracy_at(z[held][:, keep].T[None, :, :], seed=inner.seed)  # z is standardized already
        median = np.median(draws, axis=0)
        spread = robust_sd(draws, axis=0)
        for a, j in enumerate(keep):
            for b, run in enumerate(held):
                if np.isfinite(observed[run, j]):
                    rows.append({"task": j, "d": float(np.log10(compute[run] / compute[below].max())),
                                 "error": observed[run, j] - median[a, b], "predicted": median[a, b],
                                 "spread": spread[a, b]})
    if problems:  # one warning for the refits, not one each
        warnings.warn(SamplingWarning(f"step 2's structural error: {len(problems)} of its {len(cuts)} back-test refits "
                                      f"({INNER_DRAWS} draws per chain at most) mixed poorly (R-hat above "
                                      f"{INNER_RHAT} or divergences), so σ is rougher: {'; '.join(problems)}"),
                      stacklevel=3)
    errors = pd.DataFrame(rows, columns=["task", "d", "error", "predicted", "spread"])
    weights = sigma_posterior(errors, chance)
    cdf = np.cumsum(weights)
    lo, med, hi = (float(SIGMA_GRID[np.searchsorted(cdf, q)]) for q in (0.05, 0.5, 0.95))
    log.info("step 2's structural error from %d back-test errors (%d cuts): σ %.2f [%.2f, %.2f] logit per decade",
             len(errors), len(cuts), med, lo, hi)
    return weights, {"backtest_cuts": len(cuts), "backtest_errors": len(errors), "sigma_median": med,
                     "sigma_lower": lo, "sigma_upper": hi}


def _fit_step_one(runs: RunTable, through: str, task_loss: Mapping[str, str] | None, tasks: list[str], *,
                  law_name: str, draws: int, tune: int, chains: int, seed: int):
    from bayes_scaling.data.reading import read_runs
    from bayes_scaling.fitting import fit
    from bayes_scaling.forecast.forecaster import Forecaster

    sampler = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    if through == "loss":
        log.info("step 1: fitting the %s law to the validation loss of %d runs", law_name, len(runs))
        return Forecaster(fit(runs, law=law_name, **sampler), seed=seed)
    laws = {}
    for task in tasks:
        column = (task_loss or {})[task]
        frame = runs.data[["N", "D", column]].rename(columns={column: "loss"}).dropna()
        log.info("step 1: fitting the %s law to %s's task loss (%s, %d runs)", law_name, task, column, len(frame))
        laws[task] = Forecaster(fit(read_runs(frame, name=f"{runs.source} [{column}]"), law=law_name, **sampler),
                                seed=seed)
    return laws
