"""Step 2's PyMC model: the pooled sigmoids of every task, their likelihood, where the chains start
and one sampling of it (the model is described in :mod:`bayes_scaling.downstream.model`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.downstream.sigmoid import point_sigmoid, sigmoid_accuracy

__all__ = ["NU", "VAR_NAMES", "build_model", "initial_points", "inverse_items", "resolution", "sample_step_two"]

#: Student-t degrees of freedom of a run's accuracy about its task's curve.
NU = 5.0
#: The accuracy noise floor of a task whose size is unknown.
UNKNOWN_RESOLUTION = 0.002
#: The variables whose sampling is checked.
VAR_NAMES = ["mu_k", "tau_k", "mu_h", "tau_h", "mu_u", "tau_u", "mu_s", "tau_s", "k", "m", "ceiling", "scatter"]


def inverse_items(items: np.ndarray) -> np.ndarray:
    """1 / items per task, 0 where the size is unknown (no binomial term)."""
    items = np.asarray(items, dtype=float)
    return np.where(np.isfinite(items) & (items > 0), 1.0 / np.where(items > 0, items, 1.0), 0.0)


def resolution(items: np.ndarray) -> np.ndarray:
    """The smallest noise an accuracy has: one question of ``items`` (0.002 when unknown). Without
    it a task at 0 accuracy (a generative task's chance) has a likelihood without bound at zero
    noise."""
    items = np.asarray(items, dtype=float)
    return np.where(np.isfinite(items) & (items > 0), 1.0 / np.where(items > 0, items, 1.0), UNKNOWN_RESOLUTION)


def build_model(z: np.ndarray, y: np.ndarray, t: np.ndarray, chance: np.ndarray, items: np.ndarray,
                names: list[str]):
    """Step 2's PyMC model of accuracies ``y`` at standardized inputs ``z``, observation ``i``
    of task ``t[i]``; ``chance``, ``items`` and ``names`` per task."""
    import pymc as pm
    import pytensor.tensor as pt

    # the runs and the tasks' constants enter as data: models of the same number of tasks share one
    # compiled graph (PyTensor's disk cache), whatever the runs, so a refit compiles nothing
    with pm.Model(coords={"task": names}) as model:
        z = pm.Data("z", np.asarray(z, dtype=float))
        y = pm.Data("y", np.asarray(y, dtype=float))
        t = pm.Data("t", np.asarray(t, dtype="int64"))
        chance = pm.Data("chance", np.asarray(chance, dtype=float))
        inv_items = pm.Data("inv_items", inverse_items(items))
        floor = pm.Data("floor", resolution(items))

        def pooled(name: str, mu: tuple[float, float], tau: float):
            centre = pm.Normal(f"mu_{name}", *mu)
            spread = pm.HalfNormal(f"tau_{name}", tau)
            return centre + spread * pm.Normal(f"z_{name}", 0.0, 1.0, dims="task")

        k = pm.Deterministic("k", pt.exp(pooled("k", (math.log(2.0), 1.0), 0.5)), dims="task")
        # h = k·m, where the data's centre sits on the sigmoid: less correlated with k than m is
        m = pm.Deterministic("m", pooled("h", (0.0, 2.0), 1.5) / k, dims="task")
        ceiling = pm.Deterministic("ceiling", chance + (1 - chance) * pm.math.sigmoid(pooled("u", (1.5, 1.0), 1.0)),
                                   dims="task")
        scatter = pm.Deterministic("scatter", pt.exp(pooled("s", (math.log(0.01), 1.0), 0.5)), dims="task")
        p = sigmoid_accuracy(z, chance[t], ceiling[t], k[t], m[t], np=pt)
        sd = pt.sqrt(p * (1 - p) * inv_items[t] + scatter[t] ** 2 + floor[t] ** 2)
        pm.StudentT("accuracy", nu=NU, mu=p, sigma=sd, observed=y)
    return model


def initial_points(z: np.ndarray, y: np.ndarray, t: np.ndarray, chance: np.ndarray) -> dict[str, Any]:
    """Where the chains start (each jittered about it): each task's least-squares sigmoid, its
    parameters pooled into the model's centres, spreads and standardized offsets. From the prior's
    support points a chain can wander into a corner of the hierarchy (every scatter near zero)
    where its step size collapses."""
    raw: dict[str, list[float]] = {"k": [], "h": [], "u": [], "s": []}
    for j, c in enumerate(chance):
        rows = t == j
        point = point_sigmoid(z[rows], y[rows], float(c))
        k = float(np.clip(point["k"], 0.2, 20.0))
        residual = y[rows] - sigmoid_accuracy(z[rows], c, point["ceiling"], point["k"], point["m"])
        q = float(np.clip((point["ceiling"] - c) / (1 - c), 0.02, 0.98))
        raw["k"].append(math.log(k))
        raw["h"].append(float(np.clip(k * point["m"], -8.0, 8.0)))
        raw["u"].append(math.log(q / (1 - q)))
        raw["s"].append(math.log(float(np.clip(np.std(residual), 1e-3, 0.1))))
    start: dict[str, Any] = {}
    for name, values in raw.items():
        v = np.asarray(values)
        centre, spread = float(v.mean()), max(float(v.std()), 0.1)
        start |= {f"mu_{name}": centre, f"tau_{name}": spread, f"z_{name}": (v - centre) / spread}
    return start


def sample_step_two(z: np.ndarray, observed: np.ndarray, tasks: pd.DataFrame, settings, *, label: str,
                    start: dict[str, Any]):
    """Sample step 2 for standardized inputs ``z`` and accuracies ``observed`` (runs, tasks), the
    chains jittered about ``start`` (:func:`initial_points`)."""
    from bayes_scaling.sampling.diagnostics import check_sampling
    from bayes_scaling.sampling.nuts import run_sampler

    mask = np.isfinite(observed) & np.isfinite(z)
    obs_task = np.nonzero(mask)[1]
    chance = tasks["chance"].to_numpy(dtype=float)
    tree, timing = run_sampler(lambda: build_model(z[mask], observed[mask], obs_task, chance,
                                              tasks["items"].to_numpy(dtype=float), tasks["task"].tolist()),
                               settings, initial_points=start, jitter=True)
    return tree, check_sampling(tree, VAR_NAMES, label=label), timing
