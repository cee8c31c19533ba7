"""Training utilization as a model of the run: a hierarchical Student-t regression of logit MFU.

    logit MFU = β · x + lab effect + chip effect + ε,    ε ~ Student-t(ν = 4, σ)

MFU here is what a run's reported device-hours imply, FLOP ÷ (device-hours × 3600 × the chip's
BF16 peak FLOP/s): it holds everything the hours hold (restarts, evaluation, downtime; for a
distilled model, the teacher's work), which is what a forecast of device-hours must hold too.

The predictors ``x`` and their priors, on the logit scale (:data:`PREDICTORS`):

- intercept ~ N(logit 0.4, 1): a dense 10B-parameter run on 1,000 devices in 2022 near 40% of
  peak (Narayanan et al. 2021: 44–52% on A100s; PaLM: 46%).
- log10(active parameters / 10¹⁰) ~ N(0.2, 0.3) per decade: larger matrices keep a chip busier
  (Megatron-LM's 44% at 1.7B to 52% at 1T is about +0.1 per decade); small models lose more
  of their time to fixed costs (kernel launches, data loading, communication).
- mixture of experts (1 if total > active parameters) ~ N(−0.3, 0.5): the tokens' exchange
  between devices and uneven expert loads cost time that 6 · active · tokens does not count.
- FP8 (1 for FP8 training) ~ N(0.4, 0.4): against the BF16 peak, FP8 matrix products run at up
  to twice the rate, but only the matrix products, so the gain is below 2×.
- log10(devices / 1000) ~ N(−0.1, 0.2) per decade: more devices, more communication and more
  failures.  Where a run does not say how many devices it used, the count is filled in from its
  size by a least-squares line through the runs that do (:attr:`UtilizationModel.devices_fill`).
- (year of the run − 2022) ~ N(0, 0.1) per year: software (fused kernels, better parallelism)
  on the same hardware.
- (release year of the chip − 2020) ~ N(0, 0.1) per year (hardware generation): a newer chip's
  peak tends to outgrow its memory bandwidth and network, so the same software reaches a smaller
  share of it (A100 runs reach about 40% of peak, H100 runs about 25%).

Effects of the chip (TPU v3, A100, H100 …, around the generation's trend) and of the lab (a lab's runs share a
cluster and a software stack) are partially pooled: each ~ N(0, τ²) with τ²_chip ~ InvGamma(2, 0.5)
(τ about 0.7: an H100 run's MFU against its larger peak is well below an A100 run's) and
τ²_lab ~ InvGamma(2, 0.2); the run's own scatter σ² ~ InvGamma(2, 0.2).  Student-t tails (ν = 4)
let a few runs fall far from the rest without dragging the fit.  A run of a new lab or on a chip
no run used draws a new effect from its population.

Every conditional is conjugate given the Student-t's latent precisions, so the posterior is
sampled by Gibbs sampling in numpy (no compile; well under a second).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from bayes_scaling.energy.factors import _find_chip
from bayes_scaling.errors import InputError

__all__ = ["TrainingRun", "UtilizationModel", "PREDICTORS", "TOKENS_PER_PARAM", "mfu_observations"]

#: Predictors of logit MFU: name → (prior mean, prior sd).  See the module docstring.
PREDICTORS = {
    "intercept": (float(special.logit(0.4)), 1.0),
    "log10_active_params": (0.2, 0.3),
    "moe": (-0.3, 0.5),
    "fp8": (0.4, 0.4),
    "log10_devices": (-0.1, 0.2),
    "year": (0.0, 0.1),
    "chip_generation": (0.0, 0.1),
}
#: InvGamma(shape, scale) priors of the variances: run scatter, lab effects, chip effects.
SIGMA2_PRIOR, LAB_PRIOR, CHIP_PRIOR = (2.0, 0.2), (2.0, 0.2), (2.0, 0.5)
NU = 4.0
#: Where a run's size is not given: tokens per active parameter, log-uniform over this range
#: (20: Chinchilla-optimal; 2,000: Llama 3's 8B at 15T tokens), so N = sqrt(FLOP / (6 · ratio)).
TOKENS_PER_PARAM = (20.0, 2000.0)
SIZE_SCALE, DEVICES_SCALE, YEAR_ORIGIN, CHIP_ORIGIN = 1e10, 1000.0, 2022.0, 2020.0


@dataclass(frozen=True)
class TrainingRun:
    """What is known of a training run besides its compute and chip; None: not known.

    Parameters
    ----------
    active_params
        Parameters active per token (a dense model: all of them).  Not known: drawn from the
        compute with :data:`TOKENS_PER_PARAM`.
    total_params
        All parameters of a mixture-of-experts model (default: ``active_params``, dense).
    devices
        Accelerators used at once.  Not known: filled in from the size.
    year
        Year of the run.  Not known: the chip's release year plus the median lag between a chip's
        release and the published runs on it (about 1.6 years).
    precision
        ``"bf16"`` or ``"fp8"`` (the precision of the matrix products).
    lab
        The lab, when it is one whose runs the model has seen (their shared stack); else a new lab.

    Examples
    --------
    >>> TrainingRun(active_params=1e9, devices=256, precision="fp8").moe
    False
    """

    active_params: float | None = None
    total_params: float | None = None
    devices: float | None = None
    year: float | None = None
    precision: str = "bf16"
    lab: str | None = None

    def __post_init__(self) -> None:
        for name in ("active_params", "total_params", "devices", "year"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number, not {value!r}")
        if self.total_params is not None and self.active_params is not None and self.total_params < self.active_params:
            raise InputError(f"total parameters ({self.total_params:.3g}) below the active ones "
                             f"({self.active_params:.3g}): give the total of a mixture of experts, or leave it out")
        if self.total_params is not None and self.active_params is None:
            raise InputError("total parameters without the active ones: give active_params too (--params)")
        if self.precision not in ("bf16", "fp8"):
            raise InputError(f"precision must be 'bf16' or 'fp8', not {self.precision!r}")

    @property
    def moe(self) -> bool:
        """Whether the run is a mixture of experts (more parameters than are active)."""
        return self.total_params is not None and self.active_params is not None and self.total_params > self.active_params


def mfu_observations(runs: pd.DataFrame, chips: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct run with device-hours and a known size: its implied MFU and predictors.

    A run reported by several sources (BLOOM) is one row (the first).  Runs without active
    parameters (GShard, Switch: not printed) cannot enter the regression.

    Parameters
    ----------
    runs
        The ``training-energy`` table (with its computed columns).
    chips
        The ``accelerators`` table.

    Returns
    -------
    pandas.DataFrame
        ``run``, ``key``, ``lab``, ``chip``, ``chip_year`` (its release), ``mfu``, ``active``, ``total``,
        ``devices``, ``year``, ``precision``.
    """
    rows = []
    for r, mfu in zip(runs.itertuples(), implied_mfu(runs, chips), strict=True):
        if not (np.isfinite(mfu) and np.isfinite(r.active)):
            continue
        chip = _find_chip(chips, r.hardware)
        rows.append({"run": r.run, "key": run_key(r.run), "lab": r.lab, "chip": chip["accelerator"],
                     "chip_year": float(chip["release_year"]), "mfu": float(mfu), "active": r.active,
                     "total": r.params if np.isfinite(r.params) else r.active,
                     "devices": r.devices, "year": float(r.year),
                     "precision": r.precision if isinstance(r.precision, str) and r.precision else "bf16"})
    frame = pd.DataFrame(rows)
    return frame.drop_duplicates(subset="key", keep="first").reset_index(drop=True)


def run_key(run: str) -> str:
    """One key per training run: 'BLOOM-176B (LLaMA table)' and 'BLOOM-176B (own report)' are one run."""
    return run.split("(")[0].strip().lower()


@dataclass
class UtilizationModel:
    """Posterior draws of the utilization regression (see the module docstring).

    Build with :meth:`UtilizationModel.fit`; :meth:`predictive` draws the MFU of a new run.

    Parameters
    ----------
    beta
        Coefficient draws, shape (draws, predictors), in the order of :data:`PREDICTORS`.
    sigma
        Draws of the runs' scatter (logit scale).
    lab_effects
        Lab → effect draws.
    tau_lab
        Draws of the lab effects' scale.
    chip_effects
        Chip (accelerators table name) → effect draws.
    tau_chip
        Draws of the chip effects' scale.
    devices_fill
        (intercept, slope) of log10 devices on log10 active parameters, for runs that do not say.
    year_lag
        Median years between a chip's release and the published runs on it.
    data
        The observations fitted.
    """

    beta: np.ndarray
    sigma: np.ndarray
    lab_effects: dict[str, np.ndarray]
    tau_lab: np.ndarray
    chip_effects: dict[str, np.ndarray]
    tau_chip: np.ndarray
    devices_fill: tuple[float, float]
    year_lag: float
    data: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def draws(self) -> int:
        return int(self.sigma.size)

    @classmethod
    def fit(cls, observations: pd.DataFrame, *, chips: pd.DataFrame, draws: int = 4000,
            rng: np.random.Generator, burn: int = 1000) -> UtilizationModel:
        """Sample the posterior given :func:`mfu_observations`' rows.

        Parameters
        ----------
        observations
            One row per run (:func:`mfu_observations`).
        chips
            The ``accelerators`` table (release years, for the default year of a run).
        draws
            Posterior draws kept.
        rng
            A numpy random Generator.
        burn
            Gibbs iterations discarded first.

        Returns
        -------
        UtilizationModel

        Raises
        ------
        InputError
            With fewer than three runs.
        """
        held_out = np.zeros(len(observations), dtype=bool)
        return cls.fit_without(observations, [held_out], chips=chips, draws=draws, rng=rng, burn=burn)[0]

    @classmethod
    def fit_without(cls, observations: pd.DataFrame, held_out: Sequence[np.ndarray], *, chips: pd.DataFrame,
                    draws: int = 4000, rng: np.random.Generator, burn: int = 1000) -> list[UtilizationModel]:
        """One posterior per mask of runs left out, each given the other runs, sampled side by side.

        The refits of a leave-one-out check share one Gibbs sampler over a batch: a run left out
        of a refit has weight zero in it, and a lab or chip left without runs draws its effect
        from the population (an unobserved group changes no other conditional).  Its effect is
        not kept: the refit forecasts it as a new lab's or a new chip's.

        Parameters
        ----------
        observations
            One row per run (:func:`mfu_observations`).
        held_out
            Boolean masks over the rows: the runs each refit leaves out.
        chips
            The ``accelerators`` table (release years, for the default year of a run).
        draws
            Posterior draws kept.
        rng
            A numpy random Generator.
        burn
            Gibbs iterations discarded first.

        Returns
        -------
        list of UtilizationModel
            One per mask, in order.

        Raises
        ------
        InputError
            With fewer than three runs in a refit, or an implied MFU outside (0, 1).
        """
        obs = observations.reset_index(drop=True)
        if "chip_year" not in obs:
            obs = obs.assign(chip_year=[float(_find_chip(chips, c)["release_year"]) for c in obs["chip"]])
        masks = np.array([np.asarray(m, dtype=bool) for m in held_out]).reshape(-1, len(obs))
        kept = ~masks
        if kept.sum(axis=1).min(initial=len(obs)) < 3:
            raise InputError(f"the utilization regression needs at least 3 runs with device-hours, got "
                             f"{int(kept.sum(axis=1).min())}")
        if not np.all((obs["mfu"] > 0) & (obs["mfu"] < 1)):
            bad = obs.loc[~((obs["mfu"] > 0) & (obs["mfu"] < 1)), "run"].tolist()
            raise InputError(f"implied MFU outside (0, 1) for {bad}: check their FLOP, device-hours and chip")
        fills, lags, designs = [], [], []
        for keep in kept:
            part = obs[keep]
            known = part["devices"].notna()
            if known.sum() >= 3:
                slope, intercept = np.polyfit(np.log10(part.loc[known, "active"].to_numpy(float)),
                                              np.log10(part.loc[known, "devices"].to_numpy(float)), 1)
            else:
                slope, intercept = 0.0, math.log10(DEVICES_SCALE)
            fill = (float(intercept), float(slope))
            fills.append(fill)
            lags.append(float(np.median(part["year"] - part["chip_year"])))
            designs.append(np.column_stack([_design_row(a, t, d, y, p, g, fill) for a, t, d, y, p, g in zip(
                obs["active"], obs["total"], obs["devices"], obs["year"], obs["precision"], obs["chip_year"],
                strict=True)]).T)
        labs, lab_idx = np.unique(obs["lab"].astype(str), return_inverse=True)
        chip_names, chip_idx = np.unique(obs["chip"].astype(str), return_inverse=True)
        y = special.logit(obs["mfu"].to_numpy(float))
        beta, sigma, a, tau_a, c, tau_c = _gibbs(y, np.array(designs), kept.astype(float), lab_idx, labs.size,
                                                 chip_idx, chip_names.size, draws=draws, burn=burn, rng=rng)
        models = []
        for k, keep in enumerate(kept):
            seen_labs, seen_chips = set(lab_idx[keep]), set(chip_idx[keep])
            models.append(cls(beta[:, k], sigma[:, k],
                              {lab: a[:, k, i] for i, lab in enumerate(labs) if i in seen_labs}, tau_a[:, k],
                              {chip: c[:, k, i] for i, chip in enumerate(chip_names) if i in seen_chips},
                              tau_c[:, k], fills[k], lags[k], obs[keep].reset_index(drop=True)))
        return models

    def predictive(self, run: TrainingRun, *, rng: np.random.Generator, chip: str | None = None,
                   chip_year: float | None = None, flop: float | None = None) -> np.ndarray:
        """Draws of the MFU (against the BF16 peak) of a new run: one per posterior draw.

        Parameters
        ----------
        run
            What is known of the run.
        rng
            A numpy random Generator.
        chip
            Its chip (a name of the accelerators table); None: a chip no run used.
        chip_year
            Release year of the chip (the default year of the run is this plus the lag).
        flop
            Its training compute, for a run whose size is not given.

        Returns
        -------
        numpy.ndarray
            MFU draws in (0, 1).
        """
        n = self.draws
        if run.active_params is not None:
            active = np.full(n, float(run.active_params))
        else:
            if flop is None:
                active = rng.choice(self.data["active"].to_numpy(float), n)
            else:
                ratio = np.exp(rng.uniform(*np.log(TOKENS_PER_PARAM), n))
                active = np.sqrt(flop / (6.0 * ratio))
        total = active if run.total_params is None else np.full(n, float(run.total_params))
        generation = float(np.median(self.data["chip_year"])) if chip_year is None else float(chip_year)
        year = float(run.year) if run.year is not None else generation + self.year_lag
        x = _design(active, total, run.devices, year, run.precision, generation, self.devices_fill)
        eta = np.einsum("dp,dp->d", x, self.beta)
        lab = self.lab_effects.get(run.lab) if run.lab else None
        eta += lab if lab is not None else self.tau_lab * rng.standard_normal(n)
        effect = self.chip_effects.get(chip) if chip else None
        eta += effect if effect is not None else self.tau_chip * rng.standard_normal(n)
        eta += self.sigma * rng.standard_t(NU, n)
        return special.expit(eta)


def _design(active: np.ndarray, total: np.ndarray, devices: float | None, year: float, precision: str,
            chip_year: float, fill: tuple[float, float]) -> np.ndarray:
    """Predictor rows (draws, predictors) for draws of the size, in the order of :data:`PREDICTORS`."""
    log_size = np.log10(active)
    log_devices = np.full_like(log_size, math.log10(devices)) if devices is not None else fill[0] + fill[1] * log_size
    return np.column_stack([np.ones_like(log_size), log_size - math.log10(SIZE_SCALE),
                            (total > active * (1 + 1e-9)).astype(float), np.full_like(log_size, precision == "fp8"),
                            log_devices - math.log10(DEVICES_SCALE), np.full_like(log_size, year - YEAR_ORIGIN),
                            np.full_like(log_size, chip_year - CHIP_ORIGIN)])


def _design_row(active: float, total: float, devices: float, year: float, precision: str, chip_year: float,
                fill: tuple[float, float]) -> np.ndarray:
    known = devices if np.isfinite(devices) else None
    return _design(np.array([active]), np.array([total]), known, year, precision, chip_year, fill)[0]


def _gibbs(y: np.ndarray, x: np.ndarray, weight: np.ndarray, lab_idx: np.ndarray, n_lab: int, chip_idx: np.ndarray,
           n_chip: int, *, draws: int, burn: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Gibbs sampler of the regression with lab and chip effects and Student-t errors, for a batch of
    K refits at once: ``x`` (K, runs, predictors), ``weight`` (K, runs) 1 for the runs each fits, 0
    for those it leaves out.

    Given the latent precisions λ (ε_i ~ N(0, σ²/λ_i), λ_i ~ Gamma(ν/2, ν/2)), every block is
    conjugate: β normal, each group's effects normal, σ² and the τ² inverse-gamma, λ gamma.
    Returns draws with the batch as their second axis.
    """
    k, n, p = x.shape
    m0 = np.array([v[0] for v in PREDICTORS.values()])
    v0_inv = np.diag([1.0 / v[1] ** 2 for v in PREDICTORS.values()])
    labs, chips = np.eye(n_lab)[lab_idx], np.eye(n_chip)[chip_idx]  # (runs, groups) memberships
    shapes = np.concatenate([SIGMA2_PRIOR[0] + weight.sum(axis=1) / 2, np.full(k, LAB_PRIOR[0] + n_lab / 2),
                             np.full(k, CHIP_PRIOR[0] + n_chip / 2)])
    beta, a, c = np.tile(m0, (k, 1)), np.zeros((k, n_lab)), np.zeros((k, n_chip))
    lam = np.ones((k, n))
    s2, ta2, tc2 = (np.full(k, prior[1]) for prior in (SIGMA2_PRIOR, LAB_PRIOR, CHIP_PRIOR))
    keep = {name: [] for name in ("beta", "s", "a", "ta", "c", "tc")}
    xt = np.swapaxes(x, 1, 2)  # (K, predictors, runs)
    prior_rhs = v0_inv @ m0
    for it in range(burn + draws):
        w = weight * lam / s2[:, None]
        xtw = xt * w[:, None, :]
        prec = xtw @ x + v0_inv
        chol = np.linalg.cholesky(prec)
        rhs = xtw @ (y - a[:, lab_idx] - c[:, chip_idx])[..., None] + prior_rhs[:, None]
        # β = P⁻¹(rhs + L z) with P = L Lᵀ: mean P⁻¹ rhs plus L⁻ᵀ z, whose covariance is P⁻¹
        beta = np.linalg.solve(prec, rhs + chol @ rng.standard_normal((k, p, 1)))
        fit = (x @ beta)[..., 0]
        beta = beta[..., 0]
        a = _group_effects(y - fit - c[:, chip_idx], w, labs, ta2, rng)
        c = _group_effects(y - fit - a[:, lab_idx], w, chips, tc2, rng)
        e = y - fit - a[:, lab_idx] - c[:, chip_idx]
        lam = rng.gamma((NU + 1) / 2, 2.0 / (NU + e ** 2 / s2[:, None]))
        # σ², τ²_lab, τ²_chip: inverse-gamma, scale / Gamma(shape), drawn in one call
        scale = np.concatenate([SIGMA2_PRIOR[1] + np.sum(weight * lam * e ** 2, axis=1) / 2,
                                LAB_PRIOR[1] + np.sum(a ** 2, axis=1) / 2, CHIP_PRIOR[1] + np.sum(c ** 2, axis=1) / 2])
        s2, ta2, tc2 = np.split(scale / rng.gamma(shapes), 3)
        if it >= burn:
            for name, v in (("beta", beta), ("s", np.sqrt(s2)), ("a", a), ("ta", np.sqrt(ta2)), ("c", c),
                            ("tc", np.sqrt(tc2))):
                keep[name].append(v)
    return tuple(np.asarray(keep[name]) for name in ("beta", "s", "a", "ta", "c", "tc"))


def _group_effects(residual: np.ndarray, w: np.ndarray, members: np.ndarray, tau2: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Draws of N(0, τ²) group effects given weighted residuals, (K, groups): normal, conjugate."""
    precision = w @ members + 1.0 / tau2[:, None]
    mean = (w * residual) @ members / precision
    return mean + rng.standard_normal(precision.shape) / np.sqrt(precision)


def implied_mfu(energy_runs: pd.DataFrame, chips: pd.DataFrame) -> pd.Series:
    """MFU implied by runs that report device-hours: FLOP ÷ (device-hours × 3600 × peak FLOP/s).

    Parameters
    ----------
    energy_runs
        The ``training-energy`` table.
    chips
        The ``accelerators`` table.

    Returns
    -------
    pandas.Series
        One MFU per run (NaN without FLOP or device-hours).
    """
    peaks = energy_runs["hardware"].map(lambda h: _find_chip(chips, h)["bf16_flops"])
    return energy_runs["flop"] / (energy_runs["device_hours"] * 3600.0 * peaks)

