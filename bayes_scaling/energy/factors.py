"""Posteriors of two energy factors: the hardware-efficiency trend (peak FLOP per joule by release year,
fitted to the ``accelerators`` table) and a location-scale population (utilization, FP8/BF16 ratio).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayes_scaling.errors import DataWarning, InputError

#: Years past the newest chip after which a forecast warns, and after which it is refused.
TREND_WARN_YEARS, TREND_MAX_YEARS = 5, 25

__all__ = ['Population', 'EfficiencyTrend', 'REFERENCE_YEAR', 'HARDWARE_ALIASES']

REFERENCE_YEAR = 2020.0


#: How run tables name hardware → the accelerators table.
HARDWARE_ALIASES = {
    "TPU v3": "Google TPU v3", "V100": "NVIDIA V100 SXM2", "A100": "NVIDIA A100 SXM4",
    "A100-80GB": "NVIDIA A100 SXM4", "H100": "NVIDIA H100 SXM5", "H100-80GB": "NVIDIA H100 SXM5",
    "TPU v4": "Google TPU v4", "A100-40GB": "NVIDIA A100 SXM4",
    # The H100's tensor cores and TDP with less interconnect bandwidth (H800), or with a Grace CPU
    # on the module (GH200, whose module power the table does not hold): counted as H100s.
    "H800": "NVIDIA H100 SXM5", "GH200": "NVIDIA H100 SXM5",
}


# --------------------------------------------------------------------------- populations
@dataclass
class Population:
    """Posterior of a location–scale population (normal or Student-t), on a grid.

    ``values`` are observations on the working scale (e.g. logit MFU); the posterior of
    (location, scale) is computed on a 241 × 241 grid (refined once around its mass) under the priors location ~
    N(prior_mean, prior_sd²) and scale ~ HalfNormal(scale_sd), then sampled.

    Parameters
    ----------
    loc
        Location draws.
    scale
        Scale draws.
    nu
        Degrees of freedom.
    n
        Observations.
    """

    loc: np.ndarray
    scale: np.ndarray
    nu: float
    n: int

    @classmethod
    def fit(cls, values: Sequence[float], *, prior_mean: float, prior_sd: float, scale_sd: float,
            nu: float = math.inf, draws: int = 4000, rng: np.random.Generator) -> Population:
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        spread = max(float(np.std(x)) if x.size > 1 else scale_sd, 1e-3)
        centre = float(np.mean(x)) if x.size else prior_mean
        dist = stats.norm if math.isinf(nu) else stats.t(nu)

        def log_post(m, s):
            logp = stats.norm.logpdf(m, prior_mean, prior_sd) + stats.halfnorm.logpdf(s, scale=scale_sd)
            if x.size:
                logp = logp + dist.logpdf((x[None, None, :] - m[..., None]) / s[..., None]).sum(-1) - x.size * np.log(s)
            return logp

        # Pass 1: a wide grid finds where the mass is; pass 2: a fine grid over that region.
        mu = np.linspace(min(centre, prior_mean) - 8 * spread - 3 * prior_sd,
                         max(centre, prior_mean) + 8 * spread + 3 * prior_sd, 241)
        sd = np.linspace(1e-4, max(6 * spread, 3 * scale_sd), 241)[1:]
        for _ in range(2):
            m, s = np.meshgrid(mu, sd, indexing="ij")
            logp = log_post(m, s)
            keep = logp > logp.max() - 25  # relative density above e^-25
            dm, ds = mu[1] - mu[0], sd[1] - sd[0]
            mu_lo, mu_hi = m[keep].min() - dm, m[keep].max() + dm
            sd_lo, sd_hi = max(s[keep].min() - ds, 1e-6), s[keep].max() + ds
            mu, sd = np.linspace(mu_lo, mu_hi, 241), np.linspace(sd_lo, sd_hi, 241)
        m, s = np.meshgrid(mu, sd, indexing="ij")
        p = np.exp(log_post(m, s) - log_post(m, s).max()).ravel()
        idx = rng.choice(p.size, size=draws, p=p / p.sum())
        dm, ds = mu[1] - mu[0], sd[1] - sd[0]
        loc = m.ravel()[idx] + rng.uniform(-dm / 2, dm / 2, draws)
        scale = np.abs(s.ravel()[idx] + rng.uniform(-ds / 2, ds / 2, draws))
        return cls(loc, scale, nu, int(x.size))

    def predictive(self, rng: np.random.Generator) -> np.ndarray:
        """One new member of the population per posterior draw.

        Parameters
        ----------
        rng
            A numpy random Generator.

        Returns
        -------
        numpy.ndarray
        """
        z = rng.standard_normal(self.loc.size) if math.isinf(self.nu) else rng.standard_t(self.nu, self.loc.size)
        return self.loc + self.scale * z


@dataclass
class EfficiencyTrend:
    """log10(peak FLOP/J) = a + b·(year − 2020) + scatter, fitted to the accelerators table.

    Parameters
    ----------
    a
        Intercept draws.
    b
        Slope draws.
    sigma
        Scatter draws.
    fp8_ratio
        FP8/BF16 ratio population.
    chips
        The accelerators table.
    """

    a: np.ndarray
    b: np.ndarray
    sigma: np.ndarray
    fp8_ratio: Population
    chips: pd.DataFrame

    @classmethod
    def fit(cls, accelerators: pd.DataFrame, *, draws: int, rng: np.random.Generator) -> EfficiencyTrend:
        table = accelerators.dropna(subset=["bf16_flop_per_joule", "release_year"])
        x = np.column_stack([np.ones(len(table)), table["release_year"].to_numpy() - REFERENCE_YEAR])
        y = np.log10(table["bf16_flop_per_joule"].to_numpy())
        m0, v0 = np.array([11.5, 0.1]), np.diag([1.5**2, 0.2**2])
        a0, b0 = 2.0, 0.05
        v0_inv = np.linalg.inv(v0)
        vn = np.linalg.inv(v0_inv + x.T @ x)
        mn = vn @ (v0_inv @ m0 + x.T @ y)
        an = a0 + len(y) / 2
        bn = b0 + 0.5 * (y @ y + m0 @ v0_inv @ m0 - mn @ np.linalg.inv(vn) @ mn)
        sigma2 = stats.invgamma.rvs(an, scale=bn, size=draws, random_state=rng)
        chol = np.linalg.cholesky(vn)
        beta = mn[None, :] + np.sqrt(sigma2)[:, None] * (rng.standard_normal((draws, 2)) @ chol.T)
        both = accelerators.dropna(subset=["fp8_flops", "bf16_flops"])
        ratio = Population.fit(np.log10(both["fp8_flops"] / both["bf16_flops"]), prior_mean=math.log10(2),
                               prior_sd=0.3, scale_sd=0.2, draws=draws, rng=rng)
        return cls(beta[:, 0], beta[:, 1], np.sqrt(sigma2), ratio, accelerators)

    @property
    def yearly_factor(self) -> np.ndarray:
        """Draws of the yearly improvement factor of peak FLOP/J."""
        return 10.0**self.b

    @property
    def doubling_time(self) -> np.ndarray:
        """Draws of the doubling time in years."""
        return math.log10(2) / self.b

    @property
    def years(self) -> tuple[float, float]:
        """Release years of the oldest and newest chip the trend is fitted to."""
        released = self.chips["release_year"].dropna()
        return float(released.min()), float(released.max())

    def check_year(self, year: float) -> float:
        """``year`` if the trend can speak for it: an error before the data or far beyond, a warning
        more than :data:`TREND_WARN_YEARS` years past the newest chip.

        Parameters
        ----------
        year
            A year.

        Returns
        -------
        float
        """
        first, last = self.years
        if not math.isfinite(year):
            raise InputError(f"year must be a finite number, got {year!r}")
        if year < first - 1:
            raise InputError(f"year {year:g} is before the efficiency trend's data (chips released {first:.0f}–"
                             f"{last:.0f}); for hardware of an earlier year name its chip (--hardware)")
        if year > last + TREND_MAX_YEARS:
            raise InputError(f"year {year:g} is {year - last:.0f} years beyond the newest chip ({last:.0f}); the "
                             f"efficiency trend is not extrapolated more than {TREND_MAX_YEARS} years")
        if year > last + TREND_WARN_YEARS:
            warnings.warn(DataWarning(
                f"year {year:g} extrapolates the efficiency trend {year - last:.0f} years beyond the newest chip "
                f"({last:.0f}); its interval assumes that the exponential trend continues"), stacklevel=3)
        return year

    def new_chip(self, year: float, rng: np.random.Generator, *, precision: str = "bf16") -> np.ndarray:
        """Predictive draws of peak FLOP/J of a new leading chip released in ``year``.

        Parameters
        ----------
        year
            Release year (the expected new chip of that year).
        rng
            A numpy random Generator.
        precision
            ``"bf16"`` or ``"fp8"``.

        Returns
        -------
        numpy.ndarray
            Peak FLOP/J draws.
        """
        year = self.check_year(float(year))
        log10_eff = self.a + self.b * (year - REFERENCE_YEAR) + self.sigma * rng.standard_normal(self.a.size)
        if precision == "fp8":
            log10_eff = log10_eff + self.fp8_ratio.predictive(rng)
        return 10.0**log10_eff

    def trend(self, year: float) -> np.ndarray:
        """Draws of the trend line (the typical chip) at ``year``, without chip scatter.

        Parameters
        ----------
        year
            Release year (the expected new chip of that year).

        Returns
        -------
        numpy.ndarray
        """
        return 10.0 ** (self.a + self.b * (year - REFERENCE_YEAR))

    def named(self, name: str, *, precision: str = "bf16") -> float:
        """Peak FLOP/J of a named chip, from its specification.

        Parameters
        ----------
        name
            A chip of the accelerators table.
        precision
            ``"bf16"`` or ``"fp8"``.

        Returns
        -------
        float
        """
        row = _find_chip(self.chips, name)
        column = "fp8_flop_per_joule" if precision == "fp8" else "bf16_flop_per_joule"
        value = row[column]
        if not np.isfinite(value):
            raise InputError(f"{row['accelerator']} has no {precision.upper()} rate in the accelerators table")
        return float(value)


def _find_chip(chips: pd.DataFrame, name: str) -> pd.Series:
    key = HARDWARE_ALIASES.get(name, name).lower()
    names = chips["accelerator"].str.lower()
    exact = chips[names == key]
    if len(exact):
        return exact.iloc[0]
    partial = chips[names.str.contains(key, regex=False)]
    if len(partial) == 1:
        return partial.iloc[0]
    raise InputError(f"unknown hardware {name!r}; the accelerators table has: "
                     f"{', '.join(chips['accelerator'])}")
