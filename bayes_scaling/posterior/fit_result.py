"""A fitted scaling law: :class:`Fit` holds the posterior as an ArviZ 1 DataTree, the configuration
and the diagnostics, and saves to one netCDF file that :func:`~bayes_scaling.posterior.load.load_fit`
reads back exactly.

The DataTree's groups: ``posterior``, ``sample_stats``, ``observed_data`` and ``constant_data``
(stored); ``log_likelihood``, ``posterior_predictive``, ``prior`` and ``prior_predictive``
(derived from the draws, the runs and the seed, on fitting and again on loading); and with a
structural error ``structural_error`` (its draws, (chain, draw) like the posterior's) and
``structural_backtests`` (the fit's own back-tests).  The file's attributes hold the
configuration as JSON and SHA-256 hashes of it and of the draws (:mod:`~bayes_scaling.posterior.fitfile`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_scaling._provenance import config_hash
from bayes_scaling.data.runs import RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.intervals import DEFAULT_LEVEL, ci_options
from bayes_scaling.io.outputs import new_file_target, write_netcdf
from bayes_scaling.laws.base import ScalingLaw
from bayes_scaling.laws.ops import NUMPY
from bayes_scaling.laws.registry import get_law
from bayes_scaling.model.likelihoods import Likelihood, get_likelihood
from bayes_scaling.model.pymc_model import (
    group_index,
    log_inputs,
)
from bayes_scaling.posterior.fitfile import (
    _ATTR,
    ALLOCATION_GROUP,
    BACKTESTS_GROUP,
    DERIVED_GROUPS,
    FORMAT_VERSION,
    STRUCTURAL_GROUP,
    draws_hash,
)
from bayes_scaling.posterior.structural import BACKTEST_COLUMNS, PARAMS, StructuralError
from bayes_scaling.sampling.diagnostics import Diagnostics

__all__ = ['Fit']


if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)


@dataclass
class Fit:
    """A fitted scaling law: posterior draws, configuration, diagnostics.

    Parameters
    ----------
    idata
        An ArviZ 1 ``xarray.DataTree``: ``posterior`` (natural parameters under the names users
        know, plus the sampled ones), ``sample_stats``, ``log_likelihood``, ``posterior_predictive``,
        ``observed_data`` (``log_loss``) and ``constant_data`` (the runs).
    config
        Law, likelihood, priors, pooling, groups, data statistics and fingerprint, sampler
        settings and package versions: everything needed to reproduce the fit.
    diagnostics
        R-hat, ESS, divergences, tree-depth hits, and the problems found.
    timing
        Wall times in seconds (compile, sampling, total).
    """

    idata: xr.DataTree
    config: dict[str, Any]
    diagnostics: Diagnostics
    timing: dict[str, float]

    # ------------------------------------------------------------------ model pieces
    @cached_property
    def law(self) -> ScalingLaw:
        return get_law(self.config["law"])

    @cached_property
    def likelihood(self) -> Likelihood:
        options = {k: v for k, v in self.config["likelihood"].items() if k != "name"}
        return get_likelihood(self.config["likelihood"]["name"], **options)

    @property
    def groups(self) -> list[str]:
        return list(self.config["groups"])

    @property
    def grouped(self) -> bool:
        return len(self.groups) > 1

    @cached_property
    def runs(self) -> RunTable:
        """The runs the law was fitted to (rebuilt from the stored constant data)."""
        const = self.idata["constant_data"]
        data = {k: np.asarray(const[k].values, dtype=float) for k in ("N", "D", "C", "loss")}
        frame = pd.DataFrame(data)
        if "group" in const:
            frame["group"] = np.asarray(const["group"].values).astype(str)
        if "unique_tokens" in const:
            frame["unique_tokens"] = np.asarray(const["unique_tokens"].values, dtype=float)
        info = self.config["data"]
        return RunTable(frame, source=info["source"], derived=info.get("derived", {}))

    @cached_property
    def structural(self) -> StructuralError | None:
        """The law's structural error beyond the data (None for ``discrepancy="none"``)."""
        if STRUCTURAL_GROUP not in self.idata.children:
            return None
        return structural_from_groups(self.idata[STRUCTURAL_GROUP],
                                      self.idata[BACKTESTS_GROUP] if BACKTESTS_GROUP in self.idata.children else None)

    # ------------------------------------------------------------------ draws
    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of a parameter, chains stacked: shape (S,) or (S, groups).

        Parameters
        ----------
        name
            A parameter name.

        Returns
        -------
        numpy.ndarray
        """
        post = self.idata["posterior"]
        if name not in post.data_vars:
            raise InputError(f"no parameter {name!r} in the posterior; it has {', '.join(post.data_vars)}")
        values = np.asarray(post[name].values, dtype=float)
        return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])

    def params(self) -> dict[str, np.ndarray]:
        """Every natural parameter's draws, by name.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        return {name: self.draws(name) for name in self.law.param_names}

    def allocation_params(self) -> dict[str, np.ndarray]:
        """The parameter draws the compute-optimal allocation is computed from: those of the law
        fitted to every run where the fit itself used only the runs near the frontier (the
        ``allocation_posterior`` group), else :meth:`params`.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        if ALLOCATION_GROUP not in self.idata.children:
            return self.params()
        node = self.idata[ALLOCATION_GROUP]
        return {name: np.asarray(node[name].values, dtype=float).reshape(-1, *node[name].shape[2:])
                for name in self.law.param_names}

    def noise(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Draws of the noise scale and of the likelihood's extra parameters.

        Returns
        -------
        tuple
        """
        return self.draws("sigma"), {k: self.draws(k) for k in self.likelihood.extra}

    def log_mu(self, runs: RunTable, *, group: str | None = None) -> np.ndarray:
        """Posterior draws of the law's log loss at each run: shape (S, len(runs)).

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        group
            For a grouped fit: the group (None: each run's own).

        Returns
        -------
        numpy.ndarray
        """
        return self._law_at(runs, self.params(), group=group)

    @cached_property
    def central_draw(self) -> int:
        """The posterior draw whose law runs closest to the pointwise median of all draws' over the
        training runs (least summed |log loss − median|): the centre about which a structural
        error's ρ rescales forecasts (:meth:`StructuralError.respread`).  A draw, not the law at
        each parameter's median, so that it lies on the posterior's ridge where parameters trade off."""
        log_mu = self.log_mu(self.runs)
        return int(np.argmin(np.abs(log_mu - np.median(log_mu, axis=0)).sum(axis=1)))

    def central_log_mu(self, runs: RunTable, *, group: str | None = None) -> np.ndarray:
        """The law of the :attr:`central_draw` at each run: shape (1, len(runs)).

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        group
            For a grouped fit: the group (None: each run's own).

        Returns
        -------
        numpy.ndarray
        """
        return self._law_at(runs, {k: v[[self.central_draw]] for k, v in self.params().items()}, group=group)

    def _law_at(self, runs: RunTable, params: dict[str, np.ndarray], *, group: str | None = None) -> np.ndarray:
        x = {k: v[None, :] for k, v in log_inputs(self.law, runs).items()}
        if self.grouped:
            if group is not None:
                if group not in self.groups:
                    raise InputError(f"unknown group {group!r}; the fit has {', '.join(self.groups)}")
                idx = np.full(len(runs), self.groups.index(group))
            else:
                idx = group_index(runs, tuple(self.groups))
            per_run = {k: (v[:, idx] if v.ndim == 2 else v[:, None]) for k, v in params.items()}
        else:
            per_run = {k: v[:, None] for k, v in params.items()}
        return self.law.log_loss(NUMPY, x, per_run)

    def pointwise_log_likelihood(self, runs: RunTable, *, group: str | None = None) -> np.ndarray:
        """log p(log loss of each run | draw): shape (S, len(runs)); scores held-out runs too.

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        group
            For a grouped fit: the group (None: each run's own).

        Returns
        -------
        numpy.ndarray
        """
        sigma, extra = self.noise()
        mu = self.log_mu(runs, group=group)
        return self.likelihood.logpdf(np.log(runs.loss)[None, :], mu, sigma[:, None],
                                      {k: v[:, None] for k, v in extra.items()})

    def predictive_log_draws(self, runs: RunTable, *, seed: int | list[int] = 0,
                             group: str | None = None) -> np.ndarray:
        """Replicated log losses of each run: shape (S, len(runs)).

        The law, the fitted noise, and — for runs beyond the training data — the structural error.

        Parameters
        ----------
        runs
            The runs (a :class:`~bayes_scaling.data.runs.RunTable`).
        seed
            Seed of the noise (and structural error).
        group
            For a grouped fit: the group (None: each run's own).

        Returns
        -------
        numpy.ndarray
        """
        sigma, extra = self.noise()
        rng = np.random.default_rng(seed)
        draws = self.likelihood.draw(rng, self.log_mu(runs, group=group), sigma[:, None],
                                     {k: v[:, None] for k, v in extra.items()})
        if self.structural is not None and np.any(runs.C > self.structural.c_ref):
            draws = self.structural.forecast(draws, self.central_log_mu(runs, group=group), runs.C, rng)
        return draws

    # ------------------------------------------------------------------ summaries
    def summary(self, *, ci_prob: float = DEFAULT_LEVEL, **legacy) -> pd.DataFrame:
        """Mean, sd, median, equal-tailed interval, ESS and R-hat of every reported parameter.

        Parameters
        ----------
        ci_prob
            Probability of the equal-tailed interval (default 0.9; ArviZ's name).
        **legacy
            ``level``, the earlier name of ``ci_prob`` (a FutureWarning).

        Returns
        -------
        pandas.DataFrame
            One row per parameter (per group for pooled exponents): mean, sd, median, the interval's
            quantiles (``q5``, ``q95`` at 0.9), bulk and tail ESS, R-hat.
        """
        level, _ = ci_options(ci_prob, "eti", legacy, where="summary")
        if not 0 < level < 1:
            raise InputError(f"level must be between 0 and 1, got {level}")
        lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
        rows = []
        for name in (*self.law.param_names, *self.reported_noise()):
            values = self.draws(name)
            whole = self.diagnostics.per_param.get(name, {})
            columns = [(name, values, whole)] if values.ndim == 1 else [
                (f"{name}[{g}]", values[:, i], {k: whole[f"{k}_each"][i] for k in ("ess_bulk", "ess_tail", "r_hat")
                                                if f"{k}_each" in whole}) for i, g in enumerate(self.groups)]
            for label, v, d in columns:
                rows.append({"parameter": label, "mean": v.mean(), "sd": v.std(ddof=1), "median": np.median(v),
                             f"q{lo_q * 100:g}": np.quantile(v, lo_q), f"q{hi_q * 100:g}": np.quantile(v, hi_q),
                             "ess_bulk": d.get("ess_bulk", np.nan), "ess_tail": d.get("ess_tail", np.nan),
                             "r_hat": d.get("r_hat", np.nan)})
        return pd.DataFrame(rows).set_index("parameter")

    def reported_noise(self) -> tuple[str, ...]:
        """Noise and pooling parameters the summary reports.

        Returns
        -------
        tuple of str
        """
        extra = tuple(self.likelihood.extra)
        pooled = tuple(f"{s.name}_{suffix}" for s in self.law.sampled if s.exponent
                       for suffix in ("pop", "tau") if f"{s.name}_{suffix}" in self.idata["posterior"].data_vars)
        return ("sigma", *extra, *pooled)

    def __repr__(self) -> str:
        return (f"Fit({self.config['law']}, {self.config['likelihood']['name']}, {len(self.runs)} runs, "
                f"{self.diagnostics.chains}×{self.diagnostics.draws} draws, "
                f"{'ok' if self.diagnostics.ok else 'PROBLEMS'})")

    def _repr_html_(self) -> str:
        """Jupyter: the law, the data, the diagnostics and the posterior summary."""
        import html

        diag = self.diagnostics
        head = (f"<p><b>{html.escape(self.law.title)}</b> ({html.escape(self.law.formula)}), "
                f"{html.escape(self.likelihood.name)} likelihood, fitted to {len(self.runs)} runs of "
                f"{html.escape(self.runs.source)}; {diag.chains} chains × {diag.draws} draws; diagnostics "
                f"{'ok' if diag.ok else '<b>PROBLEMS</b>: ' + html.escape('; '.join(diag.problems))}</p>")
        return head + self.summary().to_html(float_format=lambda v: f"{v:.4g}")

    # ------------------------------------------------------------------ persistence
    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write one netCDF file, atomically; refuse to replace an existing file unless ``overwrite``.

        Parameters
        ----------
        path
            The file (``.nc``).
        overwrite
            Replace an existing file.

        Returns
        -------
        pathlib.Path
        """
        target = new_file_target(path, overwrite=overwrite)
        attrs = self.idata["posterior"].attrs
        attrs[_ATTR + "format"] = FORMAT_VERSION
        attrs[_ATTR + "config"] = json.dumps(self.config, sort_keys=True, default=str)
        attrs[_ATTR + "config_hash"] = self.config_hash
        attrs[_ATTR + "draws_hash"] = draws_hash(self.idata)
        attrs[_ATTR + "timing"] = json.dumps(self.timing)
        # The pointwise log-likelihood and the posterior predictive are recomputed on loading
        # (bit-identical: same draws, same runs, same seed), so a fit file stays small.
        stored = self.idata.copy()
        for group in DERIVED_GROUPS:
            if group in stored.children:
                del stored[group]
        write_netcdf(stored, target)
        log.debug("saved fit to %s", target)
        return target


def _diagnosed(idata, config: Mapping[str, Any]) -> list[str]:
    law = get_law(config["law"])
    names = [*law.param_names, "sigma", *get_likelihood(config["likelihood"]["name"]).extra]
    return [n for n in names if n in idata["posterior"].data_vars]


def _derive_groups(result: Fit, runs: RunTable, seed: int) -> None:
    """The log-likelihood and posterior-predictive groups: made after sampling, and again on loading
    (fit files leave them out; the same draws, runs and seed give the same values)."""
    import xarray as xr

    post = result.idata["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    obs = np.arange(len(runs))

    def cube(values):
        return xr.DataArray(values.reshape(chains, draws, len(runs)), dims=("chain", "draw", "obs"),
                            coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": obs})

    result.idata["log_likelihood"] = xr.DataTree(xr.Dataset({"log_loss": cube(result.pointwise_log_likelihood(runs))}))
    result.idata["posterior_predictive"] = xr.DataTree(xr.Dataset({"log_loss": cube(
        result.predictive_log_draws(runs, seed=[seed, 1]))}))
    prior, prior_predictive = prior_groups(result, runs, seed)
    result.idata["prior"] = xr.DataTree(prior)
    result.idata["prior_predictive"] = xr.DataTree(prior_predictive)


#: How many draws the prior groups hold (numpy draws from the priors the fit used: no sampler).
PRIOR_DRAWS = 500


def prior_groups(result: Fit, runs: RunTable, seed: int) -> tuple:
    """The ``prior`` (the law's natural parameters and the noise) and ``prior_predictive`` (log loss
    at the runs) groups: draws from the fit's own resolved priors, one chain of :data:`PRIOR_DRAWS`."""
    import xarray as xr

    from bayes_scaling.model.spec import prior_predictive

    check = prior_predictive(runs, law=result.law, likelihood=result.likelihood, priors=result.config["priors"],
                             draws=PRIOR_DRAWS, seed=seed)
    coords = {"chain": [0], "draw": np.arange(PRIOR_DRAWS)}
    prior = xr.Dataset({k: (("chain", "draw"), np.asarray(v, dtype=float)[None, :]) for k, v in check["params"].items()},
                       coords=coords)
    predictive = xr.Dataset({"log_loss": (("chain", "draw", "obs"), check["log_loss"][None])},
                            coords={**coords, "obs": np.arange(len(runs))})
    return prior, predictive


def structural_groups(structural: StructuralError, chains: int, draws: int) -> dict:
    """The DataTree groups of a structural error: its draws with (chain, draw) dimensions, paired with
    the posterior's draws, and the back-tests it learned from (when it kept them)."""
    import xarray as xr

    meta = json.dumps(structural.to_dict(), sort_keys=True, default=float)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    groups = {STRUCTURAL_GROUP: xr.Dataset(
        {k: (("chain", "draw"), np.asarray(getattr(structural, k), dtype=float).reshape(chains, draws))
         for k in PARAMS}, coords=coords, attrs={"meta": meta})}
    if structural.backtests is not None:
        groups[BACKTESTS_GROUP] = xr.Dataset({k: ("backtest_run", structural.backtests[k].to_numpy())
                                              for k in BACKTEST_COLUMNS})
    return groups


def structural_from_groups(group, backtests=None) -> StructuralError:
    """A :class:`StructuralError` from its DataTree groups (format 2's flat ``sample`` layout too)."""
    meta = json.loads(group.attrs["meta"])
    kept = None
    if backtests is not None:
        kept = pd.DataFrame({k: np.asarray(backtests[k].values) for k in BACKTEST_COLUMNS})
    elif "backtest_error" in group.data_vars:  # format 2: the back-tests in the same group
        kept = pd.DataFrame({k: np.asarray(group[f"backtest_{k}"].values) for k in BACKTEST_COLUMNS})

    def flat(name):
        return np.asarray(group[name].values, dtype=float).reshape(-1)

    rho = flat("rho") if "rho" in group.data_vars else None  # saved before ρ
    return StructuralError(flat("b"), flat("tau"), flat("omega"), c_ref=float(meta["c_ref"]), source=meta["source"],
                           info=meta["info"], backtests=kept, rho=rho)

