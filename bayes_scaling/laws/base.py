"""Scaling laws, each written once.

A law's formula (:meth:`ScalingLaw.log_terms`: the law as a sum of positive terms, each
by its log) is written against a small namespace of
array operations (:class:`Ops`), so the *same* expression builds the PyTensor graph the
sampler differentiates and evaluates vectorized numpy over thousands of posterior draws.

Every law works in log space (log loss from log inputs), and is sampled in a
*centred* parametrization: amplitudes are replaced by the loss a term contributes at
the centre of the data (the geometric mean of N, D or C).  Amplitude and exponent are
then nearly uncorrelated in the posterior, which is what makes NUTS fast; the
parameters users know (E, A, B, α, β …) are recovered by :meth:`ScalingLaw.natural`.

"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_scaling.laws.coordinates import StickBreakingSlopes
from bayes_scaling.laws.ops import NUMPY, Ops
from bayes_scaling.priors import DataStats, Prior

__all__ = ['Param', 'ScalingLaw']


@dataclass(frozen=True)
class Param:
    """A parameter users know, as reported in summaries (natural units).

    Parameters
    ----------
    name
        Its name.
    description
        What it is.
    positive
        Whether it is positive.
    """

    name: str
    description: str
    positive: bool = True


@dataclass(frozen=True)
class Sampled:
    """A quantity the sampler works with, and its data-scaled default prior."""

    name: str
    description: str
    exponent: bool = False  # exponents are what pooling across groups acts on
    positive: bool = True  # its prior must put no mass at or below zero


LOG6 = math.log(6.0)


class ScalingLaw(ABC):
    """A functional form L(inputs; params).

    Subclasses define the formula once in :meth:`log_loss`, the centred
    reparametrization in :meth:`natural`, default priors in :meth:`default_priors`,
    and (where one exists in closed form) the compute-optimal allocation.
    """

    name: str
    title: str
    formula: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    sampled: tuple[Sampled, ...]
    citation: tuple[str, ...] = ()
    #: Sampler coordinates that straighten a ridge of the posterior (same priors, same model;
    #: :mod:`bayes_scaling.laws.coordinates`); None samples each quantity in its own log coordinates.
    coordinates: StickBreakingSlopes | None = None
    #: Whether the posterior has separated modes that NUTS chains started at random get stuck
    #: in; such laws start their chains at a multi-start optimum (see ``fit``).
    multimodal: bool = False

    # ---------------------------------------------------------------- the formula
    @abstractmethod
    def log_terms(self, ops: Ops, x: Mapping[str, Any], p: Mapping[str, Any]) -> list[Any]:
        """The law as a sum of positive terms, each given by its log: L = Σ exp(term).

        ``x`` holds log inputs (``x["N"] = log N`` …), ``p`` the natural parameters.  This
        is the one place each formula is written.

        Parameters
        ----------
        ops
            The array operations (:data:`~bayes_scaling.laws.ops.NUMPY` or :func:`~bayes_scaling.laws.ops.pytensor_ops`).
        x
            Log inputs by name (``N``, ``D``, ``C`` …).
        p
            Natural parameters by name.

        Returns
        -------
        list
            The log of each term.
        """

    def log_loss(self, ops: Ops, x: Mapping[str, Any], p: Mapping[str, Any]) -> Any:
        """log L: the log-sum-exp of :meth:`log_terms` (stable in PyTensor and numpy).

        Parameters
        ----------
        ops
            The array operations (:data:`~bayes_scaling.laws.ops.NUMPY` or :func:`~bayes_scaling.laws.ops.pytensor_ops`).
        x
            Log inputs by name (``N``, ``D``, ``C`` …).
        p
            Natural parameters by name.

        Returns
        -------
        array
        """
        terms = self.log_terms(ops, x, p)
        out = terms[0]
        for term in terms[1:]:
            out = ops.logaddexp(out, term)
        return out

    def loss_values(self, x: Mapping[str, Any], p: Mapping[str, Any]) -> np.ndarray:
        """L itself in numpy, as Σ exp(term): the same terms, about 2.5× faster than exp(log_loss).

        Parameters
        ----------
        x
            Log inputs by name (``N``, ``D``, ``C`` …).
        p
            Natural parameters by name.

        Returns
        -------
        numpy.ndarray
        """
        terms = sorted(self.log_terms(NUMPY, x, p), key=np.size, reverse=True)
        shape = np.broadcast_shapes(*(np.shape(t) for t in terms))
        out = np.exp(terms[0])
        for term in terms[1:]:
            if out.shape == shape:
                out += np.exp(term)  # in place: no temporary of the full size
            else:
                out = out + np.exp(term)
        return out

    @abstractmethod
    def natural(self, ops: Ops, s: Mapping[str, Any], centre: Mapping[str, float]) -> dict[str, Any]:
        """Natural parameters from sampled ones; ``centre[k]`` is the mean of log input ``k``.

        Parameters
        ----------
        ops
            The array operations (:data:`~bayes_scaling.laws.ops.NUMPY` or :func:`~bayes_scaling.laws.ops.pytensor_ops`).
        s
            Sampled quantities by name.
        centre
            The mean of each log input of the fitted runs.

        Returns
        -------
        dict
        """

    @abstractmethod
    def default_priors(self, stats: DataStats) -> dict[str, Prior]:
        """Weakly informative priors on the sampled quantities, scaled to the data.

        Parameters
        ----------
        stats
            The data statistics priors are scaled to.

        Returns
        -------
        dict of str to Prior
        """

    def literature_priors(self, stats: DataStats, published: Mapping[str, float]) -> dict[str, Prior]:
        """Priors centred on published values (override where a law has them).

        Parameters
        ----------
        stats
            The data statistics priors are scaled to.
        published
            Published parameter values by name.

        Returns
        -------
        dict of str to Prior
        """
        return {}

    # ---------------------------------------------------------------- conveniences
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def sampled_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sampled)

    @property
    def n_params(self) -> int:
        return len(self.params)

    def loss(self, inputs: Mapping[str, Any], params: Mapping[str, Any]) -> np.ndarray:
        """Expected loss (numpy) at raw inputs (``{"N": …, "D": …}``), broadcasting over params.

        Parameters
        ----------
        inputs
            Raw inputs by name (``{"N": …, "D": …}``).
        params
            Natural parameters by name (arrays broadcast).

        Returns
        -------
        numpy.ndarray
        """
        x = {k: np.log(np.asarray(inputs[k], dtype=float)) for k in self.inputs}
        return self.loss_values(x, params)

    def compute_optimal(self, C: Any, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """(N*, D*) minimizing loss at fixed ``C = 6·N·D``, in closed form; ``None`` if none.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        p
            Natural parameters by name.

        Returns
        -------
        tuple or None
            (N*, D*).
        """
        return None

    @property
    def has_allocation(self) -> bool:
        """Whether the law has a closed-form compute-optimal allocation."""
        probe = {k: np.ones(1) for k in self.param_names}
        return {"N", "D"} <= set(self.inputs) and self.compute_optimal(np.ones(1), probe) is not None

    def __repr__(self) -> str:
        return f"<law {self.name}: {self.formula}>"


def _lognormal(median: float, sigma: float) -> Prior:
    return Prior("LogNormal", mu=float(math.log(median)), sigma=float(sigma))


def _irreducible_prior(stats: DataStats) -> Prior:
    # E is below the smallest observed loss up to noise: centre it at 0.6 × min loss with a
    # factor-2.7 spread (95% between 0.23 and 1.6 times the smallest loss).
    return _lognormal(0.6 * stats.loss_min, 0.5)


def _term_prior(stats: DataStats) -> Prior:
    # The loss one reducible term contributes at the data's centre: a quarter of the typical
    # loss, within a factor e either way at one sigma.
    return _lognormal(0.25 * stats.loss_mid, 1.0)

