"""Task ladders simulated from step 2's model: runs spread in compute, each task's accuracy a
sigmoid in standardized −log10 C between its chance level and ceiling, observed with binomial
noise plus a little scatter. For checking the downstream model against known truth (recovery,
coverage)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.downstream.sigmoid import sigmoid_accuracy

__all__ = ["draw_tasks", "simulate_task_ladder"]


def draw_tasks(count: int, *, seed: int = 0) -> dict[str, tuple[float, float, float, float, int]]:
    """``count`` tasks with parameters drawn as step 2's priors describe real ones: chance 0,
    0.25 or 0.5; the ceiling 40–95% of the way from chance to 1; slope k ~ logNormal(log 1.5,
    0.3); midpoint m ~ N(0, 1) (inside or just beyond the runs); 500–5,000 questions.

    Parameters
    ----------
    count
        Number of tasks.
    seed
        Seed.

    Returns
    -------
    dict
        Task name → (chance, ceiling, k, m, items).

    Examples
    --------
    >>> sorted(draw_tasks(2, seed=1))
    ['task0', 'task1']
    """
    rng = np.random.default_rng([seed, 59])
    tasks = {}
    for j in range(count):
        chance = float(rng.choice([0.0, 0.25, 0.5]))
        ceiling = chance + (1 - chance) * float(rng.uniform(0.4, 0.95))
        tasks[f"task{j}"] = (chance, ceiling, float(np.exp(rng.normal(np.log(1.5), 0.3))),
                             float(rng.normal(0.0, 1.0)), int(rng.integers(500, 5001)))
    return tasks


def simulate_task_ladder(tasks: Mapping[str, tuple[float, float, float, float, int]], *, runs: int = 24,
                         scatter: float = 0.004, seed: int = 0) -> pd.DataFrame:
    """A run table of ``runs`` models from 2·10⁷ to 4·10⁹ parameters (20 or 80 tokens per
    parameter) with a loss from a Chinchilla-like law and one accuracy column per task.

    Parameters
    ----------
    tasks
        Task → (chance, ceiling, k, m, items), k and m in −log10 C standardized over all the runs.
    runs
        Number of runs.
    scatter
        Standard deviation of each accuracy's noise besides the binomial one.
    seed
        Seed.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``loss`` and one column per task.

    Examples
    --------
    >>> frame = simulate_task_ladder({"quiz": (0.25, 0.85, 1.5, 0.0, 1000)}, runs=8, seed=2)
    >>> list(frame.columns), bool(frame["quiz"].between(0, 1).all())
    (['N', 'D', 'loss', 'quiz'], True)
    """
    rng = np.random.default_rng(seed)
    n = np.geomspace(2e7, 4e9, runs)
    d = 20 * n * rng.choice([1.0, 4.0], n.size)
    x = -np.log10(FLOP_PER_PARAM_TOKEN * n * d)
    z = (x - x.mean()) / x.std()
    frame = {"N": n, "D": d, "loss": 1.8 + 400 / n ** 0.3 + 400 / d ** 0.3}
    for task, (chance, ceiling, k, m, items) in tasks.items():
        p = np.clip(sigmoid_accuracy(z, chance, ceiling, k, m), 0, 1)
        frame[task] = np.clip(rng.binomial(items, p) / items + rng.normal(0, scatter, n.size), 0, 1)
    return pd.DataFrame(frame)
