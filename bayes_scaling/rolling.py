"""Rolling-origin back-tests: fit below a compute cut, forecast the runs above it.

This is how a forecast's honesty is measured here: a law fitted to the runs with
C ≤ cut predicts the runs beyond it, whose distance from the data is
d = log10(C_run / C_ref) decades, C_ref being the largest training budget.  The cuts are
chosen by extrapolation distance (:func:`extrapolation_cuts`), so that every split leaves
runs to fit and runs to score on any design (isoFLOP ladders included).

:func:`rolling_backtest` returns, for every held-out run, the law-only predictive draws of
its log loss (the fit's parameters and noise) and the summary the structural-error model
learns from: the error of the predictive median and the predictive spread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .diagnostics import SamplingWarning
from .errors import InputError
from .laws import get_law
from .runs import RunTable

__all__ = ["DISTANCES", "backtest_sampler", "training_window", "extrapolation_cuts", "HeldOut", "rolling_backtest", "internal_errors", "robust_sd"]

log = logging.getLogger(__name__)

#: Where the cuts go: C_max / 10^d for these d (decades); the held-out runs of a cut lie
#: between 0 and about d decades beyond its training data.
DISTANCES = (2.0, 1.5, 1.0, 0.75, 0.5, 0.25)


def robust_sd(draws: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half the central 68% range: the sd of a normal, and finite for heavy-tailed draws."""
    lo, hi = np.quantile(draws, [0.15865, 0.84135], axis=axis)
    return (hi - lo) / 2


#: A back-test keeps at most this many predictive draws of each held-out run (its median and
#: spread are what is learned from), and tunes its refits at most this long.
BACKTEST_DRAWS = 1000
BACKTEST_TUNE = 500


def backtest_sampler(*, draws: int, tune: int, chains: int) -> dict[str, int]:
    """Sampler settings of a fit's internal back-test refits: no more draws than a back-test keeps
    (:data:`BACKTEST_DRAWS` over all chains) and at most :data:`BACKTEST_TUNE` tuning steps.

    Measured on the six bundled real datasets (5 cuts each): the medians and spreads of the
    held-out forecasts moved from the full settings (4 × 1000 + 1000 tuning) by no more than a
    change of seed moves them (mean |Δ median| 0.04–0.09 of the spread, against 0.04–0.07), at
    less than half the time.
    """
    per_chain = -(-BACKTEST_DRAWS // max(int(chains), 1))
    return {"draws": min(int(draws), per_chain), "tune": min(int(tune), BACKTEST_TUNE), "chains": int(chains)}


def min_train_runs(law_name: str) -> int:
    """Runs a training split needs: enough to identify the law (3 per parameter, at least 10)."""
    return max(10, 3 * (get_law(law_name).n_params + 1))


def training_window(runs: RunTable, decades: float | None, *, min_runs: int) -> RunTable:
    """The runs within ``decades`` of compute below the largest budget, and at least the ``min_runs``
    largest (all runs when ``decades`` is None).

    A law that is not exactly true is bent by its smallest runs where the form misses them, and
    the forecast beyond the data inherits the bend.  Whether fitting near the frontier helps
    depends on the design: on the isoFLOP ladders (chinchilla, misfitting-final) it cut the
    back-tests' CRPS by 14-21%; on the Gadre over-training grids it doubled it
    (``benchmarks/bench_window.py``), hence an option, off by default.
    """
    if decades is None:
        return runs
    given = decades
    try:
        decades = float(decades)
    except (TypeError, ValueError):
        decades = float("nan")
    if not 0 < decades < float("inf"):
        raise InputError(f"the training window must be a positive number of decades, not {given!r}")
    log_c = np.log10(runs.C)
    keep = log_c >= log_c.max() - decades - 1e-12
    if keep.sum() < min_runs:
        keep = np.zeros(len(runs), dtype=bool)
        keep[np.argsort(-log_c, kind="stable")[:min_runs]] = True
    if keep.all():
        return runs
    log.info("%s: fitting the %d runs within %.3g decades of the largest budget (of %d; at least %d kept)",
             runs.source, keep.sum(), decades, len(runs), min_runs)
    return runs.subset(keep, label=f"largest {decades:g} decades")


def extrapolation_cuts(runs: RunTable, *, distances: Sequence[float] = DISTANCES, min_train: int = 10,
                       min_test: int = 2) -> list[float]:
    """Compute cuts whose held-out runs reach about ``distances`` decades beyond the training data.

    A cut at C_max / 10^d keeps the runs with C ≤ cut for fitting; splits that repeat another's
    training set, or leave fewer than ``min_train`` runs to fit or ``min_test`` to score, are
    skipped.  Raises :class:`InputError` when no split is possible.
    """
    compute = np.asarray(runs.C, dtype=float)
    log_c = np.log10(compute)
    top = log_c.max()
    cuts, seen = [], set()
    for d in sorted(distances, reverse=True):
        train = log_c <= top - d + 1e-12
        key = int(train.sum())
        if key in seen or key < min_train or (~train).sum() < min_test:
            continue
        seen.add(key)
        # the largest training budget itself, not 10 ** its log: that can come out an ulp below it
        # (9.720290944999975e18 for 9.720290945e18), and C <= cut then left its runs out of training
        cuts.append(float(compute[train].max()))
    if not cuts:
        raise InputError(f"{runs.source}: no compute cut leaves ≥ {min_train} runs to fit and ≥ {min_test} to "
                         f"score within {max(distances):g} decades (compute spans {np.ptp(log_c):.2f} decades)")
    return sorted(cuts)


@dataclass
class HeldOut:
    """One split of a rolling back-test: the runs beyond the cut and the law-only forecast of them."""

    cut: float
    c_ref: float
    n_train: int
    runs: RunTable
    log_draws: np.ndarray  # (draws, runs): law-only predictive draws of log loss
    diagnostics_ok: bool
    extra: dict[str, Any] = field(default_factory=dict)
    run_index: np.ndarray | None = None  # positions of the held-out runs in the back-tested table
    centre: np.ndarray | None = None  # (1, runs): the law of the fit's central draw (what ρ rescales about)

    def forecast(self, structural, rng: np.random.Generator) -> np.ndarray:
        """The law-only draws with a :class:`~bayes_scaling.discrepancy.StructuralError` of as many
        draws: rescaled by its ρ, shifted by its drift and scatter (as a fit's forecasts are)."""
        centre = self.centre if self.centre is not None else np.median(self.log_draws, axis=0, keepdims=True)
        return structural.forecast(self.log_draws, centre, self.runs.C, rng)

    @property
    def distance(self) -> np.ndarray:
        """Decades of compute beyond the training data, per held-out run."""
        return np.log10(self.runs.C / self.c_ref)

    @property
    def log_loss(self) -> np.ndarray:
        return np.log(self.runs.loss)

    def errors(self) -> pd.DataFrame:
        """Per held-out run: its position ``run`` in the back-tested table, distance d, error of the
        predictive median e = y − median, spread s."""
        median = np.median(self.log_draws, axis=0)
        run = self.run_index if self.run_index is not None else np.full(len(self.runs), -1)
        return pd.DataFrame({"cut": self.cut, "c_ref": self.c_ref, "n_train": self.n_train, "run": run, "C": self.runs.C,
                             "d": self.distance, "log_loss": self.log_loss, "median": median,
                             "error": self.log_loss - median, "spread": robust_sd(self.log_draws)})


#: Law-only refits kept in this process, by training runs, law, likelihood and settings.  Nested
#: back-tests refit the same training sets: each back-test fit of ``compare --backtest`` (and of
#: the calibration benchmark) runs back-tests of its own below its cut, and on chinchilla those
#: are 27 refits of 18 distinct training sets.  A fit is deterministic given its seed, so
#: reusing one changes no result.
_REFITS: OrderedDict[str, Any] = OrderedDict()
_MAX_REFITS = 32


def _law_only_fit(train: RunTable, *, law: str, likelihood: str, settings: dict[str, Any]):
    """``fit(train, law, likelihood, **settings)``, reused within this process when repeated."""
    from .fit import fit

    key = hashlib.sha256(json.dumps([train.fingerprint(), law, likelihood, settings], sort_keys=True,
                                    default=repr).encode()).hexdigest()
    if key in _REFITS:
        _REFITS.move_to_end(key)
        return _REFITS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # reported per split instead
        result = fit(train, law=law, likelihood=likelihood, **settings)
    _REFITS[key] = result
    if len(_REFITS) > _MAX_REFITS:
        _REFITS.popitem(last=False)
    return result


def rolling_backtest(runs: RunTable, *, law: str = "chinchilla", likelihood: str = "student-t",
                     cuts: Sequence[float] | None = None, settings: dict[str, Any] | None = None,
                     max_draws: int = 1000, progress: Callable[[str], None] | None = None) -> list[HeldOut]:
    """Fit ``law`` below each cut and forecast the runs above it (law only, no structural error).

    ``settings`` go to :func:`~bayes_scaling.fit.fit` (draws, tune, chains, seed …); the
    compiled model is reused across cuts, and a refit of training runs already fitted with the
    same settings in this process is reused.  Returns one :class:`HeldOut` per cut.
    """
    settings = {**(settings or {}), "discrepancy": "none"}  # the law alone: that is what is measured
    cuts = list(cuts) if cuts is not None else extrapolation_cuts(runs, min_train=min_train_runs(law))
    out = []
    for i, cut in enumerate(sorted(cuts)):
        train_mask = runs.C <= cut
        train = runs.subset(train_mask, label=f"C <= {cut:.3g}")
        test = runs.subset(~train_mask, label=f"C > {cut:.3g}")
        if len(test) == 0 or len(train) < min_train_runs(law):
            raise InputError(f"{runs.source}: the cut C <= {cut:.3g} leaves {len(train)} runs to fit and "
                             f"{len(test)} to score")
        result = _law_only_fit(train, law=law, likelihood=likelihood, settings=settings)
        draws = result.predictive_log_draws(test, seed=[int(settings.get("seed", 0)), i, 11])
        if draws.shape[0] > max_draws:
            draws = draws[np.linspace(0, draws.shape[0] - 1, max_draws).astype(int)]
        out.append(HeldOut(cut=float(cut), c_ref=float(train.C.max()), n_train=len(train), runs=test,
                           log_draws=draws, diagnostics_ok=result.diagnostics.ok, centre=result.central_log_mu(test),
                           run_index=np.flatnonzero(~train_mask)))
        if progress:
            progress(f"[{i + 1}/{len(cuts)}] {runs.source}: {law} below C = {cut:.3g} ({len(train)} runs), "
                     f"{len(test)} held out")
    return out


def internal_errors(runs: RunTable, *, law: str, likelihood: str, settings: dict[str, Any] | None = None,
                    cache_dir: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Errors of the law's back-tests *inside* ``runs`` (refits below its own cuts), one row per
    held-out run; None when the runs allow no cut (logged).  With ``cache_dir``, a table made
    earlier for the same runs, law, priors and settings is loaded instead (:mod:`bayes_scaling.cache`)."""
    from .cache import cached_backtest_errors

    settings = dict(settings or {})

    def compute() -> pd.DataFrame | None:
        try:
            cuts = extrapolation_cuts(runs, min_train=min_train_runs(law))
        except InputError as exc:
            log.warning("structural error: no internal back-test possible (%s); using the population alone", exc)
            return None
        held = rolling_backtest(runs, law=law, likelihood=likelihood, cuts=cuts, settings=settings)
        return pd.concat([h.errors() for h in held], ignore_index=True)

    return cached_backtest_errors(runs, law=law, likelihood=likelihood, settings=settings, cache_dir=cache_dir,
                                  compute=compute)
