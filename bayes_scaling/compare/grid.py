"""Fit every law × likelihood to the same runs once (from the fit cache where it holds them): what
``compare``, the report and the law-comparison analysis start from."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bayes_scaling.data.runs import RunTable
from bayes_scaling.fitting import cached_fit
from bayes_scaling.posterior.fit_result import Fit

__all__ = ["fit_grid"]


def fit_grid(runs: RunTable, laws: Sequence[str], likelihoods: Sequence[str] = ("student-t",), *,
             cache_dir: str | os.PathLike | None, settings: Mapping[str, Any],
             overrides: Mapping[str, Mapping[str, Any]] | None = None,
             progress: Callable[[int, int, str, bool], None] | None = None) -> dict[str, Fit]:
    """One fit per law × likelihood, keyed ``"law / likelihood"``, in that order.

    Parameters
    ----------
    runs
        The runs every law is fitted to.
    laws, likelihoods
        Names of the laws and likelihoods to combine.
    cache_dir
        The fit cache (:func:`~bayes_scaling.fitting.cached_fit`); None refits.
    settings
        :func:`~bayes_scaling.fit` options shared by every fit.
    overrides
        Options of particular laws, by law name (e.g. the main law's priors).
    progress
        Called after each fit with (done, total, key, whether it came from the cache).

    Returns
    -------
    dict of str to Fit

    Examples
    --------
    >>> from bayes_scaling import load_dataset
    >>> from bayes_scaling.compare.grid import fit_grid
    >>> quick = dict(draws=100, tune=200, chains=2, backtests=False)
    >>> list(fit_grid(load_dataset("chinchilla"), ["chinchilla", "compute"], cache_dir=None, settings=quick))
    ['chinchilla / student-t', 'compute / student-t']
    """
    total = len(laws) * len(likelihoods)
    fits: dict[str, Fit] = {}
    for law in laws:
        for likelihood in likelihoods:
            options = {**settings, **(overrides or {}).get(law, {})}
            key = f"{law} / {likelihood}"
            fits[key], cached = cached_fit(runs, law=law, likelihood=likelihood, cache_dir=cache_dir, settings=options)
            if progress:
                progress(len(fits), total, key, cached)
    return fits
