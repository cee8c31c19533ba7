"""How the training-energy model forecasts runs it has not seen: leave one run (or one lab) out.

Each published run of ``training-energy`` whose size is known is forecast from a model fitted
without it — its device-hours where it reports them, its energy where it reports one (with PUE
where the report includes it) — from its compute, chip, size, devices, year and precision, never
from its own hours.  Leaving a whole lab out (its runs share a cluster and a software stack)
forecasts each of its runs as a new lab's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from bayes_scaling.energy.training import JOULES_PER_MWH, EnergyModel
from bayes_scaling.energy.utilization import TrainingRun, run_key
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import equal_tailed

__all__ = ["SMALL_ACTIVE_PARAMS", "calibrate", "calibration_summary", "stated_power_arithmetic"]

#: Runs below this many active parameters are summarised apart (small models' utilization is lower).
SMALL_ACTIVE_PARAMS = 3e9
HOLDOUTS = ("run", "lab")


def calibrate(*, draws: int = 4000, seed: int = 0, levels: Sequence[float] = (0.5, 0.9), holdout: str = "run",
              training_energy: pd.DataFrame | None = None,
              progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Out-of-sample predictive intervals for the published runs' device-hours and energy.

    Parameters
    ----------
    draws
        Draws of the energy model per refit.
    seed
        Seed of the draws.
    levels
        Credible levels of the intervals checked.
    holdout
        ``"run"``: each run is forecast by a model fitted without it (without every report of
        it); ``"lab"``: without every run of its lab, as a new lab's run.
    training_energy
        The runs (default: the bundled ``training-energy``).
    progress
        Called with a line per refit (e.g. ``logging.info``).

    Returns
    -------
    pandas.DataFrame
        One row per run and quantity (``device_hours``, ``energy_mwh``): ``run``, ``lab``,
        ``hardware``, ``active_params``, ``moe``, ``group``, ``quantity``, ``scope`` (facility or
        device energy), ``basis`` (energy: ``"device-hours × stated power"`` where the report's energy
        is its own hours × a TDP or assumed power, :func:`stated_power_arithmetic`, and the forecast is
        that product; else ``"reported energy"``, forecast with the model's power and PUE),
        ``report`` (the source scored), ``reported``, ``median``, ``ratio`` (reported ÷
        median), ``log_error``, and per level ``lower_…``, ``upper_…``, ``inside_…``.
        :func:`calibration_summary` summarises it.

    Raises
    ------
    InputError
        For an unknown ``holdout``.

    Examples
    --------
    >>> from bayes_scaling.energy.calibration import calibrate
    >>> table = calibrate(draws=500, seed=0)
    >>> sorted(table["quantity"].unique())
    ['device_hours', 'energy_mwh']
    """
    from bayes_scaling.data.datasets import load_dataset

    if holdout not in HOLDOUTS:
        raise InputError(f"holdout must be one of {', '.join(HOLDOUTS)}, not {holdout!r}")
    runs = training_energy if training_energy is not None else load_dataset("training-energy")
    runs = runs[runs["active"].notna() & runs["flop"].notna()].assign(key=lambda t: t["run"].map(run_key))
    groups = list(runs.groupby("key" if holdout == "run" else "lab", sort=False))
    if progress is not None:
        progress(f"energy calibration: {len(groups)} refits, each leaving out one {holdout}, sampled together")
    models = EnergyModel.fit_without([members["run"].tolist() for _, members in groups], draws=draws, seed=seed,
                                     training_energy=runs)
    rows = []
    for (_, members), model in zip(groups, models, strict=True):
        for _, reports in members.groupby("key", sort=False):
            rows += _scored(model, reports, levels, new_lab=holdout == "lab")
    table = pd.DataFrame(rows)
    table.attrs["holdout"] = holdout
    table.attrs["levels"] = list(levels)
    return table


def _scored(model: EnergyModel, reports: pd.DataFrame, levels: Sequence[float], *, new_lab: bool) -> list[dict]:
    """The rows of one run: its device-hours and its energy, each scored once."""
    first = reports.iloc[0]
    moe = bool(np.isfinite(first["params"]) and first["params"] > first["active"] * (1 + 1e-9))
    run = TrainingRun(active_params=float(first["active"]), total_params=float(first["params"]) if moe else None,
                      devices=float(first["devices"]) if np.isfinite(first["devices"]) else None,
                      year=float(first["year"]), precision=first["precision"] or "bf16",
                      lab=None if new_lab else first["lab"])
    factors = model._factors(year=None, hardware=first["hardware"], precision=None, salt=0, run=run,
                             flop=float(first["flop"]))
    base = {"run": first["run"].split(" (")[0], "lab": first["lab"], "hardware": first["hardware"],
            "active_params": float(first["active"]), "moe": moe,
            "group": "MoE" if moe else ("dense < 3B" if first["active"] < SMALL_ACTIVE_PARAMS else "dense >= 3B")}
    out = []
    hours = reports[reports["device_hours"].notna()]
    if len(hours):
        r = hours.iloc[0]
        out.append(base | {"quantity": "device_hours", "scope": "", "report": r["source"]}
                   | _score(factors["hours_per_flop"] * r["flop"], float(r["device_hours"]), levels))
    energy = reports[reports["reported_energy_mwh"].notna()]
    if len(energy):
        # A run reported twice is scored once: its own team's report (measured, or its own estimate) first.
        own = energy["source"].str.contains("own report|Luccioni", regex=True) | energy["power_basis"].fillna(
            "").str.contains("measured")
        r = energy[own].iloc[0] if own.any() else energy.iloc[0]
        scope = r["energy_scope"] or "facility"
        watts = stated_power_arithmetic(r)
        if watts is not None and "hours_per_flop" in factors:
            # The report's energy is its own device-hours × a stated power (× its PUE): forecast
            # that arithmetic, not a metered energy the report never had.
            per_hour = watts * (float(r["pue"]) if scope == "facility" else 1.0) / 1e6
            forecast, basis = factors["hours_per_flop"] * r["flop"] * per_hour, "device-hours × stated power"
        else:
            per_flop = factors["per_flop_facility" if scope == "facility" else "per_flop_device"]
            forecast, basis = per_flop * r["flop"] / JOULES_PER_MWH, "reported energy"
        out.append(base | {"quantity": "energy_mwh", "scope": scope, "basis": basis, "report": r["source"]}
                   | _score(forecast, float(r["reported_energy_mwh"]), levels))
    return out


#: What a scored energy is (``basis``), and the label of its rows in :func:`calibration_summary`.
ENERGY_BASES = {"reported energy": "reported energy (the model's power and PUE)",
                "device-hours × stated power": "device-hours × stated power (the report's arithmetic)"}


#: How close a reported energy must come to device-hours × stated power (× PUE) to be that product.
ARITHMETIC_TOLERANCE = 0.02


def stated_power_arithmetic(report: pd.Series) -> float | None:
    """The power per device (W) a report's energy was computed from, when that power was not
    measured (a TDP, an assumed or a stated power) and the energy is the report's own device-hours ×
    that power (× its PUE, for facility energy) to within 2%; None for an energy from measured power
    or one whose arithmetic the report does not show.

    Model cards compute training energy this way (Granite 3.0: the H100's 700 W TDP × PUE 1.3;
    LLaMA: 400 W per A100 × PUE 1.1): such a number measures the hours, not the power drawn.

    Parameters
    ----------
    report
        A row of ``training-energy``.

    Returns
    -------
    float or None
    """
    if "measured" in str(report.get("power_basis") or "measured"):
        return None
    hours, watts, energy = (float(report.get(k, np.nan)) for k in ("device_hours", "power_per_device_w",
                                                                   "reported_energy_mwh"))
    pue = float(report.get("pue", np.nan)) if (report.get("energy_scope") or "facility") == "facility" else 1.0
    if not all(np.isfinite(v) and v > 0 for v in (hours, watts, energy, pue)):
        return None
    return watts if abs(math.log(energy / (hours * watts * pue / 1e6))) < ARITHMETIC_TOLERANCE else None


def _score(draws: np.ndarray, reported: float, levels: Sequence[float]) -> dict[str, float | bool]:
    median = float(np.median(draws))
    row: dict[str, float | bool] = {"reported": reported, "median": median, "ratio": reported / median,
                                    "log_error": float(np.log(reported / median))}
    for level in levels:
        lo, hi = equal_tailed(draws, level)
        row |= {f"lower_{level:g}": float(lo), f"upper_{level:g}": float(hi),
                f"inside_{level:g}": bool(lo <= reported <= hi)}
    return row


def calibration_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage, median ratio and width of :func:`calibrate`'s table, by quantity and group.

    Parameters
    ----------
    table
        :func:`calibrate`'s table.

    Returns
    -------
    pandas.DataFrame
        One row per quantity and group (``all``, ``dense < 3B``, ``dense >= 3B``, ``MoE``,
        ``< 3B active`` for every small run, MoE or not, and for energy each ``basis``): ``runs``, ``coverage_50``, ``coverage_90``
        (per level, in percent), ``median_ratio`` (reported ÷ forecast median), ``median_abs_log_error``
        and ``interval_ratio_90`` (the median ratio of the 90% interval's upper to lower end).
    """
    levels = [c.removeprefix("inside_") for c in table.columns if c.startswith("inside_")]
    rows = []
    for quantity, part in table.groupby("quantity", sort=True):
        subsets = {"all": part, "< 3B active": part[part["active_params"] < SMALL_ACTIVE_PARAMS],
                   ">= 3B active": part[part["active_params"] >= SMALL_ACTIVE_PARAMS]}
        subsets |= {g: part[part["group"] == g] for g in ("dense < 3B", "dense >= 3B", "MoE")}
        if "basis" in part and part["basis"].notna().any():
            subsets |= {ENERGY_BASES[b]: part[part["basis"] == b] for b in ENERGY_BASES if (part["basis"] == b).any()}
        for group, rows_ in subsets.items():
            if not len(rows_):
                continue
            row = {"quantity": quantity, "group": group, "runs": len(rows_)}
            row |= {f"coverage_{round(float(lv) * 100)}": float(rows_[f"inside_{lv}"].mean()) for lv in levels}
            row |= {"median_ratio": float(np.median(rows_["ratio"])),
                    "median_abs_log_error": float(np.median(np.abs(rows_["log_error"])))}
            if "upper_0.9" in rows_:
                row["interval_ratio_90"] = float(np.median(rows_["upper_0.9"] / rows_["lower_0.9"]))
            rows.append(row)
    return pd.DataFrame(rows)
