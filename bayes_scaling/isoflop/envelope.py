"""Approach 1: the envelope of training curves, read as isoFLOP profiles.

Hoffmann et al. (2022)'s Approach 1 turns each run's training curve into a loss at every compute
it passed (C = 6 N D at each checkpoint) and reads, at each compute, which run is lowest: the
*envelope*.  A power law through the envelope's minima gives N*(C).  The classical reading
(:func:`classical_envelope`) can only pick among the sizes trained, so its N* is a staircase.

The Bayesian reading (:func:`fit_envelope`) keeps the whole envelope, size by size: at budgets
:data:`~bayes_scaling.isoflop.design.SLICE_WIDTH` decades apart, each size's lowest loss along any
of its curves (log loss interpolated linearly in log compute between checkpoints, never beyond a
curve's ends) is one point of that budget's isoFLOP profile, and the isoFLOP model
(:mod:`bayes_scaling.isoflop.model`) fits a curve through each budget's points with the optima on
power laws in compute.  The minimum over sizes of these points *is* the envelope; the curve through
them places the optimum between the sizes trained and gives it an interval.

A checkpoint early in its run (warm-up, the learning rate still high) lies far above what its size
reaches at that compute when trained for it, so points before :data:`MIN_PROGRESS` of a run's
tokens are left out.  Rows of one curve are identified by ``by``: columns whose values are shared by
the checkpoints of one run and differ between runs (for the (Mis)Fitting learning curves: size,
total steps, peak learning rate and sweep; registered datasets name them, ``DatasetInfo.curves``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError
from bayes_scaling.isoflop.design import SLICE_WIDTH, is_profile
from bayes_scaling.options import ENVELOPE_MIN_PROGRESS

__all__ = ["MIN_PROGRESS", "classical_envelope", "curve_columns", "envelope_profiles", "final_checkpoints",
           "fit_envelope", "fit_envelope_profiles"]

log = logging.getLogger(__name__)

#: A checkpoint enters the envelope once its run has seen at least this share of its tokens.
MIN_PROGRESS = ENVELOPE_MIN_PROGRESS


def curve_columns(runs, by: Sequence[str] | None = None) -> tuple[str, ...]:
    """The columns that identify one training curve: ``by``, else those the dataset registers.

    Parameters
    ----------
    runs
        A :class:`~bayes_scaling.data.runs.RunTable` (or a DataFrame) of checkpoints.
    by
        Column names; ``None`` reads the dataset's registered ``curves``.

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        When no columns are given or registered, or one is missing.
    """
    frame = _frame(runs)
    columns = tuple(by) if by else tuple(getattr(runs, "provenance", {}).get("curves", ()))
    if not columns:
        raise InputError("reading learning curves needs the columns that identify one run's checkpoints "
                         "(by=[...] in Python, --curve-by COLUMN ... on the command line: e.g. a run id, or size, "
                         "schedule length and learning rate)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"curve columns {', '.join(missing)} are not in the runs (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    return columns


def _frame(runs) -> pd.DataFrame:
    return runs.data if hasattr(runs, "data") and isinstance(runs.data, pd.DataFrame) else pd.DataFrame(runs)


def _curves(runs, by: Sequence[str]) -> pd.DataFrame:
    """The checkpoints with a ``curve`` number, sorted by curve and compute, and each one's progress."""
    frame = _frame(runs)
    out = frame[["N", "D", "C", "loss"]].astype(float).copy()
    out["curve"] = frame.groupby(list(by), sort=False, dropna=False).ngroup().to_numpy()
    sizes = out.groupby("curve")["N"].nunique()
    if (sizes > 1).any():
        raise InputError(f"curve columns {', '.join(by)} put checkpoints of different sizes in one curve "
                         f"({int((sizes > 1).sum())} curves); add a column that tells runs apart")
    out = out.sort_values(["curve", "C"], kind="stable").reset_index(drop=True)
    out["progress"] = out["D"] / out.groupby("curve")["D"].transform("max")
    return out


def final_checkpoints(runs, *, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Each curve's last checkpoint: the runs as a table of final losses (``N``, ``D``, ``C``, ``loss``).

    Parameters
    ----------
    runs
        Checkpoints (a RunTable or DataFrame with ``N``, ``D``, ``C``, ``loss``).
    by
        Curve columns (:func:`curve_columns`).

    Returns
    -------
    pandas.DataFrame
    """
    curves = _curves(runs, curve_columns(runs, by))
    last = curves.groupby("curve")["C"].idxmax()
    return curves.loc[last.to_numpy(), ["N", "D", "C", "loss"]].reset_index(drop=True)


def envelope_profiles(runs, *, by: Sequence[str] | None = None, spacing: float = SLICE_WIDTH,
                      min_progress: float = MIN_PROGRESS) -> pd.DataFrame:
    """Each size's lowest loss along its curves at budgets ``spacing`` decades apart.

    Parameters
    ----------
    runs
        Checkpoints (a RunTable or DataFrame with ``N``, ``D``, ``C``, ``loss`` and the curve columns).
    by
        Curve columns (:func:`curve_columns`).
    spacing
        Budgets lie at multiples of this many decades of compute.
    min_progress
        Share of its run's tokens a checkpoint must have reached to enter.

    Returns
    -------
    pandas.DataFrame
        One row per (budget, size) at budgets whose sizes form a profile
        (:func:`~bayes_scaling.isoflop.design.is_profile`): ``N``, ``D`` (= C / 6N), ``C`` (the budget), ``loss``, ``progress`` (of the curve
        that gives the point) and ``curve``; ``attrs`` counts the curves and checkpoints read.

    Examples
    --------
    >>> ckpt = pd.DataFrame({"run": [0, 0, 1, 1, 2, 2], "N": [1e8, 1e8, 2e8, 2e8, 4e8, 4e8],
    ...                      "D": [5e8, 2e9, 2.5e8, 1e9, 1.25e8, 5e8], "loss": [4.0, 3.5, 4.0, 3.4, 4.2, 3.6]})
    >>> ckpt["C"] = 6 * ckpt["N"] * ckpt["D"]
    >>> points = envelope_profiles(ckpt, by=["run"])
    >>> points.groupby("C")["N"].nunique().tolist()  # three budgets, each with the three sizes
    [3, 3, 3]
    """
    if not 0.0 <= min_progress < 1.0:
        raise InputError(f"min_progress must lie in [0, 1), not {min_progress!r}")
    if not spacing > 0:
        raise InputError(f"spacing must be positive, not {spacing!r}")
    curves = _curves(runs, curve_columns(runs, by))
    curves = curves[curves["progress"] >= min_progress]
    lc = np.log10(curves["C"].to_numpy())
    grid = np.arange(math.ceil(lc.min() / spacing - 1e-9), math.floor(lc.max() / spacing + 1e-9) + 1) * spacing
    points = []
    for curve, part in curves.groupby("curve", sort=False):
        x = np.log10(part["C"].to_numpy())
        inside = grid[(grid >= x[0] - 1e-9) & (grid <= x[-1] + 1e-9)]
        if inside.size == 0:
            continue
        y = np.interp(inside, x, np.log(part["loss"].to_numpy()))
        progress = np.interp(inside, x, part["progress"].to_numpy())
        points.append(pd.DataFrame({"N": part["N"].iloc[0], "C": 10.0 ** inside, "loss": np.exp(y),
                                    "progress": progress, "curve": curve}))
    if not points:
        raise InputError("no training curve spans a budget: the checkpoints are too few or too close in compute")
    every = pd.concat(points, ignore_index=True)
    best = every.loc[every.groupby(["C", "N"])["loss"].idxmin().to_numpy()]
    best = best.groupby("C").filter(lambda b: is_profile(np.log10(b["N"].to_numpy())))
    best = best.sort_values(["C", "N"]).reset_index(drop=True)
    best.insert(1, "D", best["C"] / (FLOP_PER_PARAM_TOKEN * best["N"]))
    best.attrs = {"curves": int(curves["curve"].nunique()), "checkpoints": len(curves),
                  "min_progress": min_progress, "spacing": spacing}
    return best


def classical_envelope(runs, *, by: Sequence[str] | None = None, points_per_decade: int = 40,
                       min_progress: float = 0.0) -> dict[str, object]:
    """Hoffmann et al.'s Approach 1 as published: at each compute, the run lowest on its curve, and a
    least-squares power law through those minima (a point estimate, no interval).

    Parameters
    ----------
    runs
        Checkpoints with the curve columns.
    by
        Curve columns (:func:`curve_columns`).
    points_per_decade
        Compute values read per decade.
    min_progress
        Share of its run's tokens a checkpoint must have reached (0: every checkpoint, as published).

    Returns
    -------
    dict
        ``a`` and ``intercept`` (log10 N* = intercept + a · log10 C), and ``points``: the envelope
        (``C``, ``N``, ``loss``) where at least three sizes reach that compute.
    """
    profiles = envelope_profiles(runs, by=by, spacing=1.0 / points_per_decade, min_progress=min_progress)
    points = profiles.loc[profiles.groupby("C")["loss"].idxmin().to_numpy(), ["C", "N", "loss"]].reset_index(drop=True)
    if len(points) < 2:
        raise InputError("the envelope spans fewer than two compute values with three sizes: no power law")
    a, intercept = np.polyfit(np.log10(points["C"]), np.log10(points["N"]), 1)
    return {"a": float(a), "intercept": float(intercept), "points": points}


def fit_envelope(runs, *, by: Sequence[str] | None = None, min_progress: float = MIN_PROGRESS,
                 spacing: float = SLICE_WIDTH, **options):
    """Fit the isoFLOP model to the envelope's profiles (Approach 1 with intervals).

    Parameters
    ----------
    runs
        Checkpoints (``N``, ``D``, ``C``, ``loss`` and the curve columns).
    by
        Curve columns (:func:`curve_columns`).
    min_progress, spacing
        As in :func:`envelope_profiles`.
    **options
        Options of :func:`~bayes_scaling.isoflop.model.fit_isoflop` (``shape``, ``cut``, ``draws``, ``tune``,
        ``chains``, ``seed``).

    Returns
    -------
    IsoflopFit
        Its ``config`` has ``approach`` 1 and the curves and checkpoints read.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> from bayes_scaling.isoflop.simulate import simulate_curves
    >>> iso = fit_envelope(simulate_curves(seed=2), by=["run"], draws=200, tune=200, chains=2, seed=1)
    >>> iso.config["approach"], bool(0.3 < float(iso.exponents["a"].mean()) < 0.7)
    (1, True)
    """
    return fit_envelope_profiles(envelope_profiles(runs, by=by, spacing=spacing, min_progress=min_progress),
                                 **options)


def fit_envelope_profiles(profiles: pd.DataFrame, **options):
    """:func:`fit_envelope` from points :func:`envelope_profiles` has already read.

    Parameters
    ----------
    profiles
        :func:`envelope_profiles`' table (its ``attrs`` say how it was read).
    **options
        Options of :func:`~bayes_scaling.isoflop.model.fit_isoflop`.

    Returns
    -------
    IsoflopFit
    """
    from bayes_scaling.isoflop.model import fit_isoflop

    min_progress = profiles.attrs["min_progress"]
    log.info("Approach 1: %d training curves (%d checkpoints past %.0f%% of their run) give %d points at %d "
             "budgets", profiles.attrs["curves"], profiles.attrs["checkpoints"], 100 * min_progress, len(profiles),
             profiles["C"].nunique())
    iso = fit_isoflop(profiles[["N", "D", "C", "loss"]], **options)
    iso.config |= {"approach": 1, "curves": profiles.attrs["curves"], "checkpoints": profiles.attrs["checkpoints"],
                   "min_progress": min_progress, "spacing": profiles.attrs["spacing"]}
    return iso
