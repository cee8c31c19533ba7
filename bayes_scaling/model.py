"""Build the PyMC model of a scaling law fitted to a run table.

The observed quantity is ``log_loss = log(loss)``; its mean is the law's log loss.
With several groups (datasets, model families) in one table, amplitudes and the
irreducible loss are per group, and the law's exponents are, by ``pooling``:

``"shared"``
    one value for all groups;
``"partial"``
    partially pooled: ``log θ_g = log θ_pop + τ·z_g`` (non-centred), so groups borrow
    strength and the population value ``θ_pop`` describes a new group;
``"separate"``
    one independent value per group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .laws import ScalingLaw, pytensor_ops
from .likelihoods import Likelihood
from .priors import DataStats, Prior
from .runs import RunTable

__all__ = ["ModelSpec", "build_model", "POOLING", "log_inputs"]

POOLING = ("shared", "partial", "separate")
# Scale of the half-normal prior on the between-group spread of log exponents: groups'
# exponents typically differ by tens of percent, not by factors.
POOLING_TAU = Prior("HalfNormal", sigma=0.3)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines the model, apart from the data values."""

    law: ScalingLaw
    likelihood: Likelihood
    priors: dict[str, Prior]
    pooling: str
    groups: tuple[str, ...]
    stats: DataStats

    @property
    def grouped(self) -> bool:
        return len(self.groups) > 1

    def noise_names(self) -> tuple[str, ...]:
        return ("sigma", *self.likelihood.extra)


def log_inputs(law: ScalingLaw, runs: RunTable) -> dict[str, np.ndarray]:
    """log of every input the law needs, with a clear error when a column is missing."""
    missing = [k for k in law.inputs if k not in runs.data.columns]
    if missing:
        raise InputError(f"law {law.name!r} needs column(s) {', '.join(missing)}, which "
                         f"{runs.source} does not have")
    return {k: np.log(runs.column(k)) for k in law.inputs}


def group_index(runs: RunTable, groups: tuple[str, ...]) -> np.ndarray:
    if len(groups) <= 1:
        return np.zeros(len(runs), dtype=int)
    lookup = {g: i for i, g in enumerate(groups)}
    return np.array([lookup[g] for g in runs.data["group"]], dtype=int)


def build_model(spec: ModelSpec, runs: RunTable):
    """The PyMC model; natural parameters are Deterministics with the names users know."""
    import pymc as pm

    law, ops = spec.law, pytensor_ops()
    x = log_inputs(law, runs)
    y = np.log(runs.loss)
    idx = group_index(runs, spec.groups)
    coords = {"obs": np.arange(len(runs))}
    if spec.grouped:
        coords["group"] = list(spec.groups)
    exponents = {s.name for s in law.sampled if s.exponent}

    with pm.Model(coords=coords) as model:
        values: dict[str, Any] = {}
        for sampled in law.sampled:
            name, prior = sampled.name, spec.priors[sampled.name]
            if not spec.grouped or (name in exponents and spec.pooling == "shared"):
                values[name] = prior.build(name)
            elif name in exponents and spec.pooling == "partial":
                pop = prior.build(f"{name}_pop")
                tau = POOLING_TAU.build(f"{name}_tau")
                z = pm.Normal(f"{name}_z", 0.0, 1.0, dims="group")
                value = pop * pm.math.exp(tau * z) if prior.positive else pop + tau * z
                values[name] = pm.Deterministic(name, value, dims="group")
            else:
                values[name] = prior.build(name, dims="group")

        natural = law.natural(ops, values, spec.stats.centre)
        for pname, value in natural.items():
            if pname not in model.named_vars:
                pm.Deterministic(pname, value, dims="group" if getattr(value, "ndim", 0) == 1 else None)

        per_obs = {k: (v[idx] if getattr(v, "ndim", 0) == 1 else v) for k, v in natural.items()}
        mu = law.log_loss(ops, x, per_obs)
        sigma = spec.priors["sigma"].build("sigma")
        extra = {k: spec.priors[k].build(k) for k in spec.likelihood.extra}
        spec.likelihood.observe("log_loss", mu, sigma, extra, y, dims="obs")
    return model
