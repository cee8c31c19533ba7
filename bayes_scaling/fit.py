"""Fit a scaling law to runs: :func:`fit` returns a :class:`Fit`, which saves to one
netCDF file and loads back exactly (:func:`load_fit`).

A saved fit holds an ArviZ 1 DataTree (groups ``posterior``, ``sample_stats``,
``log_likelihood``, ``posterior_predictive``, ``observed_data`` and ``constant_data``) and,
as attributes of its posterior group, the full configuration as JSON, SHA-256 hashes of that
configuration and of the posterior draws, and a file-format version.  Loading checks all of
them, and checks that the stored runs still have the fingerprint the configuration names.

File formats: 1 was written by bayes_scaling 0.1 (ArviZ 0.x InferenceData; no hash of the
draws); 2 (this version) adds the hash of the draws.  A format-1 file is converted on load
(its groups are the same netCDF groups) with a warning that its draws cannot be verified;
saving it again writes format 2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .diagnostics import Diagnostics, check_sampling
from .discrepancy import (BACKTEST_COLUMNS, DISCREPANCIES, LEARNING, PARAMS, StructuralError, kept_backtests,
                          load_population, update)
from .errors import DataWarning, InputError
from .intervals import DEFAULT_LEVEL
from .laws import NUMPY, ScalingLaw, get_law
from .likelihoods import Likelihood, get_likelihood
from .model import (POOLING, ModelSpec, build_model, group_index, log_inputs, model_data, raw_initial_points,
                    structure_key)
from .outputs import atomic_file
from .priors import DataStats, resolve_priors
from .rolling import backtest_sampler, internal_errors, min_train_runs, training_window
from .runs import RunTable
from .sampling import SamplerSettings, run_sampler

__all__ = ["Fit", "fit", "load_fit", "prior_predictive", "model_spec", "FitFileError", "FORMAT_VERSION",
           "literature_values"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
#: Older formats that load_fit converts.
CONVERTIBLE_FORMATS = (1,)
_ATTR = "bayes_scaling_"
#: The DataTree group holding the draws of the structural error (b, τ, ω).
STRUCTURAL_GROUP = "structural_error"
#: Groups a fit file leaves out because they follow from the draws, the runs and the seed.
DERIVED_GROUPS = ("log_likelihood", "posterior_predictive")

# Which rows of the published-fits dataset inform which law's literature priors.
_LITERATURE_SOURCES = {
    "chinchilla": ("chinchilla", "Hoffmann et al. 2022 Approach 3"),
    "kaplan-n": ("kaplan-n", "Kaplan et al. 2020"),
    "kaplan-d": ("kaplan-d", "Kaplan et al. 2020"),
    "data-constrained": ("data-constrained", "Muennighoff et al. 2023"),
}


class FitFileError(InputError):
    """A saved fit cannot be loaded: not a fit file, modified, or made for another model."""


def package_versions(packages: Sequence[str] = ("bayes-scaling", "pymc", "pytensor", "arviz", "numpy", "nutpie")
                     ) -> dict[str, str]:
    """Installed versions of bayes_scaling and the libraries its results depend on (or of ``packages``)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the configuration as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def literature_values(law: ScalingLaw) -> dict[str, float]:
    """Published parameter values for ``law`` from the ``published-fits`` dataset ({} if none)."""
    if law.name not in _LITERATURE_SOURCES:
        return {}
    from .datasets import load_dataset

    table = load_dataset("published-fits")
    law_key, source = _LITERATURE_SOURCES[law.name]
    rows = table[(table["law"] == law_key) & (table["source"] == source)]
    return {str(r.parameter): float(r.value) for r in rows.itertuples()}


@dataclass
class Fit:
    """A fitted scaling law: posterior draws, configuration, diagnostics.

    Attributes
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

    idata: Any
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
        group = self.idata[STRUCTURAL_GROUP]
        meta = json.loads(group.attrs["meta"])
        backtests = None
        if "backtest_error" in group.data_vars:
            backtests = pd.DataFrame({k: np.asarray(group[f"backtest_{k}"].values) for k in BACKTEST_COLUMNS})
        rho = np.asarray(group["rho"].values, dtype=float) if "rho" in group.data_vars else None  # saved before ρ
        return StructuralError(*(np.asarray(group[k].values, dtype=float) for k in ("b", "tau", "omega")),
                               c_ref=float(meta["c_ref"]), source=meta["source"], info=meta["info"],
                               backtests=backtests, rho=rho)

    # ------------------------------------------------------------------ draws
    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of a parameter, chains stacked: shape (S,) or (S, groups)."""
        post = self.idata["posterior"]
        if name not in post.data_vars:
            raise InputError(f"no parameter {name!r} in the posterior; it has {', '.join(post.data_vars)}")
        values = np.asarray(post[name].values, dtype=float)
        return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])

    def params(self) -> dict[str, np.ndarray]:
        """Every natural parameter's draws, by name."""
        return {name: self.draws(name) for name in self.law.param_names}

    def noise(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Draws of the noise scale and of the likelihood's extra parameters."""
        return self.draws("sigma"), {k: self.draws(k) for k in self.likelihood.extra}

    def log_mu(self, runs: RunTable, *, group: str | None = None) -> np.ndarray:
        """Posterior draws of the law's log loss at each run: shape (S, len(runs))."""
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
        """The law of the :attr:`central_draw` at each run: shape (1, len(runs))."""
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
        """log p(log loss of each run | draw): shape (S, len(runs)); scores held-out runs too."""
        sigma, extra = self.noise()
        mu = self.log_mu(runs, group=group)
        return self.likelihood.logpdf(np.log(runs.loss)[None, :], mu, sigma[:, None],
                                      {k: v[:, None] for k, v in extra.items()})

    def predictive_log_draws(self, runs: RunTable, *, seed: int | list[int] = 0,
                             group: str | None = None) -> np.ndarray:
        """Replicated log losses of each run: shape (S, len(runs)).

        The law, the fitted noise, and — for runs beyond the training data — the structural error.
        """
        sigma, extra = self.noise()
        rng = np.random.default_rng(seed)
        draws = self.likelihood.draw(rng, self.log_mu(runs, group=group), sigma[:, None],
                                     {k: v[:, None] for k, v in extra.items()})
        if self.structural is not None and np.any(runs.C > self.structural.c_ref):
            draws = self.structural.forecast(draws, self.central_log_mu(runs, group=group), runs.C, rng)
        return draws

    # ------------------------------------------------------------------ summaries
    def summary(self, *, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """Mean, sd, median, equal-tailed interval, ESS and R-hat of every reported parameter."""
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
        """Write one netCDF file, atomically; refuse to replace an existing file unless ``overwrite``."""
        target = Path(path)
        if target.exists() and not overwrite:
            raise InputError(f"{target} exists; pass overwrite=True (command line: --force) to replace it")
        if not target.parent.is_dir():
            raise InputError(f"{target.parent} is not a folder")
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
        with atomic_file(target) as tmp:
            stored.to_netcdf(str(tmp))
        log.debug("saved fit to %s", target)
        return target


def draws_hash(tree) -> str:
    """SHA-256 of the posterior draws and of the structural-error draws (every variable, sorted by
    name, as float64 bytes)."""
    digest = hashlib.sha256()
    for group in ("posterior", STRUCTURAL_GROUP):
        if group not in tree.children:
            continue
        node = tree[group]
        for name in sorted(node.data_vars):
            values = np.ascontiguousarray(np.asarray(node[name].values, dtype=float))
            digest.update(f"{group}/{name}{values.shape}".encode())
            digest.update(values.tobytes())
        digest.update(str(node.attrs.get("meta", "")).encode())
    return digest.hexdigest()


def _read_tree(source: Path):
    """The whole DataTree of a netCDF file, in memory, with the file closed again."""
    import xarray as xr

    try:
        with xr.open_datatree(str(source)) as opened:
            return opened.load().copy(deep=True)
    except Exception as exc:  # netCDF/HDF5 raise many types for non-netCDF input
        raise FitFileError(f"{source}: not a readable netCDF fit file ({type(exc).__name__}: {exc})") from None


def _convert_format_1(tree, source: Path):
    """Format 1 (ArviZ 0.x InferenceData) has the same groups; keep only the kept sample stats."""
    import xarray as xr

    from .sampling import KEPT_STATS

    warnings.warn(f"{source}: fit-file format 1 (bayes_scaling 0.1) converted on load; its posterior draws "
                  f"carry no hash and cannot be verified. Save the fit again to write format {FORMAT_VERSION}.",
                  DataWarning, stacklevel=3)
    groups = {name: tree[name].to_dataset() for name in tree.children}
    if "sample_stats" in groups:
        stats = groups["sample_stats"]
        groups["sample_stats"] = stats[[n for n in KEPT_STATS if n in stats.data_vars]]
    return xr.DataTree.from_dict(groups)


def load_fit(path: str | os.PathLike, *, law: str | None = None, likelihood: str | None = None,
             pooling: str | None = None, fingerprint: str | None = None) -> Fit:
    """Load a fit saved by :meth:`Fit.save`.

    The keyword arguments state what the caller expects; a file made for another law,
    likelihood, pooling or data is refused, as is a file modified since it was written or
    written in another format version.

    Raises
    ------
    FitFileError
        With the reason and the file name.
    """
    source = Path(path)
    if not source.is_file():
        raise FitFileError(f"{source}: no such fit file")
    idata = _read_tree(source)
    attrs = dict(idata["posterior"].attrs) if "posterior" in idata.children else {}
    if _ATTR + "config" not in attrs:
        raise FitFileError(f"{source}: a netCDF file, but not one written by bayes_scaling (no configuration)")
    try:
        fmt = int(attrs.get(_ATTR + "format", -1))
    except (TypeError, ValueError):
        raise FitFileError(f"{source}: its format attribute {attrs[_ATTR + 'format']!r} is not a format version; "
                           f"the file was modified") from None
    try:
        config = json.loads(attrs[_ATTR + "config"])
    except (TypeError, ValueError):
        raise FitFileError(f"{source}: its stored configuration is not valid JSON; the file was modified") from None
    if not isinstance(config, dict):
        raise FitFileError(f"{source}: its stored configuration is not a table of settings; the file was modified")
    try:
        return _checked_fit(source, idata, attrs, fmt, config, law=law, likelihood=likelihood, pooling=pooling,
                            fingerprint=fingerprint)
    except KeyError as exc:
        raise FitFileError(f"{source}: its stored configuration lacks {exc}; the file was modified or written by "
                           f"an incompatible version") from None


def _checked_fit(source: Path, idata, attrs: Mapping[str, Any], fmt: int, config: dict[str, Any], *,
                 law: str | None, likelihood: str | None, pooling: str | None, fingerprint: str | None) -> Fit:
    if fmt != FORMAT_VERSION and fmt not in CONVERTIBLE_FORMATS:
        raise FitFileError(f"{source}: written in fit-file format {fmt} by bayes_scaling "
                           f"{config.get('versions', {}).get('bayes-scaling', '?')}; this version reads formats "
                           f"{', '.join(map(str, (*CONVERTIBLE_FORMATS, FORMAT_VERSION)))}. Re-run the fit, or use "
                           f"a matching bayes_scaling.")
    if config_hash(config) != attrs.get(_ATTR + "config_hash"):
        raise FitFileError(f"{source}: the stored configuration does not match its hash; the file was modified")
    if fmt == FORMAT_VERSION:
        if draws_hash(idata) != attrs.get(_ATTR + "draws_hash"):
            raise FitFileError(f"{source}: the posterior draws do not match their hash; the file was modified")
    else:
        idata = _convert_format_1(idata, source)
    expected = {"law": law, "likelihood": likelihood, "pooling": pooling}
    actual = {"law": config["law"], "likelihood": config["likelihood"]["name"], "pooling": config["pooling"]}
    for key, want in expected.items():
        if want is not None and want != actual[key]:
            raise FitFileError(f"{source}: holds a fit with {key} {actual[key]!r}, not the expected {want!r}")
    timing = json.loads(attrs.get(_ATTR + "timing", "{}"))
    diagnostics = (check_sampling(idata, _diagnosed(idata, config), label=str(source))
                   if "sample_stats" in idata.children else None)
    result = Fit(idata=idata, config=config, diagnostics=diagnostics, timing=timing)
    if not all(group in idata.children for group in DERIVED_GROUPS):
        _derive_groups(result, result.runs, config["sampler"]["seed"])
    actual_fp = result.runs.fingerprint()
    if actual_fp != config["data"]["fingerprint"]:
        raise FitFileError(f"{source}: the stored runs do not match the configuration's data fingerprint")
    if fingerprint is not None and fingerprint != actual_fp:
        raise FitFileError(f"{source}: fitted to other data (fingerprint {actual_fp[:12]}…, "
                           f"expected {fingerprint[:12]}…)")
    return result


def _diagnosed(idata, config: Mapping[str, Any]) -> list[str]:
    law = get_law(config["law"])
    names = [*law.param_names, "sigma", *get_likelihood(config["likelihood"]["name"]).extra]
    return [n for n in names if n in idata["posterior"].data_vars]


def model_spec(runs: RunTable, law: ScalingLaw, likelihood: Likelihood, *, priors: Mapping[str, Any] | None = None,
               prior_set: str = "default", pooling: str = "shared", groups: tuple[str, ...] = ()) -> ModelSpec:
    """Resolve the priors (data-scaled defaults ← literature ← overrides) into a model specification."""
    if prior_set not in ("default", "literature"):
        raise InputError(f"prior_set must be 'default' or 'literature', not {prior_set!r}")
    stats = DataStats.from_runs(runs)
    defaults = {**law.default_priors(stats), "sigma": likelihood.noise_prior(), **likelihood.extra}
    base = {}
    if prior_set == "literature":
        base = law.literature_priors(stats, literature_values(law))
        if not base:
            raise InputError(f"no published fit informs law {law.name!r}; use prior_set='default'")
    positive = {s.name for s in law.sampled if s.name != "c1"} | {"sigma", *likelihood.extra}
    resolved = resolve_priors(defaults, base=base, overrides=priors, positive=positive)
    return ModelSpec(law, likelihood, resolved, pooling, groups, stats)


def prior_predictive(runs: Any, *, law: str | ScalingLaw = "chinchilla", likelihood: str | Likelihood = "student-t",
                     priors: Mapping[str, Any] | None = None, prior_set: str = "default", draws: int = 500,
                     seed: int = 0) -> dict[str, Any]:
    """Prior predictive check: draws of the parameters and of replicated log losses at the runs.

    Sampled in numpy from the same priors and law the fit uses (one group; no compile).
    Returns ``params`` (natural parameters, each of shape (draws,)), ``log_mu`` and
    ``log_loss`` (shape (draws, runs)), and the resolved ``priors``.
    """
    from .datasets import runs_from

    table = runs_from(runs)
    law_obj, lik = get_law(law), get_likelihood(likelihood)
    spec = model_spec(table, law_obj, lik, priors=priors, prior_set=prior_set)
    rng = np.random.default_rng([seed, 3])
    sampled = {name: spec.priors[name].sample(rng, draws) for name in law_obj.sampled_names}
    params = law_obj.natural(NUMPY, sampled, spec.stats.centre)
    x = {k: v[None, :] for k, v in log_inputs(law_obj, table).items()}
    with np.errstate(over="ignore", invalid="ignore"):
        log_mu = law_obj.log_loss(NUMPY, x, {k: np.asarray(v)[:, None] for k, v in params.items()})
        sigma = spec.priors["sigma"].sample(rng, draws)[:, None]
        extra = {k: spec.priors[k].sample(rng, draws)[:, None] for k in lik.extra}
        replicated = lik.draw(rng, log_mu, sigma, extra)
    return {"params": params, "log_mu": log_mu, "log_loss": replicated, "priors": spec.priors, "runs": table,
            "law": law_obj}


def fit(runs: Any, *, law: str | ScalingLaw = "chinchilla", likelihood: str | Likelihood = "student-t",
        priors: Mapping[str, Any] | None = None, prior_set: str = "default", pooling: str = "shared",
        draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0, sampler: str = "auto",
        target_accept: float = 0.9, strict: bool = False, progress: bool = False,
        huber_delta: float = 1e-3, discrepancy: str = "scaled", backtests: bool = True,
        window: float | None = None, cache_dir: str | os.PathLike | None = None) -> Fit:
    """Fit a scaling law to training runs by NUTS.

    Parameters
    ----------
    runs
        A :class:`RunTable`, a DataFrame, a file path or a dataset name (e.g. ``"chinchilla"``).
    law
        A law name (``bayes_scaling.laws.LAWS``) or a :class:`ScalingLaw`.
    likelihood
        ``"student-t"`` (default), ``"normal"`` or ``"huber"``, on log loss.
    priors
        Overrides by sampled-parameter name, e.g. ``{"alpha": "LogNormal(mu=-1.08, sigma=0.2)"}``.
    prior_set
        ``"default"`` (weakly informative, scaled to the data) or ``"literature"`` (centred
        on the published fit in the ``published-fits`` dataset).
    pooling
        With a ``group`` column: ``"shared"``, ``"partial"`` or ``"separate"`` exponents.
    draws, tune, chains, seed, sampler, target_accept
        Sampler settings; an integer ``seed`` reproduces the draws exactly.  ``target_accept``
        defaults to 0.9: with the heavy-tailed Student-t likelihood on the Chinchilla runs,
        0.8 left 0–2 divergent transitions per fit and 0.9 none, at the same speed.
    strict
        Raise :class:`SamplingError` instead of warning when diagnostics fail.
    huber_delta
        Threshold of the Huber likelihood (Hoffmann et al. use 1e-3).
    discrepancy
        The law's structural error beyond the data (:mod:`bayes_scaling.discrepancy`), drawn
        from the population learned from rolling back-tests of published datasets:
        ``"scaled"`` (default) with its size of drift and scatter updated by the back-tests of
        these runs, either direction of the drift left open (without back-tests, the
        population alone); ``"population"`` as for a new dataset, as is; ``"calibrated"``
        updated by these runs' back-tests, direction included; ``"none"`` takes the law as exact
        (the posterior of earlier versions).  Every forecast from the fit includes it.  Leaving
        one dataset out, ``"scaled"`` was the best calibrated per dataset, with intervals
        narrower than the population alone's (``benchmarks/bench_calibration.py``; README).
    backtests
        Refit the law below compute cuts of the runs (a few more fits) and keep how it forecast
        the runs beyond: they weight laws by their forecasts (:func:`~bayes_scaling.compare.lfo_weights`,
        law averages) and are what ``"scaled"`` and ``"calibrated"`` learn from.  Not for
        ``"none"`` or grouped runs.
    window
        Fit only the runs within this many decades of compute below the largest budget (and
        at least the law's minimum number of runs, the largest); None (default) fits every run.
        For forecasts far beyond the data: the law is not exactly true, and its smallest runs
        bend the fit where the form misses them.  Back-tests of the fit use the same window.
    cache_dir
        Keep the back-tests' errors in this folder for later fits of the same runs, law, priors
        and settings (:mod:`bayes_scaling.cache`; the command line's default).  None: refit.

    Returns
    -------
    Fit
    """
    import time

    from .datasets import runs_from

    start = time.perf_counter()
    law_obj = get_law(law)
    table = training_window(runs_from(runs), window, min_runs=min_train_runs(law_obj.name))
    lik = get_likelihood(likelihood, **({"delta": huber_delta} if str(likelihood) == "huber" else {}))
    groups = _checked_inputs(table, law_obj, pooling=pooling, discrepancy=discrepancy, backtests=backtests)
    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                               target_accept=target_accept, progress=progress)
    spec = model_spec(table, law_obj, lik, priors=priors, prior_set=prior_set, pooling=pooling, groups=groups)
    idata, timing = run_sampler(lambda: build_model(spec, table), settings, key=structure_key(spec),
                                data=model_data(spec, table), initial_points=_initial_points(spec, table, seed))
    config = _fit_config(spec, table, settings, prior_set=prior_set, discrepancy=discrepancy, backtests=backtests,
                         window=window)
    return _finished(Fit(idata=idata, config=config, diagnostics=None, timing=timing), table, law_obj, lik,
                     seed=seed, strict=strict, start=start, n_draws=chains * draws, cache_dir=cache_dir,
                     internal={**backtest_sampler(draws=draws, tune=tune, chains=chains), "seed": seed,
                               "sampler": sampler, "target_accept": target_accept, "priors": priors,
                               "prior_set": prior_set, "huber_delta": huber_delta, "window": window})


def _initial_points(spec, table: RunTable, seed: int):
    """Where chains start: at the multi-start optimum for a multimodal law (one group), else NUTS's default."""
    if not spec.law.multimodal or len(spec.groups) > 1:
        return None
    from .classical import sampled_optimum

    optimum = sampled_optimum(table, spec.law, spec.priors, spec.stats.centre, seed=seed)
    log.info("%s is multimodal: chains start at the multi-start optimum %s", spec.law.name, optimum)
    return raw_initial_points(spec, optimum)


def _fit_config(spec, table: RunTable, settings: SamplerSettings, *, prior_set: str, discrepancy: str,
                backtests: bool, window: float | None = None) -> dict[str, Any]:
    """What a fit file records of how the fit was made (hashed; checked on loading)."""
    return {
        "law": spec.law.name,
        "formula": spec.law.formula,
        "likelihood": {"name": spec.likelihood.name, **spec.likelihood.options()},
        "priors": {k: v.to_dict() for k, v in spec.priors.items()},
        "prior_set": prior_set,
        "pooling": spec.pooling,
        "groups": list(spec.groups),
        "stats": spec.stats.to_dict(),
        "data": {"source": table.source, "fingerprint": table.fingerprint(), "rows": len(table),
                 "derived": dict(table.derived)},
        "sampler": settings.to_dict(),
        "versions": package_versions(),
        "discrepancy": discrepancy,
        "backtests": bool(backtests) and discrepancy != "none",
        "backtest_sampler": backtest_sampler(draws=settings.draws, tune=settings.tune, chains=settings.chains),
        "window": window,
    }


def _checked_inputs(table: RunTable, law_obj: ScalingLaw, *, pooling: str, discrepancy: str,
                    backtests: bool) -> tuple[str, ...]:
    """Refuse what cannot be fitted, before any work; returns the groups."""
    if pooling not in POOLING:
        raise InputError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
    if discrepancy not in DISCREPANCIES:
        raise InputError(f"discrepancy must be one of {', '.join(DISCREPANCIES)}, not {discrepancy!r}")
    if discrepancy == "calibrated" and not backtests:
        raise InputError("discrepancy='calibrated' learns from back-tests of the runs: leave backtests on")
    log_inputs(law_obj, table)  # clear error for a missing column, before anything else
    groups = tuple(table.groups) if table.has_groups else ()
    table.require(law_obj.n_params + 1, why=f"law {law_obj.name} has {law_obj.n_params} parameters plus noise")
    if len(groups) > 1:
        counts = table.data["group"].value_counts()
        small = counts[counts < 2]
        if len(small):
            raise InputError(f"{table.source}: group(s) {', '.join(map(str, small.index))} have fewer than 2 runs")
    return groups


def _finished(result: Fit, table: RunTable, law: ScalingLaw, likelihood: Likelihood, *, seed: int, strict: bool,
              start: float, n_draws: int, internal: dict[str, Any],
              cache_dir: str | os.PathLike | None = None) -> Fit:
    """Log-likelihood and predictive draws, the structural error (from refits with ``internal``
    settings) and the sampling diagnostics, added to a freshly sampled fit."""
    import time

    config, timing = result.config, result.timing
    _complete_idata(result, table, seed)
    if config["discrepancy"] != "none":
        start_se = time.perf_counter()
        _attach_structural(result, structural_error_for(table, law, likelihood, mode=config["discrepancy"],
                                                        settings=internal, n_draws=n_draws,
                                                        grouped=len(config["groups"]) > 1,
                                                        backtests=config["backtests"], cache_dir=cache_dir))
        timing["structural_error_s"] = time.perf_counter() - start_se
    result.diagnostics = check_sampling(result.idata, _diagnosed(result.idata, config), strict=strict,
                                        label=f"{law.name} fit to {table.source}")
    timing["total_s"] = time.perf_counter() - start
    return result


def _complete_idata(result: Fit, runs: RunTable, seed: int) -> None:
    """Drop transformed variables; add log-likelihood, posterior predictive, observed and constant data."""
    import xarray as xr

    idata = result.idata
    post = idata["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if v.endswith("__")])
    if "group" in post.dims:  # the model indexes groups 0…G−1: give them their names
        post = post.assign_coords(group=result.groups)
    obs = np.arange(len(runs))
    result.idata = xr.DataTree.from_dict({
        "posterior": post,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"log_loss": ("obs", np.log(runs.loss))}, coords={"obs": obs}),
        "constant_data": _constant_data(runs, obs),
    })
    _derive_groups(result, runs, seed)


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


def structural_error_for(runs: RunTable, law: ScalingLaw, likelihood: Likelihood, *, mode: str,
                         settings: dict[str, Any], n_draws: int, grouped: bool = False,
                         backtests: bool = True, cache_dir: str | os.PathLike | None = None) -> StructuralError:
    """The structural error of a fit to ``runs``: the population's predictive for a new dataset
    (``mode="population"``), or that population updated by rolling back-tests of the same law
    on the runs themselves — their size only (``"scaled"``) or direction too (``"calibrated"``).
    With ``backtests`` those refits run in every mode and are kept (they weight laws by how they
    forecast); ``"scaled"`` without them is the population alone."""
    population = load_population(law.name, likelihood.name)
    errors = None
    learns = mode in LEARNING
    if grouped and (backtests or learns):
        # only "calibrated" loses something the user asked for; otherwise the fit just keeps no back-tests
        (log.warning if mode == "calibrated" else log.info)(
            "structural error of a grouped fit: the population alone, no back-tests (back-tests of groups are "
            "not pooled yet)")
    elif backtests or mode == "calibrated":
        errors = internal_errors(runs, law=law.name, likelihood=likelihood.name,
                                 settings={k: v for k, v in settings.items() if v is not None}, cache_dir=cache_dir)
    elif learns:
        log.info("structural error: no back-tests of these runs (backtests=False); the population alone")
    structural = update(population, errors if learns else None, draws=n_draws,
                        c_ref=float(runs.C.max()), seed=int(settings.get("seed", 0)),
                        source=population.attrs.get("source", ""), symmetric=mode == "scaled")
    if errors is not None and len(errors):
        structural.backtests = kept_backtests(errors)
        structural.info["backtest_runs"] = len(errors)
        structural.info["backtest_cuts"] = int(errors["cut"].nunique())
    structural.info["mode"] = mode
    return structural


def _attach_structural(result: Fit, structural: StructuralError) -> None:
    import xarray as xr

    meta = json.dumps(structural.to_dict(), sort_keys=True, default=float)
    data = {k: ("sample", getattr(structural, k)) for k in PARAMS}
    if structural.backtests is not None:  # the internal back-tests, kept to weight laws by their forecasts
        data |= {f"backtest_{k}": ("backtest_run", structural.backtests[k].to_numpy()) for k in BACKTEST_COLUMNS}
    group = xr.Dataset(data, attrs={"meta": meta})
    groups = {name: result.idata[name].to_dataset() for name in result.idata.children}
    result.idata = xr.DataTree.from_dict({**groups, STRUCTURAL_GROUP: group})
    result.__dict__.pop("structural", None)


def _constant_data(runs: RunTable, obs: np.ndarray):
    import xarray as xr

    data = {k: ("obs", runs.column(k)) for k in ("N", "D", "C", "loss")}
    if "unique_tokens" in runs.data.columns:
        data["unique_tokens"] = ("obs", runs.column("unique_tokens"))
    if runs.has_groups:
        data["group"] = ("obs", runs.data["group"].astype(str).to_numpy())
    return xr.Dataset(data, coords={"obs": obs})
