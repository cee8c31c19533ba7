"""Sampler coordinates for laws whose posterior is a curved ridge: the same model, straighter.

A law ``L = E + T₁ + … + T_K`` whose terms decay as powers (``T_k = T_k,mid·(x_k/x_k,mid)^−a_k``)
is identified, over a narrow range of its inputs, by the loss at the data's centre and by each
term's slope there; the split of the centre's loss between E and a term is told only by the
curvature, which a range of one or two decades barely shows.  The posterior of E, T_k,mid and
a_k is then a long, curved ridge (on ``misfitting-final``, 11 model sizes over 1.3 decades:
correlations of −0.97 to 0.96 between log E, log A_mid and log α).  NUTS chains in the
log coordinates of those quantities disagreed there (R-hat 1.02–1.11, up to 41 divergences).

:class:`StickBreakingSlopes` samples instead

* ``log L``: the loss at the centre, ``E + Σ T_k,mid``;
* ``z_k``: logits of a stick-breaking of L, ``T₁ = s₁·L``, ``T₂ = s₂·(1 − s₁)·L`` …, E the rest;
* ``log g_k``: each term's slope at the centre, ``g_k = a_k·T_k,mid``.

Along the ridge of the last-broken term only its logit moves, so the ridge is a straight line.
The priors stay those of E, T_k,mid and a_k: the map from these coordinates to
(log E, log T_k,mid, log a_k) has Jacobian determinant ±1 (checked numerically in the tests),
so the prior densities of those log values are the density of the coordinates, and the
posterior is exactly the one the plain coordinates target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ['StickBreakingSlopes']


@dataclass(frozen=True)
class StickBreakingSlopes:
    """Sample ``E + Σ terms`` as the centre's loss, stick-breaking shares and slopes.

    Parameters
    ----------
    irreducible
        Name of the sampled irreducible loss (``"E"``).
    terms
        ``(amplitude at the centre, exponent)`` sampled names of each term, broken off the
        stick in this order: put the term whose exponent the data identify least last (for
        the Chinchilla law, ``A_mid``/``alpha``: model sizes usually span the fewest decades).
    """

    irreducible: str
    terms: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The sampled quantities these coordinates replace."""
        return (self.irreducible, *(n for pair in self.terms for n in pair))

    def log_values(self, xp: Any, coords: Mapping[str, Any]) -> dict[str, Any]:
        """Log of each sampled quantity from the coordinates ``log_L``, ``z_k``, ``log_g_k``
        (``xp`` provides ``softplus``).

        Parameters
        ----------
        xp
            numpy or ``pytensor.tensor``.
        coords
            The coordinates by name.

        Returns
        -------
        dict
        """
        out, log_rest = {}, coords["log_L"]
        for k, (amplitude, exponent) in enumerate(self.terms):
            z = coords[f"z_{k}"]
            out[amplitude] = log_rest - xp.softplus(-z)  # log(s_k · rest)
            log_rest = log_rest - xp.softplus(z)  # log((1 − s_k) · rest)
            out[exponent] = coords[f"log_g_{k}"] - out[amplitude]
        out[self.irreducible] = log_rest
        return out

    def coordinates_at(self, xp: Any, log_values: Mapping[str, Any]) -> dict[str, Any]:
        """The inverse of :meth:`log_values` (``xp`` provides ``exp``, ``log`` and ``logaddexp``).

        Parameters
        ----------
        xp
            numpy or ``pytensor.tensor``.
        log_values
            Log sampled quantities.

        Returns
        -------
        dict
        """
        log_total = log_values[self.irreducible]
        for amplitude, _ in self.terms:
            log_total = xp.logaddexp(log_total, log_values[amplitude])
        out, log_rest = {"log_L": log_total}, log_total
        for k, (amplitude, exponent) in enumerate(self.terms):
            log_after = xp.log(xp.exp(log_rest) - xp.exp(log_values[amplitude]))
            out[f"z_{k}"] = log_values[amplitude] - log_after
            out[f"log_g_{k}"] = log_values[exponent] + log_values[amplitude]
            log_rest = log_after
        return out

    def build(self, centres: Mapping[str, Any], log_prior: Callable[[str, Any], Any]) -> dict[str, Any]:
        """The sampled quantities as PyMC Deterministics of these coordinates, inside a model.

        ``centres`` are the log prior medians of the sampled quantities (tensors; they shift the
        coordinates so that chains start near the prior's centre and a compiled model serves
        every dataset); ``log_prior(name, log_value)`` is the prior log density of a quantity's
        log.  Adds one Potential: the sum of those densities.

        Parameters
        ----------
        centres
            Prior centres.
        log_prior
            Log prior density of a quantity at a log value.

        Returns
        -------
        dict
        """
        import pymc as pm
        import pytensor.tensor as pt

        from bayes_scaling.laws.ops import pytensor_ops

        ops = pytensor_ops()
        start = self.coordinates_at(ops, centres)
        coords = {name: start[name] + pm.Flat(f"{name}_offset") for name in start}
        logs = self.log_values(ops, coords)
        pm.Potential("prior_" + "_".join(self.names), pt.sum(pt.stack([log_prior(n, logs[n]) for n in self.names])))
        return {name: pm.Deterministic(name, pt.exp(logs[name])) for name in self.names}
