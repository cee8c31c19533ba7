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

Runs and prior hyperparameters enter the model as data (``pm.Data``, see
:func:`model_data`), and every prior is sampled through a standardized variable whose
distribution and starting point do not depend on them (:meth:`Prior.build_standardized`).
So one compiled model serves every dataset, cut and seed with the same *structure*
(:func:`structure_key`: law, likelihood, pooling, number of groups, prior families), and
a fit with other data gives bit-identical draws whether it compiled or reused a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.ops import pytensor_ops
from bayes_scaling.model.likelihoods import Likelihood
from bayes_scaling.options import POOLING
from bayes_scaling.priors import DataStats, Prior

__all__ = ['ModelSpec', 'build_model', 'model_data', 'structure_key', 'POOLING', 'log_inputs']

# Scale of the half-normal prior on the between-group spread of log exponents: groups'
# exponents typically differ by tens of percent, not by factors.
POOLING_TAU = Prior("HalfNormal", sigma=0.3)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines the model, apart from the data values.

    Parameters
    ----------
    law
        The law.
    likelihood
        The likelihood.
    priors
        Resolved priors.
    pooling
        ``"shared"``, ``"partial"`` or ``"separate"`` exponents.
    groups
        The groups of the runs.
    stats
        What defaults were scaled to.
    """

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
        """Names of the noise parameters.

        Returns
        -------
        tuple of str
        """
        return ("sigma", *self.likelihood.extra)


def log_inputs(law: ScalingLaw, runs: RunTable) -> dict[str, np.ndarray]:
    """log of every input the law needs, with a clear error when a column is missing.

    Parameters
    ----------
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).

    Returns
    -------
    dict of str to numpy.ndarray
    """
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


def model_data(spec: ModelSpec, runs: RunTable) -> dict[str, np.ndarray]:
    """Every value the model takes as data, by the name of its ``pm.Data`` variable.

    Few, large inputs compile faster than many small ones (measured: the Chinchilla model's
    nutpie compile took 16 s with one scalar per hyperparameter, 7.6 s with them in one
    vector), so the log inputs are one matrix and all scalars one vector.

    Parameters
    ----------
    spec
        A :class:`~bayes_scaling.model.pymc_model.ModelSpec`.
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).

    Returns
    -------
    dict of str to numpy.ndarray
    """
    logs = log_inputs(spec.law, runs)
    data = {"log_inputs": np.vstack([logs[k] for k in spec.law.inputs]),
            "log_loss_observed": np.log(runs.loss),
            "scalars": np.array([value for _, value in _scalar_slots(spec)], dtype=float)}
    if spec.grouped:
        data["group_index"] = group_index(runs, spec.groups)
    return data


def _scalar_slots(spec: ModelSpec) -> list[tuple[tuple[str, ...], float]]:
    """((what,), value) of every scalar the model takes as data: centres, prior locations/scales."""
    slots = [(("centre", k), float(spec.stats.centre[k])) for k in spec.law.inputs]
    slots += [(("prior", name, param), value) for name, prior in sorted(spec.priors.items())
              for param, value in prior.data_params().items()]
    return slots


def structure_key(spec: ModelSpec) -> str:
    """What a compiled model is specialised to; equal keys can share one compiled model.

    Parameters
    ----------
    spec
        A :class:`~bayes_scaling.model.pymc_model.ModelSpec`.

    Returns
    -------
    str
    """
    law = spec.law
    parts = {"law": [law.name, type(law).__module__, type(law).__qualname__],
             "likelihood": [spec.likelihood.name, spec.likelihood.options()],
             "pooling": spec.pooling if spec.grouped else "shared", "groups": len(spec.groups),
             "priors": {name: prior.structure() for name, prior in sorted(spec.priors.items())}}
    return json.dumps(parts, sort_keys=True, default=str)


def build_model(spec: ModelSpec, runs: RunTable):
    """The PyMC model; natural parameters are Deterministics with the names users know.

    Groups are indexed 0…G−1 in the model (``group`` coordinates are relabelled after sampling),
    so that the compiled model does not depend on their names either.

    Parameters
    ----------
    spec
        A :class:`~bayes_scaling.model.pymc_model.ModelSpec`.
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).

    Returns
    -------
    pymc.Model
    """
    import pymc as pm

    law, ops = spec.law, pytensor_ops()
    values_in = model_data(spec, runs)
    coords = {"group": list(range(len(spec.groups)))} if spec.grouped else {}
    exponents = {s.name for s in law.sampled if s.exponent}

    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values_in.items()}
        x = {k: data["log_inputs"][i] for i, k in enumerate(law.inputs)}
        slot = {what: data["scalars"][i] for i, (what, _) in enumerate(_scalar_slots(spec))}
        centre = {k: slot[("centre", k)] for k in law.inputs}

        def prior_rv(name: str, prior_name: str, **kwargs):
            prior = spec.priors[prior_name]
            hyper = {p: slot[("prior", prior_name, p)] for p in prior.data_params()}
            return prior.build_standardized(name, hyper, **kwargs)

        values: dict[str, Any] = {}
        if law.coordinates is not None and not spec.grouped:  # a ridge: straighter coordinates, same priors
            def log_prior(name: str, log_value):
                prior = spec.priors[name]
                return prior.log_density_of_log(log_value, {p: slot[("prior", name, p)] for p in prior.data_params()})

            centres = {name: slot[("prior", name, "mu")] if spec.priors[name].dist == "LogNormal" else 0.0
                       for name in law.coordinates.names}
            values.update(law.coordinates.build(centres, log_prior))
        for sampled in law.sampled:
            name, prior = sampled.name, spec.priors[sampled.name]
            if name in values:
                continue
            if not spec.grouped or (name in exponents and spec.pooling == "shared"):
                values[name] = prior_rv(name, name)
            elif name in exponents and spec.pooling == "partial":
                pop = prior_rv(f"{name}_pop", name)
                tau = POOLING_TAU.build(f"{name}_tau")
                z = pm.Normal(f"{name}_z", 0.0, 1.0, dims="group")
                value = pop * pm.math.exp(tau * z) if prior.positive else pop + tau * z
                values[name] = pm.Deterministic(name, value, dims="group")
            else:
                values[name] = prior_rv(name, name, dims="group")

        natural = law.natural(ops, values, centre)
        for pname, value in natural.items():
            if pname not in model.named_vars:
                pm.Deterministic(pname, value, dims="group" if getattr(value, "ndim", 0) == 1 else None)

        idx = data.get("group_index")
        per_obs = {k: (v[idx] if getattr(v, "ndim", 0) == 1 else v) for k, v in natural.items()}
        mu = law.log_loss(ops, x, per_obs)
        sigma = prior_rv("sigma", "sigma")
        extra = {k: prior_rv(k, k) for k in spec.likelihood.extra}
        spec.likelihood.observe("log_loss", mu, sigma, extra, data["log_loss_observed"])
    return model


def raw_initial_points(spec: ModelSpec, values: dict[str, float]) -> dict[str, float]:
    """Initial values of the model's free variables from values of the law's sampled quantities."""
    out = {}
    for name, value in values.items():
        suffix, raw = spec.priors[name].to_raw(value)
        out[name + suffix] = raw
    return out
