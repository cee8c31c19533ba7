"""Priors: a small, serializable description of a distribution, and the data statistics
default priors are scaled to.

A :class:`Prior` names a PyMC distribution and its parameters, e.g.
``Prior("LogNormal", mu=-1.08, sigma=0.3)``; it can be written as the string
``"LogNormal(mu=-1.08, sigma=0.3)"`` (command line, TOML) and is stored in a saved fit.

Default priors (each law's ``default_priors``) are *weakly informative and scaled to the
data*, in the spirit of bambi: they are set from the smallest and the typical observed
loss and from the centre and spread of log N, log D and log C, so the same defaults suit
runs at 10^18 FLOP and at 10^24 FLOP.  Literature-informed priors centre the same
quantities on a published fit (``published-fits`` dataset) with moderate width.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_scaling.errors import InputError

__all__ = ['Prior', 'DataStats', 'resolve_priors', 'POSITIVE_DISTS']

# Distributions a prior may use, with their parameter names.
DISTS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "LogNormal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "HalfStudentT": ("nu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "Exponential": ("lam",),
    "Uniform": ("lower", "upper"),
    "Beta": ("alpha", "beta"),
    "TruncatedNormal": ("mu", "sigma", "lower", "upper"),
}
POSITIVE_DISTS = {"LogNormal", "HalfNormal", "HalfStudentT", "Gamma", "Exponential"}
#: The location/scale parameters of each family: they enter a compiled model as data (the
#: sampler works on a standardized variable), so one compiled model serves any values. The
#: remaining (shape) parameters are part of the model's structure.
DATA_PARAMS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "LogNormal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "HalfStudentT": ("sigma",),
    "Gamma": ("beta",),
    "Exponential": ("lam",),
    "Uniform": ("lower", "upper"),
    "Beta": (),
    "TruncatedNormal": (),
}


@dataclass(frozen=True)
class Prior:
    """A distribution for one sampled quantity.

    Parameters
    ----------
    dist
        Name of a PyMC distribution among ``Normal``, ``LogNormal``, ``HalfNormal``,
        ``HalfStudentT``, ``Gamma``, ``Exponential``, ``Uniform``, ``Beta``,
        ``TruncatedNormal``.
    **params
        Its parameters, e.g. ``mu=0.0, sigma=1.0``.
    """

    dist: str
    params: dict[str, float] = field(default_factory=dict)

    def __init__(self, dist: str, /, **params: float):
        if dist not in DISTS:
            raise InputError(f"unknown prior distribution {dist!r}; use one of {', '.join(DISTS)}")
        expected = DISTS[dist]
        if set(params) != set(expected):
            raise InputError(f"{dist} prior needs parameters {', '.join(expected)}; got {', '.join(params) or 'none'}")
        clean = {}
        for key in expected:
            try:
                value = float(params[key])
            except (TypeError, ValueError):
                raise InputError(f"{dist} prior parameter {key}={params[key]!r} is not a number") from None
            if not math.isfinite(value):
                raise InputError(f"{dist} prior parameter {key}={value} is not finite")
            clean[key] = value
        for key in ("sigma", "lam", "alpha", "beta", "nu"):
            if key in clean and clean[key] <= 0:
                raise InputError(f"{dist} prior parameter {key} must be positive, got {clean[key]:g}")
        if "lower" in clean and clean["lower"] >= clean["upper"]:
            raise InputError(f"{dist} prior needs lower < upper")
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "params", clean)

    @property
    def positive(self) -> bool:
        """Whether the distribution's support is (a subset of) the positive reals."""
        if self.dist in POSITIVE_DISTS:
            return True
        if self.dist == "Beta":
            return True
        return self.dist in ("Uniform", "TruncatedNormal") and self.params["lower"] >= 0

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"{self.dist}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """The prior as a JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"dist": self.dist, **self.params}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prior:
        data = dict(data)
        if not isinstance(data.get("dist"), str):
            raise InputError(f"prior {data!r} needs its distribution, e.g. {{dist = \"LogNormal\", mu = -1.1, "
                             f"sigma = 0.3}} or the text 'LogNormal(mu=-1.1, sigma=0.3)'")
        return cls(data.pop("dist"), **data)

    @classmethod
    def parse(cls, text: str | Prior | Mapping[str, Any]) -> Prior:
        """``"LogNormal(mu=-1, sigma=0.5)"`` → Prior; Priors and dicts pass through."""
        if isinstance(text, Prior):
            return text
        if isinstance(text, Mapping):
            return cls.from_dict(text)
        match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", str(text))
        if not match:
            raise InputError(f"cannot read prior {text!r}; write it like 'LogNormal(mu=-1.1, sigma=0.3)'")
        params = {}
        for part in filter(None, (p.strip() for p in match.group(2).split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise InputError(f"prior {text!r}: parameters must be named, like sigma=0.5")
            if key.strip() in params:
                raise InputError(f"prior {text!r}: parameter {key.strip()} is given twice")
            params[key.strip()] = value.strip()
        return cls(match.group(1), **params)

    def build(self, name: str, **kwargs: Any):
        """The PyMC random variable (inside a model context), with constant parameters.

        Parameters
        ----------
        name
            The variable's name.
        **kwargs
            Passed on to PyMC.

        Returns
        -------
        pymc variable
        """
        import pymc as pm

        return getattr(pm, self.dist)(name, **self.params, **kwargs)

    # ---------------------------------------------------------------- as data in a compiled model
    def data_params(self) -> dict[str, float]:
        """The location/scale parameters, which a compiled model takes as data.

        Returns
        -------
        dict of str to float
        """
        return {k: self.params[k] for k in DATA_PARAMS[self.dist]}

    def structure(self) -> dict[str, Any]:
        """The family and its shape parameters: what a compiled model is specialised to.

        Returns
        -------
        dict
        """
        return {"dist": self.dist, **{k: v for k, v in self.params.items() if k not in DATA_PARAMS[self.dist]}}

    def build_standardized(self, name: str, data: Mapping[str, Any], **kwargs: Any):
        """``name`` as a deterministic transform of a standardized variable ``name_raw``.

        ``data`` holds the location/scale parameters as tensors (``pm.Data``): the sampler
        works on ``name_raw``, whose distribution and starting point do not depend on them.
        Families without location/scale parameters (Beta, TruncatedNormal) are built as is.

        Parameters
        ----------
        name
            The variable's name.
        data
            Prior parameters given as data, by name.
        **kwargs
            Passed on to PyMC.

        Returns
        -------
        pymc variable
        """
        import pymc as pm

        shape_params = {k: v for k, v in self.params.items() if k not in DATA_PARAMS[self.dist]}
        raw_name = f"{name}_raw"
        if self.dist in ("Normal", "LogNormal"):
            z = pm.Normal(raw_name, 0.0, 1.0, **kwargs)
            value = data["mu"] + data["sigma"] * z
            value = pm.math.exp(value) if self.dist == "LogNormal" else value
        elif self.dist == "HalfNormal":
            value = data["sigma"] * pm.HalfNormal(raw_name, sigma=1.0, **kwargs)
        elif self.dist == "HalfStudentT":
            value = data["sigma"] * pm.HalfStudentT(raw_name, nu=shape_params["nu"], sigma=1.0, **kwargs)
        elif self.dist == "Gamma":
            value = pm.Gamma(raw_name, alpha=shape_params["alpha"], beta=1.0, **kwargs) / data["beta"]
        elif self.dist == "Exponential":
            value = pm.Exponential(raw_name, lam=1.0, **kwargs) / data["lam"]
        elif self.dist == "Uniform":
            value = data["lower"] + (data["upper"] - data["lower"]) * pm.Uniform(raw_name, 0.0, 1.0, **kwargs)
        else:
            return self.build(name, **kwargs)
        return pm.Deterministic(name, value, dims=kwargs.get("dims"))

    def log_density_of_log(self, log_value, data: Mapping[str, Any]):
        """Prior log density of ``log(x)`` at ``log_value`` (a tensor), for a positive family:
        the density of x there plus log x.  ``data`` as in :meth:`build_standardized`.

        Parameters
        ----------
        log_value
            log(x).
        data
            Prior parameters given as data, by name.

        Returns
        -------
        tensor
        """
        import pymc as pm

        if self.dist == "LogNormal":
            return pm.logp(pm.Normal.dist(data["mu"], data["sigma"]), log_value)
        shape_params = {k: v for k, v in self.params.items() if k not in DATA_PARAMS[self.dist]}
        dist = getattr(pm, self.dist).dist(**shape_params, **data)
        return pm.logp(dist, pm.math.exp(log_value)) + log_value

    def to_raw(self, value: float) -> tuple[str, float]:
        """(name suffix, value) of the standardized variable that gives ``value``; inverse of the above.

        Parameters
        ----------
        value
            A value of the quantity.

        Returns
        -------
        tuple
        """
        p = self.params
        raw = {
            "Normal": lambda: (value - p["mu"]) / p["sigma"],
            "LogNormal": lambda: (math.log(value) - p["mu"]) / p["sigma"],
            "HalfNormal": lambda: value / p["sigma"],
            "HalfStudentT": lambda: value / p["sigma"],
            "Gamma": lambda: value * p["beta"],
            "Exponential": lambda: value * p["lam"],
            "Uniform": lambda: (value - p["lower"]) / (p["upper"] - p["lower"]),
        }
        if self.dist not in raw:
            return "", value
        return "_raw", float(raw[self.dist]())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draws in numpy (prior predictive checks without a compile).

        Parameters
        ----------
        rng
            A numpy random Generator.
        size
            Number of draws.

        Returns
        -------
        numpy.ndarray
        """
        p = self.params
        draw = {
            "Normal": lambda: rng.normal(p.get("mu"), p.get("sigma"), size),
            "LogNormal": lambda: rng.lognormal(p.get("mu"), p.get("sigma"), size),
            "HalfNormal": lambda: np.abs(rng.normal(0, p.get("sigma"), size)),
            "HalfStudentT": lambda: np.abs(p.get("sigma", 1.0) * rng.standard_t(p.get("nu", 1.0), size)),
            "Gamma": lambda: rng.gamma(p.get("alpha"), 1 / p.get("beta", 1.0), size),
            "Exponential": lambda: rng.exponential(1 / p.get("lam", 1.0), size),
            "Uniform": lambda: rng.uniform(p.get("lower"), p.get("upper"), size),
            "Beta": lambda: rng.beta(p.get("alpha"), p.get("beta"), size),
            "TruncatedNormal": lambda: _truncnorm(rng, p, size),
        }[self.dist]
        return np.asarray(draw(), dtype=float)


def _truncnorm(rng: np.random.Generator, p: Mapping[str, float], size: int) -> np.ndarray:
    from scipy.stats import truncnorm

    a, b = (p["lower"] - p["mu"]) / p["sigma"], (p["upper"] - p["mu"]) / p["sigma"]
    return truncnorm.rvs(a, b, loc=p["mu"], scale=p["sigma"], size=size, random_state=rng)


@dataclass(frozen=True)
class DataStats:
    """What default priors are scaled to, computed once from the runs a model is fitted to.

    ``centre[k]`` and ``spread[k]`` are the mean and standard deviation of log input ``k``
    (N, D, C, unique_tokens); ``loss_min`` the smallest loss; ``loss_mid`` the geometric
    mean loss.

    Parameters
    ----------
    centre
        Centres of the log inputs.
    spread
        Their spreads.
    loss_min
        Smallest loss.
    loss_mid
        Median loss.
    """

    centre: dict[str, float]
    spread: dict[str, float]
    loss_min: float
    loss_mid: float

    @classmethod
    def from_runs(cls, runs) -> DataStats:
        centre, spread = {}, {}
        for key in ("N", "D", "C", "unique_tokens"):
            if key in runs.data.columns:
                logs = np.log(runs.column(key))
                centre[key] = float(logs.mean())
                spread[key] = float(logs.std())
        loss = runs.loss
        return cls(centre, spread, float(loss.min()), float(np.exp(np.log(loss).mean())))

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"centre": self.centre, "spread": self.spread, "loss_min": self.loss_min, "loss_mid": self.loss_mid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataStats:
        return cls(dict(data["centre"]), dict(data["spread"]), float(data["loss_min"]), float(data["loss_mid"]))


def resolve_priors(defaults: Mapping[str, Prior], *, base: Mapping[str, Prior] | None = None,
                   overrides: Mapping[str, Any] | None = None, positive: set[str] | None = None) -> dict[str, Prior]:
    """Defaults, updated by ``base`` (e.g. literature priors), then by user ``overrides``.

    Overrides are checked: each must name a sampled quantity, and quantities that must be
    positive (amplitudes, exponents, noise scales) need a distribution on positive values.

    Parameters
    ----------
    defaults
        Default priors.
    base
        Priors replacing them (e.g. literature).
    overrides
        The user's.
    positive
        Quantities that must be positive.

    Returns
    -------
    dict of str to Prior
    """
    out = dict(defaults)
    out.update(base or {})
    for name, spec in (overrides or {}).items():
        if name not in out:
            raise InputError(f"no parameter {name!r} to set a prior on; the sampled parameters are "
                             f"{', '.join(out)}")
        prior = Prior.parse(spec)
        if positive and name in positive and not prior.positive:
            raise InputError(f"{name} must be positive, but {prior} allows values ≤ 0; use LogNormal, "
                             f"HalfNormal, Gamma or Exponential")
        out[name] = prior
    return out
