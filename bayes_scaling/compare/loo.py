"""Interpolation: PSIS-LOO of several fits of the same runs, stacking weights, Pareto-k warnings.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError
from bayes_scaling.posterior.fit_result import Fit

__all__ = ['loo_table', 'PARETO_K_BAD']


log = logging.getLogger(__name__)


#: Pareto k above this makes the PSIS estimate for that run unreliable (Vehtari et al. 2024).
PARETO_K_BAD = 0.7


def loo_table(fits: dict[str, Fit]) -> pd.DataFrame:
    """PSIS-LOO comparison with stacking weights and Pareto-k counts, best model first.

    PSIS-LOO (ArviZ 1, ``arviz_stats``) estimates how well each fit predicts a run left out
    of the data it was fitted to: interpolation, not extrapolation.

    Parameters
    ----------
    fits
        Two or more fits of the same runs, by label.

    Returns
    -------
    pandas.DataFrame
        One row per fit: ``elpd_loo``, its ``se``, the difference to the best and its ``dse``,
        ``p_loo``, the stacking weight and the number of runs with Pareto k above 0.7.

    Raises
    ------
    InputError
        For fewer than two fits, or fits of different runs.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> quick = dict(draws=200, tune=300, chains=2, backtests=False, seed=3)
    >>> fits = {law: bs.fit("chinchilla", law=law, **quick) for law in ("chinchilla", "compute")}
    >>> table = bs.loo_table(fits)
    >>> table.index[0], round(float(table["stacking_weight"].sum()), 6)
    ('chinchilla', 1.0)
    """
    from arviz_stats import compare, loo

    if len(fits) < 2:
        raise InputError("LOO comparison needs at least two fits")
    fingerprints = {f.runs.fingerprint() for f in fits.values()}
    if len(fingerprints) > 1:
        raise InputError("LOO compares fits of the same runs; these fits were made on different data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Pareto-k warning is reported as columns below
        elpd = {name: loo(f.idata, pointwise=True) for name, f in fits.items()}
        table = compare(elpd, method="stacking", round_to="none")
    ks = {name: np.asarray(e.pareto_k) for name, e in elpd.items()}
    out = pd.DataFrame({
        "rank": table["rank"].astype(int), "elpd_loo": table["elpd"], "se": table["se"],
        "elpd_diff": table["elpd_diff"], "dse": table["dse"], "p_loo": table["p"],
        "stacking_weight": table["weight"],
        "pareto_k_max": [float(ks[name].max()) for name in table.index],
        "n_pareto_k_bad": [int(np.sum(ks[name] > PARETO_K_BAD)) for name in table.index],
        "diagnostics_ok": [fits[name].diagnostics.ok for name in table.index],
    }, index=table.index)
    out.index.name = "model"
    bad = out[out["n_pareto_k_bad"] > 0]
    if len(bad):
        message = (f"Pareto k > {PARETO_K_BAD} for some runs in {', '.join(bad.index)}: PSIS-LOO is unreliable "
                   f"there (influential runs, often outliers or the edges of the data). Trust the back-tests, "
                   f"or refit with those runs left out.")
        log.warning(message)
        out.attrs["warning"] = message
    return out

