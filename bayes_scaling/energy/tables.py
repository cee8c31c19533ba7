"""Tables of training and serving energy for papers: energy of compute budgets by year or chip
and precision (with emissions), the compute grid, the energy to reach target losses, and serving."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_scaling.energy.training import JOULES_PER_MWH, Carbon, EnergyModel
from bayes_scaling.energy.utilization import TrainingRun
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central

__all__ = ["budget_table", "run_table", "energy_grid", "target_loss_table", "inference_table"]

# --------------------------------------------------------------------------- forecasts as tables
def _summary(draws: np.ndarray, level: float) -> tuple[float, float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return (math.nan, math.nan, math.nan)
    lo, med, hi = central(finite, level)
    return float(med), float(lo), float(hi)


def _row(prefix: str, draws: np.ndarray, level: float) -> dict[str, float]:
    med, lo, hi = _summary(draws, level)
    return {prefix: med, f"{prefix}_lower": lo, f"{prefix}_upper": hi}


def budget_table(model: EnergyModel, flops: Sequence[float], *, years: Sequence[float] = (),
                 hardware: str | None = None, precisions: Sequence[str] = ("bf16",), carbon: Carbon | None = None,
                 level: float = DEFAULT_LEVEL, run: TrainingRun | None = None) -> pd.DataFrame:
    """Training (facility) energy (MWh) and emissions for compute budgets, by year (or named chip) and precision.

    Parameters
    ----------
    model
        An :class:`EnergyModel`.
    flops
        Training compute budgets in FLOP.
    years
        Years whose expected new chip trains each budget (or give ``hardware``).
    hardware
        A chip of the ``accelerators`` dataset by name, e.g. ``"H100"``.
    precisions
        ``"bf16"`` and/or ``"fp8"``.
    carbon
        Grid carbon intensity, for emissions (:class:`Carbon`).
    level
        Credible level of the intervals.
    run
        What is known of the runs (:class:`~bayes_scaling.energy.utilization.TrainingRun`); without a
        size, each budget's run size is drawn from its compute.

    Returns
    -------
    pandas.DataFrame
        One row per budget × setting × precision: ``energy_mwh`` with ``_lower`` and ``_upper`` (and
        ``tco2e`` with ``carbon``).

    Raises
    ------
    InputError
        Without years or hardware, or for an unknown chip.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.energy.tables import budget_table
    >>> table = budget_table(bs.EnergyModel.fit(draws=2000, seed=0), [1e24], years=[2025])
    >>> bool(table["energy_mwh_lower"].iloc[0] < table["energy_mwh"].iloc[0] < table["energy_mwh_upper"].iloc[0])
    True
    """
    if not years and not hardware:
        raise InputError("give years (the expected hardware of those years) or a named chip")
    settings = [{"hardware": hardware}] if hardware else [{"year": float(y)} for y in years]
    rows = []
    rng = np.random.default_rng([model.seed, 5])
    for where in settings:
        for precision in precisions:
            mwh = model.training_energy(flops, precision=precision, run=run, **where)
            for j, flop in enumerate(np.atleast_1d(flops)):
                row = {"flop": float(flop), "hardware": hardware or f"new chip, {where['year']:g}",
                       "precision": precision} | _row("energy_mwh", mwh[:, j], level)
                if carbon is not None:
                    row |= _row("tco2e", carbon.tonnes(mwh[:, j], rng), level)
                rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["level"] = level
    return table


def run_table(model: EnergyModel, flops: Sequence[float], *, years: Sequence[float] = (),
              hardware: str | None = None, precisions: Sequence[str] = ("bf16",), run: TrainingRun | None = None,
              level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Utilization, device-hours, device energy and facility energy of training runs, with intervals.

    Parameters
    ----------
    model
        An :class:`EnergyModel`.
    flops
        Training compute of each run in FLOP.
    years
        Without ``hardware``: years whose expected new chip trains each run.  With it: the year of the run.
    hardware
        A chip of the ``accelerators`` dataset by name, e.g. ``"H100"``.
    precisions
        ``"bf16"`` and/or ``"fp8"``.
    run
        What is known of the runs (:class:`~bayes_scaling.energy.utilization.TrainingRun`).
    level
        Credible level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per budget × setting × precision: ``utilization``, ``device_hours`` (named chips only),
        ``device_energy_mwh`` and ``facility_energy_mwh``, each with ``_lower`` and ``_upper``.

    Raises
    ------
    InputError
        Without years or hardware, or for an unknown chip.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.energy.tables import run_table
    >>> model = bs.EnergyModel.fit(draws=1000, seed=0)
    >>> table = run_table(model, [1e23], hardware="H100", run=bs.TrainingRun(active_params=1e9))
    >>> bool(table["device_hours_lower"].iloc[0] < table["device_hours"].iloc[0] < table["device_hours_upper"].iloc[0])
    True
    """
    if not years and not hardware:
        raise InputError("give years (the expected hardware of those years) or a named chip")
    settings = [{"year": float(y)} for y in years] or [{"year": None}]
    rows = []
    for where in settings:
        for precision in precisions:
            for flop in np.atleast_1d(flops):
                one = model.training_run(float(flop), run=run, hardware=hardware, precision=precision,
                                         level=level, **where).set_index("quantity")
                label = hardware or f"new chip, {where['year']:g}"
                row = {"flop": float(flop), "hardware": label, "precision": precision}
                for quantity, r in one.iterrows():
                    row |= {quantity: r["median"], f"{quantity}_lower": r["lower"], f"{quantity}_upper": r["upper"]}
                rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["level"] = level
    return table


def energy_grid(table: pd.DataFrame, *, value: str = "energy_mwh") -> pd.DataFrame:
    """:func:`budget_table` as a paper table: one row per compute budget, one column per chip
    (and precision, when there are several): ``value`` with its ``_lower``/``_upper`` bounds.

    Parameters
    ----------
    table
        :func:`budget_table`'s table.
    value
        The column to show.

    Returns
    -------
    pandas.DataFrame
    """
    label = table["hardware"] if table["precision"].nunique() == 1 else table["hardware"] + " " + table["precision"]
    wide = table.assign(column=label.str.replace("new chip, ", "", regex=False)).pivot(
        index="flop", columns="column", values=[value, f"{value}_lower", f"{value}_upper"])
    order = list(dict.fromkeys(label.str.replace("new chip, ", "", regex=False)))
    out = pd.DataFrame({"flop": wide.index.to_numpy()})
    for column in order:
        out[column] = wide[(value, column)].to_numpy()
        out[f"{column}_lower"] = wide[(f"{value}_lower", column)].to_numpy()
        out[f"{column}_upper"] = wide[(f"{value}_upper", column)].to_numpy()
    out.attrs.update(table.attrs)
    return out


def target_loss_table(model: EnergyModel, forecaster, targets: Sequence[float], *, year: float | None = None,
                      hardware: str | None = None, precision: str = "bf16", carbon: Carbon | None = None,
                      level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Energy to reach target losses: the compute each loss-posterior draw needs, times an
    independent draw of energy per FLOP (Monte Carlo over both posteriors).

    Parameters
    ----------
    model
        An :class:`~bayes_scaling.energy.training.EnergyModel`.
    forecaster
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` (or a law average).
    targets
        Target losses (nats per token).
    year, hardware, precision
        The year's expected new chip, or a named one, and the precision.
    carbon
        Grid carbon intensity, for emissions.
    level
        Probability of the credible intervals.

    Returns
    -------
    pandas.DataFrame
        One row per target: P(reachable), compute and energy (MWh) with intervals (emissions with ``carbon``).
    """
    rows = []
    rng = np.random.default_rng([model.seed, 9])
    for target in targets:
        need = forecaster.compute_for_loss(float(target))
        flop = need["C"]
        finite = flop[np.isfinite(flop) & (flop > 0)]
        # The run's size is drawn from its typical compute (the utilization depends on the size).
        per_flop = model.joules_per_flop(year=year, hardware=hardware, precision=precision,
                                         flop=float(np.median(finite)) if finite.size else None)
        paired = rng.choice(per_flop, size=flop.size, replace=True)
        mwh = flop * paired / JOULES_PER_MWH
        row = {"target_loss": float(target), "p_reachable": need["p_reachable"]}
        row |= _row("flop", flop, level) | _row("energy_mwh", mwh, level)
        if carbon is not None:
            row |= _row("tco2e", carbon.tonnes(mwh, rng), level)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(level=level, hardware=hardware or f"new chip, {year:g}", precision=precision)
    return table


def inference_table(model: EnergyModel, n_params: float, tokens_served: Sequence[float], *,
                    training_flop: float | None = None, year: float | None = None, hardware: str | None = None,
                    precision: str = "bf16", level: float = DEFAULT_LEVEL, per_token: np.ndarray | None = None,
                    basis: str = "stated prior: 2·N FLOP per token at inference utilization") -> pd.DataFrame:
    """Serving energy for token counts; with ``training_flop``, the tokens at which serving overtakes training.

    ``per_token``: draws of facility energy per token (J), e.g. from the measured
    :class:`~bayes_scaling.energy.serving.InferenceEnergy`; by default the stated prior (2·N FLOP per
    token at an inference utilization) on the hardware of ``year`` or ``hardware``.

    Parameters
    ----------
    model
        An :class:`~bayes_scaling.energy.training.EnergyModel`.
    n_params
        Active parameters of the served model.
    tokens_served
        Token counts.
    training_flop
        The model's training compute, for the crossover (None: no crossover).
    year, hardware, precision
        The year's expected new chip, or a named one, and the precision.
    level
        Probability of the credible intervals.
    per_token
        Draws of facility energy per token (J); None: the stated prior.
    basis
        What ``per_token`` is, recorded in the table.

    Returns
    -------
    pandas.DataFrame
        One row per token count: serving energy (MWh) with intervals; ``attrs`` hold the crossover.
    """
    if per_token is None:
        per_token = model.inference_energy_per_token(n_params, year=year, hardware=hardware, precision=precision)[:, 0]
    else:
        per_token = np.resize(np.asarray(per_token, dtype=float), model.draws)
    rows = []
    train = None
    if training_flop:
        train = model.training_energy(training_flop, year=year, hardware=hardware, precision=precision)[:, 0]
    for tokens in tokens_served:
        mwh = per_token * float(tokens) / JOULES_PER_MWH
        row = {"n_params": float(n_params), "tokens_served": float(tokens)} | _row("energy_mwh", mwh, level)
        if train is not None:
            row["p_serving_exceeds_training"] = float(np.mean(mwh > train))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["joules_per_token"] = _summary(per_token, level)
    table.attrs["basis"] = basis
    if train is not None:
        table.attrs["crossover_tokens"] = _summary(train * JOULES_PER_MWH / per_token, level)
    return table
