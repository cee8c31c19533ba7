"""Measured inference energy: a hierarchical regression of GPU energy per output token.

Fitted to the ML.ENERGY leaderboard (dataset ``ml-energy-llm``: 565 serving configurations of
27 LLMs on H100 and B200 GPUs).  For configuration *i* of model family *f*::

    log J_i = a + b_active·(log N_active − c) + b_sparse·log(N_total / N_active)
                + b_batch·(log batch − c_b) + b_gpus·log2(GPUs)
                + γ_gpu + γ_precision + γ_architecture + γ_task + u_f + ε_i
    u_f ~ Normal(0, τ)       (a new model is a new family: a fresh draw of u)
    ε_i ~ Normal(0, σ)

Categorical effects are relative to H100, BF16, dense and lm-arena-chat.  The measured energy
is of the GPUs alone; :meth:`InferenceEnergy.joules_per_token` adds the host's share and the
data centre's PUE when asked (``scope``), as stated priors.  :func:`leave_one_model_out`
checks the predictive intervals of models the fit has not seen.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import DataWarning, InputError

__all__ = ['InferenceEnergy', 'leave_one_model_out', 'LEVELS', 'SCOPES', 'HOST_SHARE']

log = logging.getLogger(__name__)

#: Levels of each categorical effect; the first is the reference.
LEVELS: dict[str, tuple[str, ...]] = {
    "gpu": ("H100", "B200"),
    "weight_precision": ("bfloat16", "fp8", "mxfp4"),
    "architecture": ("Dense Transformer", "MoE", "Mamba-Transformer Hybrid"),
    "task": ("lm-arena-chat", "gpqa", "sourcegraph-fim"),
}
_ALIASES = {"bf16": "bfloat16", "fp8": "fp8", "mxfp4": "mxfp4", "fp4": "mxfp4", "4bit": "mxfp4",
            "dense": "Dense Transformer", "moe": "MoE", "hybrid": "Mamba-Transformer Hybrid"}
#: Where the energy is counted: the GPUs (as measured), the whole server, or the facility (× PUE).
SCOPES = ("gpu", "server", "facility")
#: Server ÷ GPU energy: log-normal (median 1.3, 90% within 1.15–1.5; CPUs, memory, network,
#: fans beside 8 GPUs). A stated prior, not a measurement.
HOST_SHARE = (math.log(1.3), 0.08)
_NUMERIC = ("x_active", "x_sparse", "x_batch", "x_gpus")


def _level(kind: str, value: str) -> int:
    name = _ALIASES.get(str(value).lower(), value)
    levels = LEVELS[kind]
    if name not in levels:
        raise InputError(f"unknown {kind.replace('_', ' ')} {value!r}; the measurements have {', '.join(levels)}")
    return levels.index(name)


@dataclass(frozen=True)
class _Design:
    x: np.ndarray          # (rows, 4) numeric covariates, centred
    codes: dict[str, np.ndarray]
    family: np.ndarray     # family index per row
    y: np.ndarray          # log J per token

    @classmethod
    def of(cls, table: pd.DataFrame, centres: dict[str, float], families: Sequence[str]) -> _Design:
        active = table["active_params_b"].to_numpy(float)
        total = table["total_params_b"].to_numpy(float)
        x = np.column_stack([np.log(active) - centres["log_active"], np.log(total / active),
                             np.log(table["avg_batch_size"].to_numpy(float)) - centres["log_batch"],
                             np.log2(table["num_gpus"].to_numpy(float))])
        codes = {k: np.array([_level(k, v) for v in table[k]], dtype=np.int64) for k in LEVELS}
        index = {f: i for i, f in enumerate(families)}
        family = np.array([index.get(f, -1) for f in table.get("family", pd.Series([""] * len(table)))])
        y = np.log(table["energy_per_token_j"].to_numpy(float)) if "energy_per_token_j" in table else np.zeros(len(table))
        return cls(x, codes, family, y)


def _build(design: _Design, n_families: int):
    import pymc as pm

    coords = {"covariate": list(_NUMERIC), "family": list(range(n_families)),
              **{k: list(v[1:]) for k, v in LEVELS.items()}}
    with pm.Model(coords=coords) as model:
        x = pm.Data("x", design.x)
        y = pm.Data("y", design.y)
        fam = pm.Data("family_index", design.family)
        codes = {k: pm.Data(f"code_{k}", v) for k, v in design.codes.items()}
        a = pm.Normal("a", 0.0, 2.0)
        b = pm.Normal("b", 0.0, 1.0, dims="covariate")
        mu = a + pm.math.dot(x, b)
        for k, levels in LEVELS.items():
            effect = pm.Normal(f"effect_{k}", 0.0, 1.0, dims=k)
            full = pm.math.concatenate([np.zeros(1), effect])
            mu = mu + full[codes[k]]
        tau = pm.HalfNormal("tau", 1.0)
        # Centred: every family has ~25 measured configurations, so the data pin each effect down.
        u = pm.Normal("u", 0.0, tau, dims="family")
        mu = mu + u[fam]
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("log_j", mu, sigma, observed=y, shape=x.shape[0])
    return model


@dataclass
class InferenceEnergy:
    """Posterior of the energy-per-token regression; predictive draws for new serving setups.

    Build with :meth:`fit`.  ``draws`` maps each parameter to its flattened posterior draws.

    Parameters
    ----------
    draws
        Posterior draws by name.
    families
        Model families fitted.
    centres
        Centres of the predictors.
    ranges
        Ranges of the predictors.
    diagnostics
        Sampling diagnostics.
    n_rows
        Measurements fitted.
    """

    draws: dict[str, np.ndarray]
    families: list[str]
    centres: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    diagnostics: Any
    n_rows: int

    @classmethod
    def fit(cls, table: pd.DataFrame | None = None, *, exclude_families: Sequence[str] = (), draws: int = 1000,
            tune: int = 1000, chains: int = 4, seed: int = 0) -> InferenceEnergy:
        """Sample the regression on ``table`` (default: the ``ml-energy-llm`` dataset) without the
        configurations of ``exclude_families``."""
        from bayes_scaling.sampling.diagnostics import check_sampling
        from bayes_scaling.sampling.nuts import run_sampler
        from bayes_scaling.sampling.settings import SamplerSettings

        if table is None:
            from bayes_scaling.data.datasets import load_dataset

            table = load_dataset("ml-energy-llm")
        keep = ~table["family"].isin(list(exclude_families))
        train = table.loc[keep].reset_index(drop=True)
        if len(train) < 20:
            raise InputError(f"only {len(train)} configurations to fit the inference-energy model; need ≥ 20")
        families = sorted(train["family"].unique())
        centres = {"log_active": float(np.log(train["active_params_b"]).mean()),
                   "log_batch": float(np.log(train["avg_batch_size"]).mean())}
        design = _Design.of(train, centres, families)
        data = {"x": design.x, "y": design.y, "family_index": design.family,
                **{f"code_{k}": v for k, v in design.codes.items()}}
        # A hierarchical sd over ~23 families: a higher target acceptance avoids stray divergences.
        settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed, target_accept=0.95)
        # One compiled model per number of families: leave-one-out refits swap data into it.
        tree, _ = run_sampler(lambda: _build(design, len(families)), settings,
                              key=f"inference-energy:{len(families)}", data=data)
        names = ["a", "b", "tau", "sigma", "u", *(f"effect_{k}" for k in LEVELS)]
        diag = check_sampling(tree, ["a", "b", "tau", "sigma"], label="inference-energy model")
        post = tree["posterior"].to_dataset()
        flat = {n: post[n].to_numpy().reshape(-1, *post[n].shape[2:]) for n in names}
        ranges = {"active_params_b": (float(train["active_params_b"].min()), float(train["active_params_b"].max())),
                  "avg_batch_size": (float(train["avg_batch_size"].min()), float(train["avg_batch_size"].max()))}
        return cls(flat, families, centres, ranges, diag, len(train))

    @property
    def n_draws(self) -> int:
        return len(self.draws["a"])

    def log_joules(self, configs: pd.DataFrame, *, seed: int = 0, new_model: bool = True) -> np.ndarray:
        """Predictive draws of log J per output token (GPUs only), shape (draws, rows).

        With ``new_model`` (default) each row's model is new to the fit: a fresh family effect per
        draw (shared by the rows of one ``family`` if that column is given) and fresh noise.
        Otherwise rows of a family the fit has seen use its effect.

        Parameters
        ----------
        configs
            Serving configurations, one per row.
        seed
            Random seed.
        new_model
            As a model not measured (its family effect drawn anew).

        Returns
        -------
        numpy.ndarray
            (draws, rows).
        """
        rng = np.random.default_rng(seed)
        configs = configs.reset_index(drop=True)
        design = _Design.of(configs, self.centres, self.families)
        d = self.draws
        mu = d["a"][:, None] + d["b"] @ design.x.T
        for k in LEVELS:
            full = np.column_stack([np.zeros(self.n_draws), d[f"effect_{k}"]])
            mu = mu + full[:, design.codes[k]]
        labels = configs["family"].to_numpy() if "family" in configs else np.arange(len(configs)).astype(str)
        unique, inverse = np.unique(labels, return_inverse=True)
        fresh = rng.standard_normal((self.n_draws, len(unique)))[:, inverse]
        if new_model:
            u = fresh
        else:
            seen = design.family >= 0
            u = np.where(seen[None, :], d["u"][:, np.maximum(design.family, 0)] / d["tau"][:, None], fresh)
        noise = rng.standard_normal(mu.shape) * d["sigma"][:, None]
        return mu + d["tau"][:, None] * u + noise

    def joules_per_token(self, active_params: float, *, total_params: float | None = None, gpu: str = "H100",
                         precision: str = "bf16", architecture: str | None = None, batch: float = 64.0,
                         num_gpus: int | None = None, task: str = "lm-arena-chat", scope: str = "gpu",
                         pue: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Draws of the energy per output token (J) of a new model served as described.

        Parameters
        ----------
        active_params, total_params
            Parameters used per token and in all (mixture of experts: total > active); counts,
            not billions.  ``total_params`` defaults to ``active_params`` (dense).
        gpu, precision, architecture, task
            Levels of :data:`LEVELS` (``precision`` accepts bf16/fp8/mxfp4).  ``architecture``
            defaults to MoE when total > active, else dense.
        batch
            Sequences served together (the measurements span about 7–4,000).
        num_gpus
            GPUs serving one copy; default: the fewest (1, 2, 4, 8) whose memory holds the weights
            with 30% to spare (H100 80 GB, B200 180 GB).
        scope
            ``"gpu"`` (as measured), ``"server"`` (× :data:`HOST_SHARE`) or ``"facility"``
            (× host share × ``pue`` draws, which must then be given).

        Parameters
        ----------
        active_params
            Active parameters.
        total_params
            Total parameters (MoE; None: dense).
        gpu
            ``"H100"`` or ``"B200"``.
        precision
            ``"bf16"`` or ``"fp8"``.
        architecture
            Dense, MoE or Mamba hybrid (None: from the parameters).
        batch
            Concurrent requests served.
        num_gpus
            GPUs serving the model.
        task
            The serving task (as in the measurements).
        scope
            ``"gpu"``, ``"server"`` or ``"facility"``.
        pue
            PUE draws for the facility scope.
        seed
            Random seed.

        Returns
        -------
        numpy.ndarray
            Draws of J per output token.
        """
        if scope not in SCOPES:
            raise InputError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not (active_params > 0 and math.isfinite(active_params)):
            raise InputError(f"active_params must be a positive number, got {active_params!r}")
        total = float(total_params or active_params)
        if total < active_params:
            raise InputError(f"total_params ({total:.3g}) is below active_params ({active_params:.3g})")
        if not batch > 0:
            raise InputError(f"batch must be positive, got {batch!r}")
        precision_level = LEVELS["weight_precision"][_level("weight_precision", precision)]
        if num_gpus is None:
            bytes_per = {"bfloat16": 2.0, "fp8": 1.0, "mxfp4": 0.55}[precision_level]
            memory = {"H100": 80e9, "B200": 180e9}[LEVELS["gpu"][_level("gpu", gpu)]]
            num_gpus = next((g for g in (1, 2, 4, 8) if total * bytes_per * 1.3 <= g * memory), 8)
        arch = architecture or ("MoE" if total > active_params else "Dense Transformer")
        billions = active_params / 1e9
        lo, hi = self.ranges["active_params_b"]
        if not lo / 3 <= billions <= hi * 3:
            warnings.warn(DataWarning(
                f"{billions:.3g}B active parameters is far outside the measured models ({lo:g}–{hi:g}B); the "
                f"energy per token extrapolates the fitted power law"), stacklevel=2)
        config = pd.DataFrame([{"active_params_b": billions, "total_params_b": total / 1e9, "avg_batch_size": batch,
                                "num_gpus": num_gpus, "gpu": gpu if gpu in LEVELS["gpu"] else LEVELS["gpu"][_level("gpu", gpu)],
                                "weight_precision": precision_level, "architecture": arch, "task": task}])
        joules = np.exp(self.log_joules(config, seed=seed)[:, 0])
        if scope != "gpu":
            rng = np.random.default_rng([seed, 7])
            joules = joules * np.exp(rng.normal(*HOST_SHARE, joules.size))
        if scope == "facility":
            if pue is None:
                raise InputError("scope='facility' needs PUE draws (pue=EnergyModel.pue(rng))")
            joules = joules * np.resize(np.asarray(pue, dtype=float), joules.size)
        return joules

    def summary(self, *, level: float = 0.9) -> pd.DataFrame:
        """Medians and equal-tailed intervals of the coefficients (on log J per token).

        Parameters
        ----------
        level
            Probability of the intervals.

        Returns
        -------
        pandas.DataFrame
        """
        from bayes_scaling.intervals import summarize

        rows: dict[str, np.ndarray] = {"intercept (H100, BF16, dense, chat)": self.draws["a"]}
        labels = {"x_active": "per e-fold of active parameters", "x_sparse": "per e-fold of total/active",
                  "x_batch": "per e-fold of batch size", "x_gpus": "per doubling of GPUs"}
        for i, name in enumerate(_NUMERIC):
            rows[labels[name]] = self.draws["b"][:, i]
        for k, levels in LEVELS.items():
            for j, lev in enumerate(levels[1:]):
                rows[f"{k}: {lev}"] = self.draws[f"effect_{k}"][:, j]
        rows["model-to-model sd (tau)"] = self.draws["tau"]
        rows["configuration sd (sigma)"] = self.draws["sigma"]
        table = summarize(np.column_stack(list(rows.values())), ci_prob=level)
        table.index = pd.Index(list(rows), name="coefficient (log J per token)")
        return table


def leave_one_model_out(table: pd.DataFrame | None = None, *, families: Sequence[str] | None = None,
                        level: float = 0.9, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
                        progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Refit without each model family in turn and score its measured configurations.

    Returns one row per held-out configuration (observed J per token, predictive median and
    ``level`` interval, inside) with ``attrs["coverage"]`` overall and by architecture and GPU,
    and ``attrs["median_abs_log_error"]``.

    Parameters
    ----------
    table
        The measurements (default: ``ml-energy-llm``).
    families
        Families to leave out (default: all).
    level
        Probability of the credible intervals.
    draws
        Number of draws.
    tune
        Tuning steps per chain.
    chains
        Chains.
    seed
        Random seed; the same seed gives the same result.
    progress
        Called with a line of progress text (None: quiet).

    Returns
    -------
    pandas.DataFrame
        One row per left-out family.
    """
    if table is None:
        from bayes_scaling.data.datasets import load_dataset

        table = load_dataset("ml-energy-llm")
    families = list(families) if families is not None else sorted(table["family"].unique())
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    rows, troubled = [], []
    for i, family in enumerate(families):
        with warnings.catch_warnings():  # one summary below, not a warning per refit
            warnings.simplefilter("ignore")
            model = InferenceEnergy.fit(table, exclude_families=[family], draws=draws, tune=tune, chains=chains,
                                        seed=seed)
        if not model.diagnostics.ok:
            troubled.append(family)
        held = table.loc[table["family"] == family].reset_index(drop=True)
        log_j = model.log_joules(held, seed=seed + i)
        q = np.quantile(log_j, [lo_q, 0.5, hi_q], axis=0)
        observed = np.log(held["energy_per_token_j"].to_numpy(float))
        rows.append(held[["family", "model_id", "architecture", "gpu", "weight_precision", "task", "num_gpus",
                          "avg_batch_size", "energy_per_token_j"]].assign(
            predicted_j=np.exp(q[1]), lower_j=np.exp(q[0]), upper_j=np.exp(q[2]),
            inside=(observed >= q[0]) & (observed <= q[2]), log_error=q[1] - observed,
            diagnostics_ok=model.diagnostics.ok))
        if progress:
            progress(f"[{i + 1}/{len(families)}] left out {family}: {rows[-1]['inside'].mean():.0%} of "
                     f"{len(held)} configurations inside the {level:.0%} interval")
    out = pd.concat(rows, ignore_index=True)
    out.attrs = {"level": level}
    if troubled:
        from bayes_scaling.sampling.diagnostics import SamplingWarning

        warnings.warn(SamplingWarning(
            f"leave-one-model-out: the refits without {len(troubled)} of {len(families)} families had sampling "
            f"problems ({', '.join(troubled[:3])}{' …' if len(troubled) > 3 else ''}); draw more (draws=)"),
            stacklevel=2)
    out.attrs["coverage"] = {"all": float(out["inside"].mean()),
                             **{f"architecture: {k}": float(v) for k, v in out.groupby("architecture")["inside"].mean().items()},
                             **{f"gpu: {k}": float(v) for k, v in out.groupby("gpu")["inside"].mean().items()}}
    out.attrs["median_abs_log_error"] = {"all": float(out["log_error"].abs().median()),
                                         **{f"architecture: {k}": float(v) for k, v in
                                            out.groupby("architecture")["log_error"].apply(lambda e: e.abs().median()).items()},
                                         **{f"gpu: {k}": float(v) for k, v in
                                            out.groupby("gpu")["log_error"].apply(lambda e: e.abs().median()).items()}}
    return out
