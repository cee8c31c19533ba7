"""Candidate runs for an experiment design: isoFLOP rows around the forecast optimum, or a file.

A candidate is a run that could be trained: its parameters ``N`` and tokens ``D``; it costs
``C = 6·N·D`` FLOP.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError, Problem, RunTableError

__all__ = ["candidate_grid", "check_candidates", "isoflop_row", "random_runs", "read_candidates"]


def candidate_grid(forecaster, *, budget: float, target_compute: float, rows: int = 6, sizes: int = 7,
                   half_width: float = 0.6) -> pd.DataFrame:
    """isoFLOP rows of candidate runs: ``rows`` budgets evenly spaced in log C from a tenth of the
    largest fitted run's compute up to what one run may cost (the budget, at most the target), and at
    each ``sizes`` models evenly spaced in log N over ± ``half_width`` decades around the forecast's
    median compute-optimal N at that budget.

    Parameters
    ----------
    forecaster
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` of a law of N and D.
    budget
        The compute there is to spend (FLOP).
    target_compute
        The budget whose forecast the runs should sharpen (FLOP).
    rows
        Budgets (isoFLOP rows).
    sizes
        Models per row.
    half_width
        Half a row's width in decades of N.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``, ``row`` (the row's budget).
    """
    if rows < 1 or sizes < 1:
        raise InputError("a candidate grid needs at least one row and one size")
    c_max = float(np.max(forecaster.fit.runs.C))
    top = min(budget, target_compute)
    low = min(c_max / 10.0, top / 10.0)
    levels = np.geomspace(low, top, rows) if rows > 1 else np.array([top])
    n_star = np.median(forecaster.allocation(levels)["N"], axis=0)
    offsets = np.linspace(-half_width, half_width, sizes) if sizes > 1 else np.zeros(1)
    n = (n_star[:, None] * 10.0 ** offsets[None, :]).ravel()
    c = np.repeat(levels, len(offsets))
    return pd.DataFrame({"N": n, "D": c / (FLOP_PER_PARAM_TOKEN * n), "C": c, "row": c})


def isoflop_row(forecaster, *, budget: float, sizes: int = 7, half_width: float = 0.6) -> pd.DataFrame:
    """The standard alternative to a design: one new isoFLOP row of ``sizes`` models at ``budget /
    sizes`` FLOP each, evenly spaced in log N over ± ``half_width`` decades around the forecast's
    median compute-optimal N there.

    Parameters
    ----------
    forecaster
        A :class:`~bayes_scaling.forecast.forecaster.Forecaster` of a law of N and D.
    budget
        The row's total compute (FLOP).
    sizes
        Models in the row.
    half_width
        Half the row's width in decades of N.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``, ``row``.
    """
    level = budget / sizes
    n_star = float(np.median(forecaster.allocation(level)["N"]))
    n = n_star * 10.0 ** np.linspace(-half_width, half_width, sizes)
    return pd.DataFrame({"N": n, "D": level / (FLOP_PER_PARAM_TOKEN * n), "C": np.full(sizes, level),
                         "row": np.full(sizes, level)})


def random_runs(candidates: pd.DataFrame, *, budget: float, seed: int = 0) -> pd.DataFrame:
    """Candidates taken in a random order while they fit in what is left of ``budget``: the
    baseline a design must beat.

    Parameters
    ----------
    candidates
        Candidate runs (``C`` in FLOP).
    budget
        The compute to spend (FLOP).
    seed
        Seed of the order.

    Returns
    -------
    pandas.DataFrame
        The runs taken, in the order taken.

    Examples
    --------
    >>> runs = random_runs(pd.DataFrame({"C": [1.0, 2.0, 3.0, 4.0]}), budget=5.0, seed=1)
    >>> float(runs["C"].sum()) <= 5.0
    True
    """
    order = np.random.default_rng([seed, 43]).permutation(len(candidates))
    taken, left = [], float(budget)
    for i in order:
        cost = float(candidates["C"].iloc[i])
        if cost <= left:
            taken.append(i)
            left -= cost
    return candidates.iloc[taken].reset_index(drop=True)


def read_candidates(path: str | os.PathLike) -> pd.DataFrame:
    """Candidate runs from a CSV file with columns ``N`` and ``D`` (parameters and tokens), or one of
    them and ``C`` (FLOP, 6·N·D).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``.

    Raises
    ------
    RunTableError
        A missing column or a value that is not a positive number, with its line and column.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such candidates file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot read it as a CSV file of candidate runs ({exc})") from None
    return check_candidates(frame, source=str(path), is_file=True)


def check_candidates(frame: pd.DataFrame, *, source: str = "candidates", is_file: bool = False) -> pd.DataFrame:
    """Candidate runs checked: two of ``N``, ``D``, ``C`` given, every value a positive number; the
    third derived.

    Parameters
    ----------
    frame
        The candidates.
    source
        What to call them in errors.
    is_file
        The rows are lines of a file (errors name the line).

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``.

    Examples
    --------
    >>> check_candidates(pd.DataFrame({"N": [1e8], "C": [6e18]}))["D"].tolist()
    [10000000000.0]
    """
    given = [c for c in ("N", "D", "C") if c in frame.columns]
    if len(given) < 2:
        raise InputError(f"{source}: candidate runs need columns N and D (or one of them and C); "
                         f"found {', '.join(map(str, frame.columns)) or 'none'}")
    if frame.empty:
        raise InputError(f"{source}: no candidate runs")
    problems = []
    values = {}
    for name in given:
        col = pd.to_numeric(frame[name], errors="coerce")
        bad = ~(np.isfinite(col.to_numpy(float)) & (col.to_numpy(float) > 0))
        for i in np.flatnonzero(bad)[:10]:
            value = frame[name].iloc[i]
            value = value.item() if hasattr(value, "item") else value
            problems.append(Problem(row=int(i), column=name, message=f"expected a positive number, found {value!r}"))
        values[name] = col.to_numpy(float)
    if problems:
        raise RunTableError(source, problems, is_file=is_file)
    n, d = values.get("N"), values.get("D")
    if n is None:
        n = values["C"] / (FLOP_PER_PARAM_TOKEN * d)
    elif d is None:
        d = values["C"] / (FLOP_PER_PARAM_TOKEN * n)
    return pd.DataFrame({"N": n, "D": d, "C": FLOP_PER_PARAM_TOKEN * n * d})
