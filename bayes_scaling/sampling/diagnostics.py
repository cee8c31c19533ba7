"""Convergence diagnostics, checked after every fit and reported loudly.

Thresholds follow Vehtari et al. (2021, "Rank-normalization, folding, and localization"):
R-hat ≤ 1.01, bulk and tail ESS ≥ 100 per chain; plus no divergent transitions and no
trajectory cut short by the maximum tree depth.  Every problem comes with what to try.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_scaling.errors import BayesScalingError

__all__ = ['Diagnostics', 'check_sampling', 'SamplingWarning', 'SamplingError', 'RHAT_MAX', 'ESS_PER_CHAIN']

log = logging.getLogger(__name__)

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


class SamplingWarning(UserWarning):
    """The sampler reported a problem; the fit may not be trustworthy."""


class SamplingError(BayesScalingError):
    """A strict fit whose diagnostics failed."""


@dataclass
class Diagnostics:
    """Convergence summary of one fit.

    Parameters
    ----------
    rhat_max
        Largest R-hat.
    ess_bulk_min
        Smallest bulk ESS.
    ess_tail_min
        Smallest tail ESS.
    divergences
        Divergent transitions.
    treedepth_hits
        Draws at the maximum tree depth.
    draws
        Number of draws.
    chains
        Chains.
    problems
        What failed.
    per_param
        Per-parameter values.
    """

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    treedepth_hits: int
    draws: int
    chains: int
    problems: list[str] = field(default_factory=list)
    per_param: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"ok": self.ok, "rhat_max": self.rhat_max, "ess_bulk_min": self.ess_bulk_min,
                "ess_tail_min": self.ess_tail_min, "divergences": self.divergences,
                "treedepth_hits": self.treedepth_hits, "draws": self.draws, "chains": self.chains,
                "problems": list(self.problems)}

    def __str__(self) -> str:
        head = (f"R-hat max {self.rhat_max:.4f}, ESS bulk min {self.ess_bulk_min:.0f}, "
                f"ESS tail min {self.ess_tail_min:.0f}, divergences {self.divergences}, "
                f"max tree depth hits {self.treedepth_hits}")
        return head if self.ok else head + "\n  " + "\n  ".join(self.problems)


def _stat(sample_stats, *names: str) -> np.ndarray | None:
    for name in names:
        if sample_stats is not None and name in sample_stats:
            return np.asarray(sample_stats[name])
    return None


def check_sampling(tree, var_names: list[str], *, strict: bool = False, label: str = "fit") -> Diagnostics:
    """Compute diagnostics for ``var_names`` of a DataTree; warn (or raise if ``strict``) on any problem.

    Parameters
    ----------
    tree
        A DataTree with posterior and sample_stats.
    var_names
        Variables checked.
    strict
        Raise instead of warning.
    label
        Named in messages.

    Returns
    -------
    Diagnostics
    """
    from arviz_stats import ess
    from arviz_stats import rhat as rank_rhat

    post = tree["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    rhat = rank_rhat(post, var_names=var_names)
    ess_bulk = ess(post, var_names=var_names, method="bulk")
    ess_tail = ess(post, var_names=var_names, method="tail")
    per_param: dict[str, dict[str, float]] = {}
    for name in var_names:
        r, b, t = (np.atleast_1d(np.asarray(d[name])) for d in (rhat, ess_bulk, ess_tail))
        per_param[name] = {"r_hat": float(np.nanmax(r)) if chains > 1 else float("nan"),
                           "ess_bulk": float(np.nanmin(b)), "ess_tail": float(np.nanmin(t))}
        if r.size > 1:  # one value per group: keep each (the summary shows them), the worst above
            per_param[name] |= {"r_hat_each": [float(x) if chains > 1 else float("nan") for x in r.ravel()],
                                "ess_bulk_each": [float(x) for x in b.ravel()],
                                "ess_tail_each": [float(x) for x in t.ravel()]}
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    diverging = _stat(stats, "diverging")
    depth_hits = _stat(stats, "maxdepth_reached", "reached_max_treedepth")
    diag = Diagnostics(
        rhat_max=max((v["r_hat"] for v in per_param.values() if np.isfinite(v["r_hat"])), default=float("nan")),
        ess_bulk_min=min(v["ess_bulk"] for v in per_param.values()),
        ess_tail_min=min(v["ess_tail"] for v in per_param.values()),
        divergences=int(diverging.sum()) if diverging is not None else 0,
        treedepth_hits=int(depth_hits.sum()) if depth_hits is not None else 0,
        draws=draws, chains=chains, per_param=per_param)

    ess_needed = ESS_PER_CHAIN * chains
    bad_rhat = [n for n, v in per_param.items() if v["r_hat"] > RHAT_MAX]
    if bad_rhat:
        diag.problems.append(
            f"R-hat above {RHAT_MAX} for {', '.join(bad_rhat)} (max {diag.rhat_max:.3f}): chains disagree. "
            f"Try more tuning steps (tune), more draws, or more informative priors.")
    if chains == 1:
        diag.problems.append("a single chain cannot show non-convergence (R-hat needs several): use chains ≥ 2")
    low_bulk = [n for n, v in per_param.items() if v["ess_bulk"] < ess_needed]
    if low_bulk:
        diag.problems.append(
            f"bulk ESS below {ess_needed} ({ESS_PER_CHAIN} per chain) for {', '.join(low_bulk)} "
            f"(min {diag.ess_bulk_min:.0f}): posterior means are imprecise. Draw more (draws).")
    low_tail = [n for n, v in per_param.items() if v["ess_tail"] < ess_needed]
    if low_tail:
        diag.problems.append(
            f"tail ESS below {ess_needed} for {', '.join(low_tail)} (min {diag.ess_tail_min:.0f}): "
            f"interval ends are imprecise. Draw more (draws).")
    if diag.divergences:
        diag.problems.append(
            f"{diag.divergences} divergent transitions: the sampler missed part of the posterior. "
            f"Raise target_accept (e.g. 0.95), tighten weakly identified priors, or simplify the law.")
    if diag.treedepth_hits:
        diag.problems.append(
            f"{diag.treedepth_hits} draws hit the maximum tree depth: the posterior is badly scaled or "
            f"very correlated. Check that the law is identified by the data; consider informative priors.")

    if diag.problems:
        message = f"{label}: sampling problems:\n  " + "\n  ".join(diag.problems)
        if strict:
            raise SamplingError(message)
        warnings.warn(message, SamplingWarning, stacklevel=3)
    else:
        log.info("%s: diagnostics ok (%s)", label, diag)
    return diag
