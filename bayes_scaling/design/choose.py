"""Which runs next: the candidate runs that shrink a forecast's interval most per FLOP, chosen
greedily under a compute budget, from a fit's posterior (:mod:`bayes_scaling.design.preposterior`).

Greedy batches: each step adds the affordable candidate with the largest expected reduction of the
interval's width per FLOP, given the runs chosen before it (their outcomes simulated jointly, from
the same posterior draw); a reduction that the outcomes' simulation cannot tell from zero (less
than two standard errors) does not count.  Since a ratio rule can spend the budget on cheap runs
and miss one large run worth more, the same greedy is also started from the single best run, and
the narrower of the two batches is kept (the classical guarantee for budgeted greedy choice).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.design.candidates import (
    candidate_grid,
    check_candidates,
    isoflop_row,
)
from bayes_scaling.design.preposterior import Preposterior, effective_sample_size
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import atomic_file
from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.options import DEFAULT_LEVEL, DESIGN_BAND
from bayes_scaling.options import DESIGN_MIN_OUTCOMES as MIN_OUTCOMES

log = logging.getLogger(__name__)

__all__ = ["QUANTITIES", "Design", "design_runs", "expected_width", "load_design"]

#: What a design can sharpen: the loss at the target's compute-optimal allocation, or N* there.
QUANTITIES = ("loss", "n_star")
#: A reduction counts when it exceeds this many standard errors of the outcomes' simulation.
NOISE_SE = 2.0
#: Runs farther than this from the forecast's compute-optimal N at their compute (decades of N) are
#: not chosen by default.
BAND = DESIGN_BAND
#: Effective sample sizes below this make an expected width uncertain: it is said in the result.
LOW_ESS = 50.0
#: Bytes of cached log likelihoods (candidates × outcomes × draws) kept between greedy steps.
_CACHE_BYTES = 256 * 2**20
#: The format of a saved design.
FORMAT = "bayes_scaling.design/1"


@dataclass
class Design:
    """Runs chosen to sharpen a forecast, with the widths expected after each.

    Parameters
    ----------
    target_compute
        The budget whose forecast is sharpened (FLOP).
    budget
        The compute there was to spend (FLOP).
    quantity
        ``"loss"`` or ``"n_star"``.
    level
        The credible level of the widths.
    before
        The forecast now: ``median``, ``lower``, ``upper`` and ``width`` (a fraction of the median)
        of the chosen quantity, and the median ``N`` and ``D`` of the compute-optimal allocation.
    chosen
        One row per chosen run in the order chosen: ``rank``, ``N``, ``D``, ``C``, ``spent``
        (cumulative FLOP), ``expected_width`` (after this run and those before it), its standard
        error, ``reduction`` (a fraction of the width now), ``decades_to_target``, ``ess``, and
        the other quantity's expected width.
    candidates
        Every candidate: ``N``, ``D``, ``C``, ``offset`` (decades of N from the forecast's
        compute-optimal N at its compute), ``in_band``, ``affordable`` (it costs at most the budget),
        ``width_alone`` (the expected width if it were the only run added; NaN where it may not be
        chosen) and ``chosen`` (its rank, or 0).
    fitted
        The fit's runs (``N``, ``D``, ``C``), for figures.
    info
        How it was computed: draws, outcomes, the fit's largest run, which greedy start won.
    """

    target_compute: float
    budget: float
    quantity: str
    level: float
    before: dict[str, float]
    chosen: pd.DataFrame
    candidates: pd.DataFrame
    fitted: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def spent(self) -> float:
        """FLOP the chosen runs cost."""
        return float(self.chosen["C"].sum()) if len(self.chosen) else 0.0

    @property
    def width_after(self) -> float:
        """The expected width after every chosen run (the width now if none was chosen)."""
        return float(self.chosen["expected_width"].iloc[-1]) if len(self.chosen) else self.before["width"]

    def summary(self) -> str:
        """The design in one sentence.

        Returns
        -------
        str
        """
        what = "loss" if self.quantity == "loss" else "N*"
        if not len(self.chosen):
            return (f"no candidate run is expected to narrow the {self.level:.0%} interval of {what} at "
                    f"{self.target_compute:.3g} FLOP ({self.before['width']:.1%} of its median) within "
                    f"{self.budget:.3g} FLOP")
        return (f"{len(self.chosen)} run(s) costing {self.spent:.3g} FLOP ({self.spent / self.budget:.0%} of the "
                f"budget) are expected to narrow the {self.level:.0%} interval of {what} at "
                f"{self.target_compute:.3g} FLOP from {self.before['width']:.1%} to {self.width_after:.1%} of "
                f"its median")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings, the forecast now, the chosen runs and every candidate.

        Returns
        -------
        dict
        """
        return {"format": FORMAT, "target_compute": self.target_compute, "budget": self.budget,
                "quantity": self.quantity, "level": self.level, "before": self.before,
                "spent": self.spent, "expected_width_after": self.width_after, "summary": self.summary(),
                "chosen": _records(self.chosen), "candidates": _records(self.candidates),
                "fitted": _records(self.fitted), "info": self.info}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the design as JSON (atomically: a failed write leaves an earlier file as it was).

        Parameters
        ----------
        path
            The file.

        Returns
        -------
        pathlib.Path
        """
        path = Path(path)
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
        return path


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values, NaN as None (strict JSON)."""
    def plain(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def load_design(path: str | os.PathLike) -> Design:
    """A design written by :meth:`Design.save`.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Design
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such design file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a design file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a design file written by this version (format {FORMAT})")
    return Design(target_compute=data["target_compute"], budget=data["budget"], quantity=data["quantity"],
                  level=data["level"], before=data["before"], chosen=pd.DataFrame(data["chosen"]),
                  candidates=pd.DataFrame(data["candidates"]).astype({"width_alone": float}),
                  fitted=pd.DataFrame(data["fitted"]),
                  info=data["info"])


def design_runs(fit, *, target_compute: float, budget: float, candidates: pd.DataFrame | None = None,
                batch: int | None = None, quantity: str = "loss", band: float | None = BAND,
                level: float = DEFAULT_LEVEL, outcomes: int = 64, max_draws: int = 2000, seed: int = 0) -> Design:
    """Choose the runs, among ``candidates``, that are expected to narrow the forecast at
    ``target_compute`` the most per FLOP, spending at most ``budget``.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit` of a law of N and D, or a
        :class:`~bayes_scaling.forecast.forecaster.Forecaster` of one.
    target_compute
        The budget whose forecast should sharpen (FLOP).
    budget
        The compute the new runs may cost together (FLOP).
    candidates
        Candidate runs (columns ``N`` and ``D``, or one of them and ``C``); None: isoFLOP rows
        around the forecast optimum (:func:`~bayes_scaling.design.candidates.candidate_grid`).
    batch
        At most this many runs (None: as many as the budget allows and help).
    quantity
        ``"loss"`` (the expected loss at the compute-optimal allocation) or ``"n_star"``.
    band
        Only runs within this many decades of N of the forecast's median compute-optimal N at their
        own compute may be chosen (None: any).  The law is trusted far from the optimum only as far
        as its structural error was measured there, along the compute-optimal frontier.
    level
        Credible level of the widths.
    outcomes
        Simulated outcomes of the new runs per evaluation.
    max_draws
        Posterior draws used (thinned evenly).
    seed
        Seed of the outcomes' simulation.

    Returns
    -------
    Design
    """
    fc, c_ref = _forecaster(fit, quantity=quantity, max_draws=max_draws, seed=seed)
    for name, value in (("target_compute", target_compute), ("budget", budget)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number of FLOP, not {value!r}")
    if batch is not None and batch < 1:
        raise InputError(f"batch must be at least 1, not {batch}")
    if outcomes < MIN_OUTCOMES:
        raise InputError(f"outcomes must be at least {MIN_OUTCOMES}, not {outcomes}")
    if target_compute <= c_ref:
        raise InputError(f"the target {target_compute:.3g} FLOP is inside the data (the largest fitted run "
                         f"costs {c_ref:.3g}): a design sharpens a forecast beyond it")
    if band is not None and not (math.isfinite(band) and band > 0):
        raise InputError(f"band must be a positive number of decades, or None, not {band!r}")
    cands = (candidate_grid(fc, budget=budget, target_compute=target_compute,
                            half_width=band if band is not None else 0.6) if candidates is None
             else check_candidates(candidates))
    offset = np.log10(cands["N"].to_numpy(float) / np.median(fc.allocation(cands["C"].to_numpy(float))["N"], axis=0))
    in_band = np.abs(offset) <= band + 1e-9 if band is not None else np.ones(len(cands), dtype=bool)
    pres = _preposteriors(fc, cands, target_compute=target_compute, c_ref=c_ref, level=level, outcomes=outcomes,
                          seed=seed)
    other_name = "n_star" if quantity == "loss" else "loss"
    pre, other = pres[quantity], pres[other_name]
    # a candidate outside the band costs more than any budget: it is never chosen
    cost = np.where(in_band, cands["C"].to_numpy(float), np.inf)
    loglik = _Loglik(pre, len(cost))
    single, first, alone = _single_widths(pre, loglik, cost, budget)
    runs = [_greedy(pre, loglik, cost, budget, batch, start=None, first_step=alone)]
    if first is not None:
        runs.append(_greedy(pre, loglik, cost, budget, batch, start=first))
    best = min(runs, key=lambda r: (r["width"], r["spent"]))
    before = _forecast_now(pre)
    chosen = _chosen_table(pre, loglik, other, other_name, cands, best["steps"], before=before["width"])
    table = cands[["N", "D", "C"]].copy()
    table["offset"] = offset
    table["in_band"] = in_band
    table["affordable"] = cands["C"].to_numpy(float) <= budget
    table["width_alone"] = single
    table["chosen"] = 0
    for rank, j in enumerate(best["steps"], start=1):
        table.loc[table.index[j], "chosen"] = rank
    alloc = fc.allocation(target_compute)
    before.update(N=float(np.median(alloc["N"])), D=float(np.median(alloc["D"])))
    fitted = pd.DataFrame({"N": fc.fit.runs.N, "D": fc.fit.runs.D, "C": fc.fit.runs.C})
    info = {"draws": pre.n_draws, "outcomes": pre.n_outcomes, "c_ref": c_ref, "seed": seed,
            "start": "the single best run" if best is not runs[0] else "the best reduction per FLOP",
            "band": band,
            "structural_error": fc.structural is not None, "law": fc.law.name}
    row = isoflop_row(fc, budget=budget)
    info["isoflop_row"] = {"runs": len(row), "C_each": float(row["C"].iloc[0]),
                           **expected_width(fc, row, target_compute=target_compute, quantity=quantity, level=level,
                                            outcomes=outcomes, seed=seed)}
    if len(chosen) and chosen["ess"].min() < LOW_ESS:
        info["warning"] = (f"the reweighted posterior rests on {chosen['ess'].min():.0f} effective draws: the "
                           f"expected widths are rough; refit with the chosen runs to check")
        log.warning(info["warning"])
    return Design(target_compute=float(target_compute), budget=float(budget), quantity=quantity, level=level,
                  before=before, chosen=chosen, candidates=table, fitted=fitted, info=info)


def expected_width(fit, runs: pd.DataFrame, *, target_compute: float, quantity: str = "loss",
                   level: float = DEFAULT_LEVEL, outcomes: int = 64, max_draws: int = 2000,
                   seed: int = 0) -> dict[str, float]:
    """The width a forecast is expected to have after training all of ``runs`` (a plan made by
    hand, an isoFLOP row), on the same terms as :func:`design_runs`.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit` or a
        :class:`~bayes_scaling.forecast.forecaster.Forecaster`.
    runs
        The planned runs (columns ``N`` and ``D``, or one of them and ``C``).
    target_compute
        The budget whose forecast they should sharpen (FLOP).
    quantity
        ``"loss"`` or ``"n_star"``.
    level
        Credible level of the widths.
    outcomes
        Simulated outcomes of the runs.
    max_draws
        Posterior draws used.
    seed
        Seed of the outcomes' simulation.

    Returns
    -------
    dict
        ``before`` and ``after`` (fractions of the median), ``se`` of ``after``, ``cost`` (FLOP),
        ``decades_to_target`` and ``ess``.
    """
    fc, c_ref = _forecaster(fit, quantity=quantity, max_draws=max_draws, seed=seed)
    plan = check_candidates(runs)
    pre = _preposteriors(fc, plan, target_compute=target_compute, c_ref=c_ref, level=level, outcomes=outcomes,
                         seed=seed)[quantity]
    log_w = pre.start()
    for j in range(len(plan)):
        log_w = log_w + pre.loglik(j)
    c_top = max(c_ref, float(plan["C"].max()))
    after = pre.widths(log_w, c_top)
    return {"before": _forecast_now(pre)["width"], "after": float(after.mean()),
            "se": float(after.std(ddof=1) / math.sqrt(len(after))), "cost": float(plan["C"].sum()),
            "decades_to_target": pre.distance(c_top), "ess": float(effective_sample_size(log_w).mean())}


def _forecaster(fit, *, quantity: str, max_draws: int, seed: int):
    """The fit's Forecaster (a Forecaster as given) and the largest fitted run's compute, after the
    checks a design needs: a known quantity, a law of N and D."""
    from bayes_scaling.forecast.forecaster import Forecaster

    if quantity not in QUANTITIES:
        raise InputError(f"quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}")
    fc = fit if isinstance(fit, Forecaster) else Forecaster(fit, max_draws=max_draws, seed=seed)
    if not {"N", "D"} <= set(fc.law.inputs):
        raise InputError(f"law {fc.law.name!r} depends on {', '.join(fc.law.inputs)} only: a design chooses "
                         f"runs by N and D and needs a law of both (chinchilla, kaplan-nd, data-constrained)")
    return fc, fc.reference_compute


def _preposteriors(fc, cands: pd.DataFrame, *, target_compute: float, c_ref: float, level: float, outcomes: int,
                   seed: int) -> dict[str, Preposterior]:
    """The loss's and N*'s pre-posteriors over the same simulated outcomes."""
    n, d = cands["N"].to_numpy(float), cands["D"].to_numpy(float)
    rng = np.random.default_rng([seed, 41])
    with np.errstate(divide="ignore"):  # a heavy-tailed draw may be 0 or infinite: replaced below
        predictive = np.log(fc.loss(N=n, D=d, predictive=True))
    sources = rng.choice(fc.n_draws, size=min(outcomes, fc.n_draws), replace=False)
    y = predictive[sources]
    x = {"N": np.log(n)[None, :], "D": np.log(d)[None, :]}
    if "unique_tokens" in fc.law.inputs:
        x["unique_tokens"] = x["D"]
    sigma = fc.sigma[None, :]
    extra = {k: v[None, :] for k, v in fc.extra.items()}

    def density(yy, mu):
        return fc.likelihood.logpdf(yy, mu, sigma, extra)

    laws = {name: fc.law.log_loss(NUMPY, x, {k: v[:, None] for k, v in params.items()})
            for name, params in (("loss", fc.params), ("n_star", fc.allocation_params))}
    # a heavy-tailed new-run draw may be infinite: that outcome is the source draw's law instead
    y = np.where(np.isfinite(y), y, laws["loss"][sources])
    loss_now, _ = fc.loss_at_compute(target_compute)
    slopes = fc.drift_slopes
    law_part = np.log(loss_now[:, 0])
    if slopes is not None:
        law_part = law_part - fc.structural.drift(np.array([target_compute]), slopes)[:, 0]
    n_star = np.log(fc.allocation(target_compute)["N"][:, 0])
    common = {"c_ref": c_ref, "target_compute": float(target_compute), "outcomes": y, "log_density": density,
              "level": level, "seed": seed}
    return {"loss": Preposterior(target=law_part, slopes=slopes, law_log_loss=laws["loss"], **common),
            "n_star": Preposterior(target=n_star, slopes=None, law_log_loss=laws["n_star"], **common)}


def _forecast_now(pre: Preposterior) -> dict[str, float]:
    """The forecast before any new run, exact over the draws: median, interval, relative width."""
    values = pre.target + (pre.slopes * pre.distance(pre.c_ref) if pre.slopes is not None else 0.0)
    tail = (1.0 - pre.level) / 2.0
    lo, med, hi = np.exp(np.quantile(values, [tail, 0.5, 1.0 - tail]))
    return {"median": float(med), "lower": float(lo), "upper": float(hi), "width": float((hi - lo) / med)}


class _Loglik:
    """Candidates' log likelihoods under every draw, computed once where they fit in memory."""

    def __init__(self, pre: Preposterior, n_candidates: int):
        self.pre = pre
        self.keep = n_candidates * pre.n_outcomes * pre.n_draws * 8 <= _CACHE_BYTES
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, j: int) -> np.ndarray:
        if j in self.cache:
            return self.cache[j]
        value = self.pre.loglik(j)
        if self.keep:
            self.cache[j] = value
        return value


def _single_widths(pre: Preposterior, loglik: _Loglik, cost: np.ndarray,
                   budget: float) -> tuple[np.ndarray, int | None, dict[int, np.ndarray]]:
    """Each affordable candidate's expected width if it were the only new run (NaN otherwise), the
    one whose width is smallest where it beats the width now beyond the simulation's noise, and the
    per-outcome widths (the greedy's first step)."""
    now = pre.widths(pre.start(), pre.c_ref)
    mean = np.full(len(cost), np.nan)
    alone: dict[int, np.ndarray] = {}
    best, best_width = None, np.inf
    for j in np.flatnonzero(cost <= budget):
        j = int(j)
        alone[j] = after = pre.widths(pre.start() + loglik(j), max(pre.c_ref, cost[j]))
        mean[j] = after.mean()
        if _significant(now - after) and after.mean() < best_width:
            best, best_width = j, after.mean()
    return mean, best, alone


def _significant(gain: np.ndarray) -> bool:
    return gain.mean() > NOISE_SE * gain.std(ddof=1) / math.sqrt(len(gain))


def _greedy(pre: Preposterior, loglik: _Loglik, cost: np.ndarray, budget: float, batch: int | None, *,
            start: int | None, first_step: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """Runs added one at a time by expected width reduction per FLOP, optionally from ``start``;
    ``first_step``: the widths after each single run, already computed."""
    log_w, c_top, steps, spent = pre.start(), pre.c_ref, [], 0.0
    now = pre.widths(log_w, c_top)
    limit = batch if batch is not None else len(cost)
    while len(steps) < limit:
        free = [int(j) for j in np.flatnonzero(cost <= budget - spent) if j not in steps]
        if start is not None and not steps:
            free = [start]
        best, best_ratio, best_after = None, -np.inf, None
        for j in free:
            if not steps and first_step is not None:
                after = first_step[j]
            else:
                after = pre.widths(log_w + loglik(j), max(c_top, cost[j]))
            gain = now - after
            if not _significant(gain):
                continue
            ratio = gain.mean() / cost[j]
            if ratio > best_ratio:
                best, best_ratio, best_after = j, ratio, after
        if best is None:
            break
        log_w = log_w + loglik(best)
        c_top = max(c_top, cost[best])
        steps.append(best)
        spent += cost[best]
        now = best_after
    return {"steps": steps, "width": float(now.mean()), "spent": spent}


def _chosen_table(pre: Preposterior, loglik: _Loglik, other: Preposterior, other_name: str, cands: pd.DataFrame,
                  steps: list[int], *, before: float) -> pd.DataFrame:
    """The chosen runs in order, with the expected widths of both quantities after each (each
    quantity's draws weighted by its own law: a frontier fit allocates by its every-run law)."""
    rows = []
    log_w, other_w, c_top, spent = pre.start(), other.start(), pre.c_ref, 0.0
    cost = cands["C"].to_numpy(float)
    name = f"expected_width_{other_name}"
    for rank, j in enumerate(steps, start=1):
        log_w = log_w + loglik(j)
        other_w = other_w + other.loglik(j)
        c_top = max(c_top, cost[j])
        spent += cost[j]
        after = pre.widths(log_w, c_top)
        rows.append({"rank": rank, "N": float(cands["N"].iloc[j]), "D": float(cands["D"].iloc[j]),
                     "C": float(cost[j]), "tokens_per_param": float(cands["D"].iloc[j] / cands["N"].iloc[j]),
                     "spent": spent, "expected_width": float(after.mean()),
                     "expected_width_se": float(after.std(ddof=1) / math.sqrt(len(after))),
                     "reduction": float(1.0 - after.mean() / before),
                     "decades_to_target": pre.distance(c_top),
                     "ess": float(effective_sample_size(log_w).mean()),
                     name: float(other.widths(other_w, c_top).mean())})
    columns = ["rank", "N", "D", "C", "tokens_per_param", "spent", "expected_width", "expected_width_se",
               "reduction", "decades_to_target", "ess", name]
    return pd.DataFrame(rows, columns=columns)
