"""Energy of training and inference, with every factor uncertain.

    energy = FLOP / (peak FLOP per joule at TDP × utilization) × (power / TDP) × PUE

Each factor is a posterior or a stated prior, sampled in numpy (no compile):

**Hardware efficiency** (peak dense FLOP/s ÷ TDP): a Bayesian log-linear trend of
log10(FLOP/J) in release year, fitted exactly (conjugate normal–inverse-gamma) to the
``accelerators`` table, with chip-to-chip scatter, so a new chip of a given year has a
predictive distribution.  Prior: intercept at 2020 ~ N(11.5, 1.5²·σ²) (A100: 11.9), slope
~ N(0.1, 0.2²·σ²) per year (×1.26/yr, anything from halving to 6× per year within two
sd), σ² ~ InvGamma(2, 0.05) (chip scatter of about a factor 1.7).  FP8 is BF16 times the
FP8/BF16 ratio, a population fitted to the chips that list both.  A named chip uses its
own specification.

**Utilization** (model FLOPs utilization, MFU): a population on the logit scale with
Student-t (ν = 4) tails — a few runs fall far below typical (restarts, stragglers,
pipeline bubbles) — fitted to the published MFU figures (``utilization``) and to the MFU
implied by runs that report device-hours (``training-energy``: FLOP ÷ (device-hours × peak)).
Prior: location ~ N(logit 0.4, 1), scale ~ HalfNormal(1).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayes_scaling.energy.factors import EfficiencyTrend, Population, _find_chip
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import equal_tailed

__all__ = ['EnergyModel', 'calibrate', 'growth_scenario', 'Carbon', 'JOULES_PER_MWH']

JOULES_PER_MWH = 3.6e9


# Stated priors (see the module docstring).
POWER_RATIO = (math.log(0.9), 0.35)           # log-normal (mu, sigma) of power / TDP
PUE_EXCESS = (math.log(0.12), 0.6)            # log-normal of PUE - 1
INFERENCE_MFU = (special.logit(0.15), 0.7)    # logit-normal of inference utilization
MFU_NU = 4.0


# --------------------------------------------------------------------------- the model
def implied_mfu(energy_runs: pd.DataFrame, chips: pd.DataFrame) -> pd.Series:
    """MFU implied by runs that report device-hours: FLOP ÷ (device-hours × 3600 × peak FLOP/s)."""
    peaks = energy_runs["hardware"].map(lambda h: _find_chip(chips, h)["bf16_flops"])
    return energy_runs["flop"] / (energy_runs["device_hours"] * 3600.0 * peaks)


def _mfu_observations(energy_runs: pd.DataFrame, utilization: pd.DataFrame, chips: pd.DataFrame) -> pd.DataFrame:
    """One MFU per distinct run: implied from device-hours where possible, else the published figure."""
    rows = []
    implied = implied_mfu(energy_runs, chips)
    for run, value in zip(energy_runs["run"], implied, strict=True):
        if np.isfinite(value):
            rows.append({"run": run, "key": _run_key(run), "mfu": float(value), "source": "training-energy"})
    seen = {r["key"] for r in rows}
    for r in utilization.itertuples():
        if _run_key(r.run) not in seen and np.isfinite(r.mfu_mid):
            rows.append({"run": r.run, "key": _run_key(r.run), "mfu": float(r.mfu_mid), "source": "utilization"})
    frame = pd.DataFrame(rows)
    # A run reported twice (BLOOM) contributes one observation.
    return frame.drop_duplicates(subset="key", keep="first").reset_index(drop=True)


def _run_key(run: str) -> str:
    """One key per training run: 'BLOOM-176B (LLaMA table)', 'BLOOM-176B (own report)' and the
    utilization table's 'BLOOM-176B' are the same run."""
    return run.split("(")[0].strip().lower()


@dataclass
class EnergyModel:
    """Draws of every energy factor; combine them with :meth:`training_energy` and friends.

    Build with :meth:`EnergyModel.fit` (the bundled tables) or pass tables to test
    variants; ``exclude`` leaves runs out of the utilization population (leave-one-out).

    Parameters
    ----------
    trend
        The efficiency trend.
    mfu
        The utilization population.
    draws
        Number of draws.
    seed
        Random seed; the same seed gives the same result.
    mfu_data
        The utilization observations.
    """

    trend: EfficiencyTrend
    mfu: Population
    draws: int
    seed: int
    mfu_data: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def fit(cls, *, draws: int = 4000, seed: int = 0, accelerators: pd.DataFrame | None = None,
            utilization: pd.DataFrame | None = None, training_energy: pd.DataFrame | None = None,
            exclude: Sequence[str] = ()) -> EnergyModel:
        from bayes_scaling.data.datasets import load_dataset

        rng = np.random.default_rng([seed, 11])
        chips = accelerators if accelerators is not None else load_dataset("accelerators")
        util = utilization if utilization is not None else load_dataset("utilization")
        runs = training_energy if training_energy is not None else load_dataset("training-energy")
        trend = EfficiencyTrend.fit(chips, draws=draws, rng=rng)
        obs = _mfu_observations(runs, util, chips)
        excluded = {_run_key(r) for r in exclude}
        obs = obs[~obs["key"].isin(excluded)]
        mfu = Population.fit(special.logit(obs["mfu"].to_numpy()), prior_mean=float(special.logit(0.4)),
                             prior_sd=1.0, scale_sd=1.0, nu=MFU_NU, draws=draws, rng=rng)
        return cls(trend, mfu, draws, seed, obs)

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    # -------------------------------------------------------------- factor draws
    def utilization(self, rng: np.random.Generator) -> np.ndarray:
        """Draws of training utilization (MFU).

        Parameters
        ----------
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
            Draws of model-FLOPs utilization.
        """
        return special.expit(self.mfu.predictive(rng))

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
    def joules_per_flop(self, *, year: float | None = None, hardware: str | None = None, precision: str = "bf16",
                        pue: bool = True, salt: int = 0) -> np.ndarray:
        """Draws of facility (or, ``pue=False``, device) energy per training FLOP, in joules.

        Parameters
        ----------
        year
            Release year (the expected new chip of that year).
        hardware
            A named chip (instead of a year).
        precision
            ``"bf16"`` or ``"fp8"``.
        pue
            Facility energy (with PUE); False: device energy.
        salt
            Seed offset of these draws.

        Returns
        -------
        numpy.ndarray
        """
        rng = self._rng(salt)
        eff = self.efficiency(rng, year=year, hardware=hardware, precision=precision)
        out = self.power_ratio(rng) / (eff * self.utilization(rng))
        return out * self.pue(rng) if pue else out

    def training_energy(self, flop: Any, **where: Any) -> np.ndarray:
        """Draws of training energy in MWh, shape (draws, budgets).

        Parameters
        ----------
        flop
            Training compute budgets.
        **where
            ``year=``, ``hardware=``, ``precision=``, ``pue=``.

        Returns
        -------
        numpy.ndarray
            (draws, budgets), MWh.
        """
        flop = np.atleast_1d(np.asarray(flop, dtype=float))
        if np.any(~(flop > 0)):
            raise InputError("FLOP must be positive")
        return self.joules_per_flop(**where)[:, None] * flop[None, :] / JOULES_PER_MWH

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


# --------------------------------------------------------------------------- calibration
def calibrate(*, draws: int = 4000, seed: int = 0, levels: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
    """Leave-one-out predictive intervals for every run of ``training-energy`` with a reported energy.

    For each run the utilization population is refitted without it (without every report of
    it); the prediction uses the run's FLOP and hardware (not its device-hours), and includes
    PUE unless the source reports device energy only.  A run reported by several sources (BLOOM:
    its own team's measurement and the LLaMA paper's estimate) is one point: the measured report
    is kept, else the first.

    Parameters
    ----------
    draws
        Draws of the energy model per run.
    seed
        Seed of the draws.
    levels
        Credible levels of the intervals checked.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``run``, ``report``, ``hardware``, ``flop``, ``reported_mwh``, ``median_mwh``,
        ``log_error``, and per level ``lower_…``, ``upper_…``, ``inside_…``; ``attrs["coverage"]`` (share
        inside each level) and ``attrs["median_abs_log_error"]``.
    """
    from bayes_scaling.data.datasets import load_dataset

    runs = load_dataset("training-energy")
    name = runs["run"].str.replace(r"\s*\(.*\)$", "", regex=True)
    measured = runs["power_basis"].fillna("").str.contains("measured")
    reported = runs[runs["reported_energy_mwh"].notna() & runs["flop"].notna()].assign(
        run_name=name, is_measured=measured)
    chosen = reported.sort_values("is_measured", ascending=False, kind="stable").drop_duplicates("run_name")
    rows = []
    for r in chosen.sort_index().itertuples():
        others = runs.loc[name == r.run_name, "run"].tolist()
        model = EnergyModel.fit(draws=draws, seed=seed, training_energy=runs, exclude=others)
        device_only = isinstance(r.power_basis, str) and "dynamic" in r.power_basis
        mwh = model.training_energy(r.flop, hardware=r.hardware, pue=not device_only)[:, 0]
        row = {"run": r.run_name, "report": r.source, "hardware": r.hardware, "flop": r.flop, "reported_mwh": r.reported_energy_mwh,
               "median_mwh": float(np.median(mwh)), "log_error": float(np.log(r.reported_energy_mwh / np.median(mwh))),
               "pue_included": not device_only}
        for level in levels:
            lo, hi = equal_tailed(mwh, level)
            row |= {f"lower_{level:g}": lo, f"upper_{level:g}": hi,
                    f"inside_{level:g}": bool(lo <= r.reported_energy_mwh <= hi)}
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["coverage"] = {f"{level:g}": float(table[f"inside_{level:g}"].mean()) for level in levels}
    table.attrs["median_abs_log_error"] = float(np.median(np.abs(table["log_error"])))
    return table


