"""A model specification from runs, a law and a likelihood: priors resolved (data-scaled defaults
<- published fits <- user overrides); the prior predictive check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.laws.registry import get_law
from bayes_scaling.model.likelihoods import Likelihood, get_likelihood
from bayes_scaling.model.pymc_model import (
    ModelSpec,
    log_inputs,
)
from bayes_scaling.priors import DataStats, resolve_priors

# Which rows of the published-fits dataset inform which law's literature priors.
_LITERATURE_SOURCES = {
    "chinchilla": ("chinchilla", "Hoffmann et al. 2022 Approach 3"),
    "kaplan-n": ("kaplan-n", "Kaplan et al. 2020"),
    "kaplan-d": ("kaplan-d", "Kaplan et al. 2020"),
    "data-constrained": ("data-constrained", "Muennighoff et al. 2023"),
}


def literature_values(law: ScalingLaw) -> dict[str, float]:
    """Published parameter values for ``law`` from the ``published-fits`` dataset ({} if none).

    Parameters
    ----------
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.

    Returns
    -------
    dict of str to float
    """
    if law.name not in _LITERATURE_SOURCES:
        return {}
    from bayes_scaling.data.datasets import load_dataset

    table = load_dataset("published-fits")
    law_key, source = _LITERATURE_SOURCES[law.name]
    rows = table[(table["law"] == law_key) & (table["source"] == source)]
    return {str(r.parameter): float(r.value) for r in rows.itertuples()}


def model_spec(runs: RunTable, law: ScalingLaw, likelihood: Likelihood, *, priors: Mapping[str, Any] | None = None,
               prior_set: str = "default", pooling: str = "shared", groups: tuple[str, ...] = ()) -> ModelSpec:
    """Resolve the priors (data-scaled defaults ← literature ← overrides) into a model specification.

    Parameters
    ----------
    runs
        The training runs (a :class:`~bayes_scaling.data.runs.RunTable`).
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    priors
        Priors by sampled-parameter name.
    prior_set
        ``"default"`` or ``"literature"``.
    pooling
        ``"shared"``, ``"partial"`` or ``"separate"`` exponents.
    groups
        The groups of the runs.

    Returns
    -------
    ModelSpec
    """
    if prior_set not in ("default", "literature"):
        raise InputError(f"prior_set must be 'default' or 'literature', not {prior_set!r}")
    stats = DataStats.from_runs(runs)
    defaults = {**law.default_priors(stats), "sigma": likelihood.noise_prior(), **likelihood.extra}
    base = {}
    if prior_set == "literature":
        base = law.literature_priors(stats, literature_values(law))
        if not base:
            raise InputError(f"no published fit informs law {law.name!r}; use prior_set='default'")
    positive = {s.name for s in law.sampled if s.positive} | {"sigma", *likelihood.extra}
    resolved = resolve_priors(defaults, base=base, overrides=priors, positive=positive)
    return ModelSpec(law, likelihood, resolved, pooling, groups, stats)


def prior_predictive(runs: Any, *, law: str | ScalingLaw = "chinchilla", likelihood: str | Likelihood = "student-t",
                     priors: Mapping[str, Any] | None = None, prior_set: str = "default", draws: int = 500,
                     seed: int = 0) -> dict[str, Any]:
    """Prior predictive check: draws of the parameters and of replicated log losses at the runs.

    Sampled in numpy from the same priors and law the fit uses (one group; no compile).
    Returns ``params`` (natural parameters, each of shape (draws,)), ``log_mu`` and
    ``log_loss`` (shape (draws, runs)), and the resolved ``priors``.

    Parameters
    ----------
    runs
        Runs, a dataset name or a file.
    law
        A law name or :class:`~bayes_scaling.laws.base.ScalingLaw`.
    likelihood
        A likelihood name or object.
    priors
        Priors by sampled-parameter name.
    prior_set
        ``"default"`` or ``"literature"``.
    draws
        Number of draws.
    seed
        Random seed; the same seed gives the same result.

    Returns
    -------
    dict
        ``params``, ``log_mu``, ``log_loss``, ``priors``, ``runs``, ``law``.
    """
    from bayes_scaling.data.datasets import runs_from

    table = runs_from(runs)
    law_obj, lik = get_law(law), get_likelihood(likelihood)
    spec = model_spec(table, law_obj, lik, priors=priors, prior_set=prior_set)
    rng = np.random.default_rng([seed, 3])
    sampled = {name: spec.priors[name].sample(rng, draws) for name in law_obj.sampled_names}
    params = law_obj.natural(NUMPY, sampled, spec.stats.centre)
    x = {k: v[None, :] for k, v in log_inputs(law_obj, table).items()}
    with np.errstate(over="ignore", invalid="ignore"):
        log_mu = law_obj.log_loss(NUMPY, x, {k: np.asarray(v)[:, None] for k, v in params.items()})
        sigma = spec.priors["sigma"].sample(rng, draws)[:, None]
        extra = {k: spec.priors[k].sample(rng, draws)[:, None] for k in lik.extra}
        replicated = lik.draw(rng, log_mu, sigma, extra)
    return {"params": params, "log_mu": log_mu, "log_loss": replicated, "priors": spec.priors, "runs": table,
            "law": law_obj}

