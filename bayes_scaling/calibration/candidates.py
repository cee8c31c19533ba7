"""Choosing how a forecast carries the law's error, by evidence: candidate methods scored leaving
one dataset out.

A :class:`Candidate` is one way of making a forecast beyond the data: which runs the law is
fitted to (``window``), whether the population of structural errors learns a drift direction
shared by its datasets (``shared_direction``), and what the fit's own back-tests do to it
(``mode``, a :data:`~bayes_scaling.posterior.structural.DISCREPANCIES` name).
:func:`score_candidates` makes the rolling back-tests of every dataset once per window, builds
from them the table of back-test errors the population learns from (the ``extrapolation-errors``
dataset is that table for ``window=None``), and scores every candidate on every dataset with a
population learned from the *other* datasets' back-tests made the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bayes_scaling.calibration.evaluate import (
    forecast_backtest,
    nested_backtests,
    score_runs,
)
from bayes_scaling.calibration.population import fit_population
from bayes_scaling.data.runs import RunTable

__all__ = ["Candidate", "CANDIDATES", "DEFAULT", "PREVIOUS_DEFAULT", "LAW_ONLY", "backtest_errors",
           "score_candidates", "with_modes"]


@dataclass(frozen=True)
class Candidate:
    """One way of forecasting beyond the data, as scored by :func:`score_candidates`.

    Parameters
    ----------
    name
        Its label in the tables.
    mode
        The structural-error mode (``"none"``: the law alone).
    shared_direction
        Whether the population learns a mean drift μ_b shared by its datasets (else μ_b = 0).
    window
        The fits' training window (``fit(window=)``): None (every run), decades, or ``"frontier"``.
    law
        The law fitted (None: :func:`score_candidates`' ``law``).
    likelihood
        The likelihood fitted (None: :func:`score_candidates`' ``likelihood``).
    """

    name: str
    mode: str = "scaled"
    shared_direction: bool = False
    window: float | str | None = None
    law: str | None = None
    likelihood: str | None = None

    def fitted(self, default_law: str, default_likelihood: str) -> tuple[str, float | str | None, str]:
        """What its back-tests fit: (law, window, likelihood)."""
        return (self.law or default_law, self.window, self.likelihood or default_likelihood)


#: :func:`~bayes_scaling.fitting.fit`'s default, the default before it (every run, the drift's sign
#: mirrored, μ_b = 0), and the law alone.
DEFAULT = Candidate("frontier, shared", mode="shared", shared_direction=True, window="frontier")
PREVIOUS_DEFAULT = Candidate("scaled", mode="scaled")
LAW_ONLY = Candidate("law only", mode="none")


#: The candidates of ``benchmarks/bench_calibration.py``.
CANDIDATES = (
    LAW_ONLY,
    PREVIOUS_DEFAULT,
    Candidate("population", mode="population"),
    Candidate("calibrated", mode="calibrated"),
    Candidate("shared", mode="shared", shared_direction=True),
    Candidate("shared population", mode="population", shared_direction=True),
    Candidate("frontier, law only", mode="none", window="frontier"),
    Candidate("frontier, scaled", mode="scaled", window="frontier"),
    DEFAULT,
    Candidate("frontier, calibrated", mode="calibrated", shared_direction=True, window="frontier"),
    Candidate("frontier, shared, exgaussian", mode="shared", shared_direction=True, window="frontier",
              likelihood="exgaussian"),
    Candidate("frontier, shared, interaction", mode="shared", shared_direction=True, window="frontier",
              law="chinchilla-interaction"),
)


def with_modes(scored: pd.DataFrame) -> pd.DataFrame:
    """:func:`score_candidates`' rows of the law alone, the default and the default before it, with
    the ``mode`` column the calibration plots and tables group by: ``"none"``, ``"shared"`` and
    ``"scaled"``.

    Parameters
    ----------
    scored
        :func:`score_candidates`' result.

    Returns
    -------
    pandas.DataFrame
    """
    modes = {LAW_ONLY.name: "none", DEFAULT.name: "shared", PREVIOUS_DEFAULT.name: "scaled"}
    kept = scored[scored["candidate"].isin(modes)]
    return kept.assign(mode=kept["candidate"].map(modes))


def backtest_errors(pairs: Sequence[tuple[Any, pd.DataFrame | None]], *, dataset: str) -> pd.DataFrame:
    """The rows a population learns from (``extrapolation-errors``' columns) of one dataset's
    :func:`~bayes_scaling.calibration.evaluate.nested_backtests`: each forecast's errors
    (``kind="outer"``) and those of the back-tests inside its training runs (``"inner"``).

    Parameters
    ----------
    pairs
        :func:`~bayes_scaling.calibration.evaluate.nested_backtests`' result.
    dataset
        The dataset's name.

    Returns
    -------
    pandas.DataFrame
        One row per held-out run.
    """
    frames = []
    for held, inner in pairs:
        frames.append(held.errors().assign(kind="outer", origin=held.cut, dataset=dataset,
                                           diagnostics_ok=held.diagnostics_ok))
        if inner is not None:
            frames.append(inner.assign(kind="inner", origin=held.cut, dataset=dataset))
    return pd.concat(frames, ignore_index=True)


def score_candidates(datasets: Mapping[str, RunTable], *, candidates: Sequence[Candidate] = CANDIDATES,
                     law: str = "chinchilla", likelihood: str = "student-t",
                     settings: Mapping[str, Any] | None = None, copies: Mapping[str, str] | None = None,
                     population_settings: Mapping[str, Any] | None = None,
                     progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Every candidate's forecasts of every dataset's held-out runs, leaving the dataset out of
    the population; one row per held-out run and candidate (:func:`~bayes_scaling.calibration.evaluate.score_runs`'
    columns, with ``dataset``, ``candidate``, ``cut``, ``n_train``).

    ``copies`` maps a dataset to the one it duplicates (``{"epoch-chinchilla": "chinchilla"}``):
    a copy is scored but never enters a population, and its original is left out with it.
    ``attrs["populations"]`` holds each population's sampling summary, by (window, shared
    direction, dataset left out); ``attrs["errors"]`` the back-test errors, by (law, window, likelihood).

    Parameters
    ----------
    datasets
        The run tables, by name.
    candidates
        The candidates to score.
    law, likelihood
        The law and likelihood fitted below each cut, where a candidate names none.
    settings
        Sampler settings of the refits (draws, tune, chains, seed).
    copies
        Datasets that duplicate another, by name.
    population_settings
        Sampler settings of :func:`~bayes_scaling.calibration.population.fit_population`.
    progress
        Called with a line per step (None: quiet).

    Returns
    -------
    pandas.DataFrame
        One row per held-out run and candidate.
    """
    settings = dict(settings or {})
    copies = dict(copies or {})
    seed = int(settings.get("seed", 0))
    family = {name: copies.get(name, name) for name in datasets}
    fits = list(dict.fromkeys(c.fitted(law, likelihood) for c in candidates))
    pairs = {}
    for fitted in fits:
        fitted_law, window, fitted_likelihood = fitted
        fit_settings = settings | {"window": window}
        for name, runs in datasets.items():  # the inner back-tests teach every population its λ
            pairs[fitted, name] = nested_backtests(runs, law=fitted_law, likelihood=fitted_likelihood,
                                                   settings=fit_settings, progress=progress)
    errors = {fit: pd.concat([backtest_errors(pairs[fit, name], dataset=name) for name in datasets
                              if name not in copies], ignore_index=True) for fit in fits}
    populations: dict[tuple, pd.DataFrame] = {}
    rows = []
    for candidate in candidates:
        for name, runs in datasets.items():
            population = None
            if candidate.mode != "none":
                key = (*candidate.fitted(law, likelihood), candidate.shared_direction, family[name])
                if key not in populations:
                    table = errors[candidate.fitted(law, likelihood)]
                    populations[key] = fit_population(table[table["dataset"] != family[name]],
                                                      shared_direction=candidate.shared_direction,
                                                      **({"seed": seed} | dict(population_settings or {})))
                    if progress:
                        progress(f"population without {family[name]} ({key[0]}, {key[2]}, window {key[1]}, shared direction "
                                 f"{candidate.shared_direction}): {populations[key].attrs['diagnostics']['summary']}")
                population = populations[key]
            rows.append(_score(candidate, pairs[candidate.fitted(law, likelihood), name], population, dataset=name,
                               seed=seed))
    scored = pd.concat(rows, ignore_index=True)
    scored.attrs["populations"] = {key: pop.attrs["diagnostics"]["summary"] for key, pop in populations.items()}
    scored.attrs["errors"] = errors
    return scored


def _score(candidate: Candidate, pairs, population: pd.DataFrame | None, *, dataset: str, seed: int) -> pd.DataFrame:
    """One candidate's scores of one dataset's back-tests (as :func:`~bayes_scaling.calibration.evaluate.evaluate_dataset`)."""
    frames = []
    for i, (held, internal) in enumerate(pairs):
        draws = forecast_backtest(held, internal, population, mode=candidate.mode, index=i, seed=seed)
        frames.append(score_runs(draws, held.log_loss, held.distance).assign(
            dataset=dataset, candidate=candidate.name, cut=held.cut, n_train=held.n_train))
    return pd.concat(frames, ignore_index=True)
