"""Energy of training and inference, with every factor uncertain.

    device-hours    = FLOP / (peak FLOP/s × utilization) / 3600
    device energy   = device-hours × TDP × (power / TDP)
                    = FLOP / (peak FLOP per joule at TDP × utilization) × (power / TDP)
    facility energy = device energy × PUE

Each factor is a posterior or a stated prior, sampled in numpy (no compile):

**Hardware efficiency** (peak dense FLOP/s ÷ TDP): a Bayesian log-linear trend of
log10(FLOP/J) in release year, fitted exactly (conjugate normal–inverse-gamma) to the
``accelerators`` table, with chip-to-chip scatter, so a new chip of a given year has a
predictive distribution.  Prior: intercept at 2020 ~ N(11.5, 1.5²·σ²) (A100: 11.9), slope
~ N(0.1, 0.2²·σ²) per year (×1.26/yr, anything from halving to 6× per year within two
sd), σ² ~ InvGamma(2, 0.05) (chip scatter of about a factor 1.7).  FP8 is BF16 times the
FP8/BF16 ratio, a population fitted to the chips that list both.  A named chip uses its
own specification.

**Utilization** (model FLOPs utilization, MFU): a hierarchical regression of the run — its
active parameters, mixture of experts or not, precision, device count, year, chip and lab
(:mod:`bayes_scaling.energy.utilization`) — fitted to the MFU implied by the runs of
``training-energy`` that report device-hours (FLOP ÷ (device-hours × peak)), so that a 1B model on
256 H100s does not get the utilization of a 175B model on 10,000 V100s.

**Power relative to TDP** (system power per accelerator, host share included): prior
LogNormal(log 0.9, 0.35): median 0.9, 90% between 0.51 and 1.59.  Chip-level measurements
run below TDP (TPU v3 at 245–310 W of 450 W; an 8×H100 node at about 0.76 × TDP, arXiv
2506.14551), but energy is drawn by whole servers: GPT-3's V100s drew 330 W each against a
300 W TDP (Patterson et al. 2021), and a DGX A100 is rated 6.5 kW for eight 400 W GPUs.

**PUE**: prior 1 + LogNormal(log 0.12, 0.6): median 1.12, 90% between 1.045 and 1.32.
Hyperscale data centres report 1.09–1.12 (Patterson et al. 2021); industry averages
are higher; training-energy papers assume 1.1.

**Inference utilization** (decode is memory-bound): prior LogitNormal centred at 0.15 with
logit sd 0.7 (90% about 0.05–0.37); inference costs 2·N FLOP per token.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayes_scaling.energy.factors import EfficiencyTrend, _find_chip
from bayes_scaling.energy.utilization import (
    TrainingRun,
    UtilizationModel,
    implied_mfu,
    mfu_observations,
    run_key,
)
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, central

__all__ = ['EnergyModel', 'TrainingRun', 'growth_scenario', 'Carbon', 'JOULES_PER_MWH', 'implied_mfu']

JOULES_PER_MWH = 3.6e9


# Stated priors (see the module docstring).
POWER_RATIO = (math.log(0.9), 0.35)           # log-normal (mu, sigma) of power / TDP
PUE_EXCESS = (math.log(0.12), 0.6)            # log-normal of PUE - 1
INFERENCE_MFU = (special.logit(0.15), 0.7)    # logit-normal of inference utilization


# --------------------------------------------------------------------------- the model
@dataclass
class EnergyModel:
    """Draws of every energy factor; combine them with :meth:`training_run`, :meth:`training_energy`
    and friends.

    Build with :meth:`EnergyModel.fit` (the bundled tables) or pass tables to test
    variants; ``exclude`` leaves runs out of the utilization regression (leave-one-out).

    Parameters
    ----------
    trend
        The efficiency trend.
    mfu
        The utilization regression.
    draws
        Number of draws.
    seed
        Random seed; the same seed gives the same result.
    """

    trend: EfficiencyTrend
    mfu: UtilizationModel
    draws: int
    seed: int

    @property
    def mfu_data(self) -> pd.DataFrame:
        """The runs the utilization regression was fitted to, one row each."""
        return self.mfu.data

    @classmethod
    def fit(cls, *, draws: int = 4000, seed: int = 0, accelerators: pd.DataFrame | None = None,
            training_energy: pd.DataFrame | None = None, exclude: Sequence[str] = ()) -> EnergyModel:
        """Fit the efficiency trend and the utilization regression to the bundled (or given) tables.

        Parameters
        ----------
        draws
            Posterior draws of every factor.
        seed
            Random seed; the same seed gives the same result.
        accelerators
            The ``accelerators`` table (default: the bundled one).
        training_energy
            The ``training-energy`` table (default: the bundled one).
        exclude
            Runs left out of the utilization regression (every report of each).

        Returns
        -------
        EnergyModel

        Examples
        --------
        >>> import bayes_scaling as bs
        >>> model = bs.EnergyModel.fit(draws=1000, seed=0)
        >>> len(model.mfu_data) >= 30
        True
        """
        return cls.fit_without([exclude], draws=draws, seed=seed, accelerators=accelerators,
                               training_energy=training_energy)[0]

    @classmethod
    def fit_without(cls, exclude: Sequence[Sequence[str]], *, draws: int = 4000, seed: int = 0,
                    accelerators: pd.DataFrame | None = None,
                    training_energy: pd.DataFrame | None = None) -> list[EnergyModel]:
        """One model per list of runs left out of the utilization regression, fitted side by side
        (one batched sampler: what leave-one-out checks need); the efficiency trend is shared.

        Parameters
        ----------
        exclude
            For each model, the runs it leaves out (every report of each).
        draws
            Posterior draws of every factor.
        seed
            Random seed; the same seed gives the same result.
        accelerators
            The ``accelerators`` table (default: the bundled one).
        training_energy
            The ``training-energy`` table (default: the bundled one).

        Returns
        -------
        list of EnergyModel
            One per entry of ``exclude``, in order.
        """
        from bayes_scaling.data.datasets import load_dataset

        rng = np.random.default_rng([seed, 11])
        chips = accelerators if accelerators is not None else load_dataset("accelerators")
        runs = training_energy if training_energy is not None else load_dataset("training-energy")
        trend = EfficiencyTrend.fit(chips, draws=draws, rng=rng)
        obs = mfu_observations(runs, trend.chips)
        held_out = [obs["key"].isin({run_key(r) for r in runs_out}).to_numpy() for runs_out in exclude]
        fits = UtilizationModel.fit_without(obs, held_out, chips=trend.chips, draws=draws, rng=rng)
        return [cls(trend, mfu, draws, seed) for mfu in fits]

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def _chip(self, hardware: str | None) -> tuple[str | None, float | None]:
        """A named chip's name in the accelerators table and its release year."""
        if not hardware:
            return None, None
        row = _find_chip(self.trend.chips, hardware)
        return str(row["accelerator"]), float(row["release_year"])

    # -------------------------------------------------------------- factor draws
    def utilization(self, rng: np.random.Generator, *, run: TrainingRun | None = None, hardware: str | None = None,
                    year: float | None = None, flop: float | None = None) -> np.ndarray:
        """Draws of training utilization (MFU against the BF16 peak) of a run.

        Parameters
        ----------
        rng
            A numpy random Generator.
        run
            What is known of the run (None: nothing; its size is drawn from ``flop``).
        hardware
            A named chip; None: a chip no published run used, of ``year``.
        year
            Release year of the hardware when no chip is named.
        flop
            The run's training compute (for a run whose size is not given).

        Returns
        -------
        numpy.ndarray
            Draws of model-FLOPs utilization.
        """
        chip, released = self._chip(hardware)
        return self.mfu.predictive(run or TrainingRun(), rng=rng, chip=chip,
                                   chip_year=released if chip else year, flop=flop)

    def power_ratio(self, rng: np.random.Generator) -> np.ndarray:
        """Draws of system power ÷ TDP.

        Parameters
        ----------
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
            Draws of power ÷ TDP.
        """
        return np.exp(rng.normal(*POWER_RATIO, self.draws))

    def pue(self, rng: np.random.Generator) -> np.ndarray:
        """Draws of PUE.

        Parameters
        ----------
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
            Draws of PUE.
        """
        return 1.0 + np.exp(rng.normal(*PUE_EXCESS, self.draws))

    def efficiency(self, rng: np.random.Generator, *, year: float | None = None, hardware: str | None = None,
                   precision: str = "bf16") -> np.ndarray:
        """Draws of peak FLOP per joule.

        Parameters
        ----------
        rng
            A numpy random Generator.
        year
            Release year (the expected new chip of that year).
        hardware
            A named chip (instead of a year).
        precision
            ``"bf16"`` or ``"fp8"``.

        Returns
        -------
        numpy.ndarray
            Draws of peak FLOP/J.
        """
        if precision not in ("bf16", "fp8"):
            raise InputError(f"precision must be 'bf16' or 'fp8', not {precision!r}")
        if hardware:
            return np.full(self.draws, self.trend.named(hardware, precision=precision))
        if year is None:
            raise InputError("give the year of the hardware (year=) or a named chip (hardware=)")
        return self.trend.new_chip(float(year), rng, precision=precision)

    # -------------------------------------------------------------- energy
    def joules_per_flop(self, *, year: float | None = None, hardware: str | None = None,
                        precision: str | None = None, pue: bool = True, salt: int = 0,
                        run: TrainingRun | None = None, flop: float | None = None) -> np.ndarray:
        """Draws of facility (or, ``pue=False``, device) energy per training FLOP, in joules.

        Parameters
        ----------
        year
            Release year (the expected new chip of that year).
        hardware
            A named chip (instead of a year).
        precision
            ``"bf16"`` or ``"fp8"`` (default: the run's, else BF16).
        pue
            Facility energy (with PUE); False: device energy.
        salt
            Seed offset of these draws.
        run
            What is known of the run (:class:`TrainingRun`).
        flop
            The run's compute (sets its size where ``run`` does not).

        Returns
        -------
        numpy.ndarray
        """
        return self._factors(year=year, hardware=hardware, precision=precision, salt=salt, run=run,
                             flop=flop)["per_flop_facility" if pue else "per_flop_device"]

    def _factors(self, *, year: float | None, hardware: str | None, precision: str | None, salt: int,
                 run: TrainingRun | None, flop: float | None) -> dict[str, np.ndarray]:
        """Every factor's draws of one run, drawn in one order (efficiency, power, utilization, PUE)."""
        run = run or TrainingRun()
        if precision is not None:
            if precision not in ("bf16", "fp8"):
                raise InputError(f"precision must be 'bf16' or 'fp8', not {precision!r}")
            run = dataclasses.replace(run, precision=precision)
        if hardware and run.precision == "fp8":
            self.trend.named(hardware, precision="fp8")  # refuses a chip without an FP8 rate
        rng = self._rng(salt)
        eff = self.efficiency(rng, year=year, hardware=hardware)
        power = self.power_ratio(rng)
        util = self.utilization(rng, run=run, hardware=hardware, year=year, flop=flop)
        pue = self.pue(rng)
        device = power / (eff * util)
        out = {"utilization": util, "per_flop_device": device, "per_flop_facility": device * pue}
        if hardware:
            peak = float(_find_chip(self.trend.chips, hardware)["bf16_flops"])
            out["hours_per_flop"] = 1.0 / (peak * util * 3600.0)
        return out

    def training_energy(self, flop: Any, *, run: TrainingRun | None = None, **where: Any) -> np.ndarray:
        """Draws of training energy in MWh, shape (draws, budgets).

        Parameters
        ----------
        flop
            Training compute budgets.
        run
            What is known of the run (:class:`TrainingRun`); without its size, the size of each
            budget's run is drawn from its compute.
        **where
            ``year=``, ``hardware=``, ``precision=``, ``pue=``, ``salt=``.

        Returns
        -------
        numpy.ndarray
            (draws, budgets), MWh.
        """
        flop = _budgets(flop)
        columns = [self.joules_per_flop(run=run, flop=float(f), **where) * f for f in flop]
        return np.column_stack(columns) / JOULES_PER_MWH

    def training_run(self, flop: float, *, run: TrainingRun | None = None, hardware: str | None = None,
                     year: float | None = None, precision: str | None = None,
                     level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """Device-hours, device energy and facility energy of one training run, with intervals.

        Parameters
        ----------
        flop
            The run's training compute (6 · active parameters · tokens).
        run
            What is known of the run (:class:`TrainingRun`: active and total parameters, devices,
            year, precision).
        hardware
            A named chip; None: the expected new chip of ``year`` (then device-hours are not
            forecast: the trend is of FLOP per joule, not of FLOP/s per device).
        year
            With ``hardware``: the year of the run (default: the chip's release plus the usual lag);
            without: the release year of the hardware.
        precision
            ``"bf16"`` or ``"fp8"`` (default: the run's).
        level
            Credible level of the intervals.

        Returns
        -------
        pandas.DataFrame
            One row per quantity (``utilization``, ``device_hours``, ``device_energy_mwh``,
            ``facility_energy_mwh``): ``median``, ``lower``, ``upper`` and ``unit``.

        Raises
        ------
        InputError
            For a compute that is not positive, without a chip or a year, or for an unknown chip.

        Examples
        --------
        >>> import bayes_scaling as bs
        >>> model = bs.EnergyModel.fit(draws=1000, seed=0)
        >>> table = model.training_run(6 * 1e9 * 2e12, hardware="H100",
        ...                            run=bs.TrainingRun(active_params=1e9, devices=256))
        >>> list(table["quantity"])
        ['utilization', 'device_hours', 'device_energy_mwh', 'facility_energy_mwh']
        """
        (flop,) = _budgets(flop)
        if not hardware and year is None:
            raise InputError("give the chip (hardware=) or the year of the hardware (year=)")
        run = run or TrainingRun()
        chip_year = None if hardware else year
        if hardware and year is not None:
            run = dataclasses.replace(run, year=float(year))
        f = self._factors(year=chip_year, hardware=hardware, precision=precision, salt=0, run=run, flop=flop)
        quantities = [("utilization", f["utilization"], "fraction of BF16 peak"),
                      ("device_hours", f["hours_per_flop"] * flop if "hours_per_flop" in f else None, "device-hours"),
                      ("device_energy_mwh", f["per_flop_device"] * flop / JOULES_PER_MWH, "MWh"),
                      ("facility_energy_mwh", f["per_flop_facility"] * flop / JOULES_PER_MWH, "MWh")]
        rows = []
        for name, draws, unit in quantities:
            lo, med, hi = central(draws, level) if draws is not None else (math.nan,) * 3
            rows.append({"quantity": name, "median": float(med), "lower": float(lo), "upper": float(hi),
                         "unit": unit})
        table = pd.DataFrame(rows)
        table.attrs |= {"level": level, "flop": flop, "hardware": hardware or f"new chip, {year:g}",
                        "run": dataclasses.asdict(run)}
        return table

    def inference_energy_per_token(self, n_params: Any, *, year: float | None = None, hardware: str | None = None,
                                   precision: str = "bf16", salt: int = 1) -> np.ndarray:
        """Draws of serving energy per token in joules (2·N FLOP per token at inference utilization).

        Parameters
        ----------
        n_params
            Active parameters.
        year
            Release year (the expected new chip of that year).
        hardware
            A named chip (instead of a year).
        precision
            ``"bf16"`` or ``"fp8"``.
        salt
            Seed offset of these draws.

        Returns
        -------
        numpy.ndarray
            Joules per token.
        """
        rng = self._rng(salt)
        n = np.atleast_1d(np.asarray(n_params, dtype=float))
        eff = self.efficiency(rng, year=year, hardware=hardware, precision=precision)
        util = special.expit(rng.normal(*INFERENCE_MFU, self.draws))
        per_flop = self.power_ratio(rng) * self.pue(rng) / (eff * util)
        return 2.0 * n[None, :] * per_flop[:, None]


@dataclass(frozen=True)
class Carbon:
    """Carbon intensity of electricity, kg CO2e per kWh, as a value or a log-normal (mean, sd).

    Parameters
    ----------
    mean
        kg CO2e per kWh.
    sd
        Its standard deviation (0: exact).
    """

    mean: float
    sd: float = 0.0

    @classmethod
    def parse(cls, text: str | float) -> Carbon:
        parts = str(text).split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"carbon intensity {text!r}: give kg CO2e/kWh, optionally ':sd', e.g. 0.4:0.1") from None
        if len(values) > 2 or not all(math.isfinite(v) for v in values) or values[0] <= 0 or (
                len(values) == 2 and values[1] < 0):
            raise InputError(f"carbon intensity {text!r}: expected MEAN or MEAN:SD with MEAN > 0")
        return cls(*values)

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of carbon intensity.

        Parameters
        ----------
        n
            Number of draws.
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
            kg CO2e per kWh.
        """
        if self.sd == 0:
            return np.full(n, self.mean)
        s2 = math.log1p((self.sd / self.mean) ** 2)
        return rng.lognormal(math.log(self.mean) - s2 / 2, math.sqrt(s2), n)

    def tonnes(self, mwh: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """tCO2e for energy draws in MWh (1 MWh × 1 kg/kWh = 1 t).

        Parameters
        ----------
        mwh
            Energy draws in MWh.
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
        """
        return mwh * self.draws(mwh.shape[0], rng).reshape(-1, *([1] * (mwh.ndim - 1)))


def lognormal_from_interval(interval: tuple[float, float], size: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a log-normal whose central 90% interval is ``interval`` (a stated assumption)."""
    lo, hi = (float(v) for v in interval)
    if not 0 < lo < hi or not math.isfinite(hi):
        raise InputError(f"a 90% interval must be (low, high) with 0 < low < high, got {interval!r}")
    mu, sd = (math.log(lo) + math.log(hi)) / 2, (math.log(hi) - math.log(lo)) / (2 * 1.645)
    return np.exp(rng.normal(mu, sd, size))


def growth_scenario(model: EnergyModel, *, compute_growth: tuple[float, float] = (4.0, 5.0),
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Yearly growth of frontier training energy: compute growth g over efficiency growth h.

    ``compute_growth`` is a 90% interval for g (log-normal); h is the fitted yearly
    improvement of hardware FLOP/J.  Returns draws of g, h and g/h.

    Parameters
    ----------
    model
        An :class:`~bayes_scaling.energy.training.EnergyModel`.
    compute_growth
        Range of yearly compute growth.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    dict of str to numpy.ndarray
    """
    lo, hi = compute_growth
    if not 1 <= lo < hi:
        raise InputError("compute growth interval must be (low, high) with 1 <= low < high")
    g = lognormal_from_interval(compute_growth, model.draws, np.random.default_rng([seed, 7]))
    h = model.trend.yearly_factor
    return {"compute_growth": g, "efficiency_growth": h, "energy_growth": g / h}


def _budgets(flop: Any) -> np.ndarray:
    """Compute budgets as a 1-d float array, each positive."""
    flop = np.atleast_1d(np.asarray(flop, dtype=float))
    if flop.ndim != 1 or np.any(~(flop > 0)) or not np.all(np.isfinite(flop)):
        raise InputError("FLOP must be positive and finite")
    return flop
