"""Training and serving energy of frontier models by year: a scenario, with every assumption stated.

For a frontier model trained in year *y* (draw by draw):

* training compute C_y = C₀·g^(y − y₀), with C₀ and the yearly growth g log-normal from stated
  90% intervals; its size N_y = √(C_y / (6·tokens per parameter)), dense;
* training energy = C_y × J per FLOP of a new chip of year *y* (the energy model's posterior);
* serving energy in its first year = tokens served T_y × J per token, with T_y = T₀·h^(y − y₀)
  (stated intervals) and J per token from the measured inference model for a model of f·N_y active
  parameters (f: a stated active fraction, for mixtures of experts) on an H100, scaled by the hardware-efficiency trend from the H100's release to *y*
  (or, without the measurements, the stated 2·N-FLOP prior on year-*y* hardware).

The year in which serving a new frontier model first takes more energy than training it is
reported as a distribution over the draws.  Served tokens are an assumption, not data: change
the intervals and watch the answer move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.energy.training import JOULES_PER_MWH, EnergyModel, lognormal_from_interval
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, interval_columns

__all__ = ['serving_outlook', 'H100_YEAR']

#: Release year of the H100 (the measurements' reference chip), for scaling J/token by the trend.
H100_YEAR = 2022.7


def serving_outlook(energy: EnergyModel, measured: Any | None = None, *, tokens_served: tuple[float, float],
                    years: Sequence[int] = tuple(range(2025, 2031)), frontier_flop: tuple[float, float] = (2e25, 1e26),
                    compute_growth: tuple[float, float] = (4.0, 5.0), token_growth: tuple[float, float] = (1.5, 4.0),
                    active_fraction: tuple[float, float] = (0.05, 1.0), tokens_per_param: float = 20.0,
                    level: float = DEFAULT_LEVEL, seed: int = 0) -> pd.DataFrame:
    """One row per year: frontier training compute, model size, training and first-year serving
    energy (MWh) with ``level`` intervals, and P(serving > training).

    ``tokens_served`` (required: there is no data for it) is the 90% interval of the tokens a new
    frontier model serves in its first year, in the first year; ``token_growth`` its yearly growth;
    ``active_fraction`` the 90% interval of active / total parameters (mixture of experts: serving
    uses the active ones, training FLOP are taken as given).

    ``attrs["crossover"]``: quantiles of the first year in which serving exceeds training (``inf``:
    later than the last year), and the probability that it happens by the last year.  Intervals are 90% intervals of stated
    log-normal assumptions (see the module docstring).

    Parameters
    ----------
    energy
        An EnergyModel.
    measured
        An :class:`~bayes_scaling.energy.serving.InferenceEnergy` (None: the stated prior).
    tokens_served
        Range (90%) of tokens served in the first year.
    years
        Years of the outlook.
    frontier_flop
        Range (90%) of a frontier run's compute in the first year.
    compute_growth
        Range (90%) of yearly compute growth.
    token_growth
        Range (90%) of yearly growth of tokens served.
    active_fraction
        Range (90%) of active / total parameters.
    tokens_per_param
        Training tokens per parameter.
    level
        Probability of the credible intervals.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    pandas.DataFrame
        One row per year.
    """
    years = sorted(int(y) for y in years)
    if not years or tokens_per_param <= 0:
        raise InputError("give at least one year and tokens_per_param > 0")
    rng = np.random.default_rng([seed, 31])
    n = energy.draws
    c0, g = lognormal_from_interval(frontier_flop, n, rng), lognormal_from_interval(compute_growth, n, rng)
    t0, h = lognormal_from_interval(tokens_served, n, rng), lognormal_from_interval(token_growth, n, rng)
    active = np.minimum(lognormal_from_interval(active_fraction, n, rng), 1.0) if active_fraction[0] < 1 \
        else np.ones(n)
    if measured is not None:
        n_ref = 70e9
        j_ref = np.resize(measured.joules_per_token(n_ref, gpu="H100", scope="facility", pue=energy.pue(rng),
                                                    seed=seed), n)
        slope = np.resize(measured.draws["b"][:, 0], n)
    rows, over = [], np.full((n, len(years)), False)
    for k, year in enumerate(years):
        dt = year - years[0]
        flop = c0 * g**dt
        size = np.sqrt(flop / (FLOP_PER_PARAM_TOKEN * tokens_per_param))
        # One salt: a draw keeps its factors. The run's size (its utilization) from its typical compute.
        train = flop * energy.joules_per_flop(year=year, flop=float(np.median(flop))) / JOULES_PER_MWH
        if measured is not None:
            gain = energy.trend.trend(year) / energy.trend.trend(H100_YEAR)
            per_token = j_ref * (size * active / n_ref) ** slope / gain
        else:
            per_token = energy.inference_energy_per_token(1.0, year=year)[:, 0] * size * active
        serve = per_token * t0 * h**dt / JOULES_PER_MWH
        over[:, k] = serve > train
        rows.append({"year": year, **interval_columns("flop", flop, level), **interval_columns("N", size, level),
                     **interval_columns("training_mwh", train, level),
                     **interval_columns("serving_mwh", serve, level),
                     "p_serving_exceeds_training": float(over[:, k].mean())})
    table = pd.DataFrame([{k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in rows])
    # Draws in which serving never overtakes by the last year count as "later" (+inf), so the
    # quantiles are of the whole distribution, not of the draws that cross.
    first = np.where(over.any(axis=1), np.asarray(years)[over.argmax(axis=1)], np.inf)
    by_end = float(np.isfinite(first).mean())
    q = np.quantile(first, [0.5, (1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    table.attrs.update(level=level, basis="measured (ML.ENERGY, H100, scaled by the efficiency trend)"
                       if measured is not None else "stated prior: 2·N FLOP per token",
                       crossover={"median": float(q[0]), "lower": float(q[1]), "upper": float(q[2]),
                                  f"p_by_{years[-1]}": by_end},
                       assumptions={"frontier_flop": frontier_flop, "compute_growth": compute_growth,
                                    "tokens_served": tokens_served, "token_growth": token_growth,
                                    "active_fraction": active_fraction,
                                    "tokens_per_param": tokens_per_param})
    return table
