"""Forecasts with credible intervals, in numpy over posterior draws (no PyMC recompile).

From a :class:`~bayes_scaling.posterior.fit_result.Fit`, a :class:`Forecaster` gives posterior draws of

* the loss at given (N, D), or at a compute budget C under a stated allocation
  (compute-optimal, fixed tokens per parameter, or fixed N);
* the compute-optimal allocation N*(C), D*(C), tokens per parameter, and (Chinchilla form)
  the allocation exponents a = β/(α+β), b = α/(α+β);
* the compute (and N*, D*) needed to reach a target loss, with the probability that the
  target is reachable at all.

Two kinds of loss draws are distinguished by name: the **expected loss** (the law's mean
function, the uncertainty in the law) and the **predictive loss** (a new run's loss,
adding the fitted run-to-run scatter).  Every function returns draws; :func:`summarize`
turns draws into medians, equal-tailed or HDI intervals, and arbitrary quantiles.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN
from bayes_scaling.errors import InputError
from bayes_scaling.laws.ops import NUMPY

log = logging.getLogger(__name__)

__all__ = ['Forecaster', 'Allocation']

# Points per block when evaluating a law over (draws × points): blocks of a few MB stay
# in cache and are shared across threads (numpy releases the GIL).
_BLOCK_ELEMENTS = 1 << 19
#: Forecasts further than this many decades of compute beyond the largest run warn.
FAR_DECADES = 3.0
#: Fewer posterior draws than this reaching a target loss: its compute interval warns.
MIN_REACHING_DRAWS = 200
# Search range of log C for the compute that reaches a target loss (1e10 to 1e40 FLOP).
_LOG_C_RANGE = (math.log(1e10), math.log(1e40))


class Allocation(dict):
    """Draws of N*, D* (shape draws × budgets), tokens per parameter, and how they were found."""

    @property
    def method(self) -> str:
        return self["method"]


class Forecaster:
    """Posterior-draw forecasts from a fit.

    Parameters
    ----------
    fit
        A :class:`~bayes_scaling.posterior.fit_result.Fit`.
    group
        For a fit with several groups: the group whose parameters to use.
    max_draws
        Use at most this many posterior draws (evenly thinned), for speed.
    seed
        Seed of the noise added to predictive draws (and of the structural error's slopes).
    discrepancy
        ``"fit"`` (default): include the fit's structural error beyond the data, where it has
        one (:mod:`bayes_scaling.posterior.structural`); ``"none"``: the law alone, taken as exact.

    Beyond the data, every loss draw — expected and predictive, at (N, D) or at a budget,
    and the compute that reaches a target — includes the structural error:
    ``+ (b + τ·z)·d`` in log loss at ``d`` decades of compute beyond the largest training run
    (one slope per draw), and for predictive draws ``+ ω·d·ε`` per run.  And every loss draw's
    spread about the law of the fit's central draw is scaled by its ρ ≤ 1, what its
    back-tests say of how far the law-only posterior overstates its forecasts' errors (the noise of
    a new run too, σ → ρσ): ρ is the limit of the structural error's spread at d → 0, so it
    applies inside the data as well, and the bands stay continuous where the data end.  The
    compute-optimal allocation is the law's own (ρ rescales losses, not parameters).
    """

    def __init__(self, fit, *, group: str | None = None, max_draws: int | None = None, seed: int = 0,
                 discrepancy: str = "fit"):
        self.fit = fit
        self.law = fit.law
        self.likelihood = fit.likelihood
        params = fit.params()
        sigma, extra = fit.noise()
        if fit.grouped:
            if group is None:
                raise InputError(f"this fit has groups ({', '.join(fit.groups)}); say which with group=")
            if group not in fit.groups:
                raise InputError(f"unknown group {group!r}; the fit has {', '.join(fit.groups)}")
            j = fit.groups.index(group)
            params = {k: (v[:, j] if v.ndim == 2 else v) for k, v in params.items()}
        elif group is not None:
            raise InputError("this fit has no groups; leave group unset")
        n = len(sigma)
        keep = np.arange(n) if not max_draws or max_draws >= n else np.linspace(0, n - 1, max_draws).astype(int)
        self.params = {k: np.ascontiguousarray(v[keep]) for k, v in params.items()}
        # a fit near the frontier allocates by the law fitted to every run (Fit.allocation_params)
        allocating = fit.allocation_params() if not fit.grouped else params
        self.allocation_params = {k: np.ascontiguousarray(v[keep]) for k, v in allocating.items()}
        self.sigma = sigma[keep]
        self.extra = {k: v[keep] for k, v in extra.items()}
        self.n_draws = len(keep)
        self._chains = (fit.idata["posterior"].sizes["chain"], fit.idata["posterior"].sizes["draw"])
        self._thinned = len(keep) != n
        self.rng = np.random.default_rng(seed)
        self.group = group
        if discrepancy not in ("fit", "none"):
            raise InputError(f"discrepancy must be 'fit' or 'none', not {discrepancy!r}")
        structural = fit.structural if discrepancy == "fit" else None
        self.structural = structural.thinned(keep) if structural is not None else None
        self._slopes = (self.structural.slopes(np.random.default_rng([seed, 23]))
                        if self.structural is not None else None)
        # the central posterior draw (Fit.central_draw): the law about which ρ rescales forecasts
        self._central = {k: v[fit.central_draw] for k, v in params.items()}

    def subset(self, keep: np.ndarray, *, seed: int | Sequence[int] = 0) -> Forecaster:
        """The same forecasts over the posterior draws ``keep`` only (indices into this one's draws);
        each draw keeps its structural slope.  A law average is made of such subsets.

        Parameters
        ----------
        keep
            Indices of the draws kept.
        seed
            Random seed.

        Returns
        -------
        Forecaster
        """
        keep = np.asarray(keep, dtype=int)
        sub = object.__new__(Forecaster)
        sub.__dict__.update(self.__dict__)
        sub.params = {k: np.ascontiguousarray(v[keep]) for k, v in self.params.items()}
        sub.allocation_params = {k: np.ascontiguousarray(v[keep]) for k, v in self.allocation_params.items()}
        sub.sigma = self.sigma[keep]
        sub.extra = {k: v[keep] for k, v in self.extra.items()}
        sub.n_draws = len(keep)
        sub._thinned = True
        sub.rng = np.random.default_rng(seed)
        sub.structural = self.structural.thinned(keep) if self.structural is not None else None
        sub._slopes = self._slopes[keep] if self._slopes is not None else None
        return sub

    # ------------------------------------------------------------------ structural error
    def decades_beyond_data(self, C: Any) -> np.ndarray:
        """Decades of compute beyond the fit's largest training run (0 inside the data).

        Parameters
        ----------
        C
            Compute budgets in FLOP.

        Returns
        -------
        numpy.ndarray
        """
        return np.maximum(np.log10(np.asarray(C, dtype=float) / self.reference_compute), 0.0)

    @property
    def reference_compute(self) -> float:
        """The compute (FLOP) distances beyond the data are measured from: the structural error's
        largest training budget, else the largest fitted run's."""
        return self.structural.c_ref if self.structural is not None else float(self.fit.runs.C.max())

    @property
    def drift_slopes(self) -> np.ndarray | None:
        """Each draw's structural drift per decade beyond the data, b + τ·z (None without a
        structural error): the slope every forecast of that draw shares."""
        return self._slopes

    def _drift(self, C: np.ndarray) -> np.ndarray | float:
        """The structural drift (b + τz)·d in log loss, shape (draws, points); 0 without one."""
        return 0.0 if self._slopes is None else self.structural.drift(C, self._slopes)

    def _scatter(self, C: np.ndarray) -> np.ndarray | float:
        """A new run's extra structural scatter ω·d·ε, shape (draws, points); 0 without one."""
        return 0.0 if self.structural is None else self.structural.scatter(C, self.rng)

    def _noise_scale(self) -> np.ndarray:
        """The fitted noise scale of a new run, × ρ: shape (draws, 1)."""
        sigma = self.sigma[:, None]
        return sigma if self.structural is None else sigma * self.structural.spread_scale()

    def _law_log_loss(self, x: dict[str, np.ndarray]) -> np.ndarray:
        """The law's log loss over the draws at log inputs ``x`` (broadcast against (draws, k)), its
        spread about the central draw's law (:attr:`Fit.central_draw`) rescaled by ρ."""
        g = self.law.log_loss(NUMPY, x, {k: v[:, None] for k, v in self.params.items()})
        if self.structural is None:
            return g
        return self.structural.respread(g, self.law.log_loss(NUMPY, x, self._central))

    @staticmethod
    def _compute_of(inputs: dict[str, Any]) -> np.ndarray | None:
        if "C" in inputs:
            return np.atleast_1d(np.asarray(inputs["C"], dtype=float))
        if "N" in inputs and "D" in inputs:
            return FLOP_PER_PARAM_TOKEN * np.atleast_1d(np.asarray(inputs["N"], dtype=float)) * \
                np.atleast_1d(np.asarray(inputs["D"], dtype=float))
        return None

    # ------------------------------------------------------------------ the law over draws
    def _evaluate(self, inputs: dict[str, Any], kernel) -> np.ndarray:
        """Apply ``kernel(x, params)`` to (draws × points) in blocks, on all cores."""
        missing = [k for k in self.law.inputs if k not in inputs and k != "unique_tokens"]
        if missing:
            raise InputError(f"law {self.law.name!r} needs {', '.join(missing)}")
        arrays = {k: np.atleast_1d(np.asarray(inputs[k], dtype=float)) for k in self.law.inputs if k in inputs}
        if "unique_tokens" in self.law.inputs and "unique_tokens" not in arrays:
            arrays["unique_tokens"] = arrays["D"]  # fresh data: no repetition
        shape = np.broadcast(*arrays.values()).shape
        if len(shape) != 1:
            raise InputError("inputs must be one-dimensional arrays of equal length (or scalars)")
        for k, v in arrays.items():
            if np.any(~np.isfinite(v)) or np.any(v <= 0):
                raise InputError(f"{k} must be positive and finite")
        logs = {k: np.log(np.broadcast_to(v, shape)) for k, v in arrays.items()}
        points = shape[0]
        params = {k: v[:, None] for k, v in self.params.items()}
        block = max(1, _BLOCK_ELEMENTS // max(self.n_draws, 1))
        out = np.empty((self.n_draws, points))

        def work(start: int) -> None:
            stop = min(start + block, points)
            out[:, start:stop] = kernel({k: v[None, start:stop] for k, v in logs.items()}, params)

        starts = range(0, points, block)
        if len(starts) > 1:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                list(pool.map(work, starts))
        else:
            work(0)
        return out

    def _law_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """A law of compute alone is evaluated at C = 6·N·D when given N and D."""
        if self.law.inputs == ("C",) and "C" not in inputs and {"N", "D"} <= set(inputs):
            return {"C": FLOP_PER_PARAM_TOKEN * np.asarray(inputs["N"], float) * np.asarray(inputs["D"], float)}
        return inputs

    def log_loss(self, **inputs: Any) -> np.ndarray:
        """log expected loss, shape (draws, points), for raw inputs (N=…, D=… or C=…).

        Parameters
        ----------
        **inputs
            Raw inputs: ``N=``, ``D=`` or ``C=``.

        Returns
        -------
        numpy.ndarray
        """
        inputs = self._law_inputs(inputs)
        log_mu = self._evaluate(inputs, lambda x, _: self._law_log_loss(x))
        C = self._compute_of(inputs)
        return log_mu + self._drift(C) if C is not None else log_mu

    def loss(self, *, predictive: bool = False, **inputs: Any) -> np.ndarray:
        """Draws of the expected loss (or, ``predictive=True``, of a new run's loss) at the inputs.

        Parameters
        ----------
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.
        **inputs
            Raw inputs: ``N=``, ``D=`` or ``C=``.

        Returns
        -------
        numpy.ndarray
            (draws, points).
        """
        inputs = self._law_inputs(inputs)
        C = self._compute_of(inputs)
        if not predictive and self.structural is None:
            return self._evaluate(inputs, self.law.loss_values)
        log_mu = self.log_loss(**inputs)
        if not predictive:
            return np.exp(log_mu)
        noisy = self.likelihood.draw(self.rng, log_mu, self._noise_scale(), {k: v[:, None] for k, v in self.extra.items()})
        with np.errstate(over="ignore"):  # a heavy-tailed new-run draw may be +inf
            return np.exp(noisy + (self._scatter(C) if C is not None else 0.0))

    # ------------------------------------------------------------------ allocation
    def _require_nd(self, what: str) -> None:
        if not {"N", "D"} <= set(self.law.inputs):
            raise InputError(f"law {self.law.name!r} depends on {', '.join(self.law.inputs)} only: {what} "
                             f"needs a law of both N and D (chinchilla, kaplan-nd, data-constrained)")

    def allocation(self, C: Any, *, method: str = "auto") -> Allocation:
        """Compute-optimal N*, D* at budgets ``C`` (closed form where the law has one).

        ``method="numerical"`` forces the numerical minimisation (used to check the closed form).

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        method
            ``"auto"``, ``"closed"`` (closed form) or ``"numeric"``.

        Returns
        -------
        Allocation
            ``N`` and ``D`` draws, (draws, budgets).
        """
        self._require_nd("a compute-optimal allocation")
        C = np.atleast_1d(np.asarray(C, dtype=float))
        if method not in ("auto", "numerical"):
            raise InputError(f"method must be 'auto' or 'numerical', not {method!r}")
        log_n, how = self._optimal_log_n(np.log(C)[None, :], numerical=method == "numerical")
        n = np.exp(log_n)
        d = C[None, :] / (FLOP_PER_PARAM_TOKEN * n)
        return Allocation(N=n, D=d, tokens_per_param=d / n, C=C, method=how)

    def _optimal_log_n(self, log_c: np.ndarray, *, numerical: bool = False) -> tuple[np.ndarray, str]:
        """log N* of every draw at log C (broadcast against (draws, k)) minimising its law's loss at
        C = 6·N·D, and how it was found: in closed form where the law has one, else by golden-section
        search on log N (N ≥ 1,000 and D ≥ 1,000).  Each draw's law's own optimum: ρ rescales forecasts
        of the loss, not the law's parameters."""
        params = {k: v[:, None] for k, v in self.allocation_params.items()}
        closed = None if numerical else self.law.compute_optimal(np.exp(log_c), params)
        if closed is not None:
            return np.log(closed[0]), "closed form"
        log_c6 = log_c - math.log(FLOP_PER_PARAM_TOKEN)
        return _golden_section(lambda log_n: self.law.log_loss(NUMPY, self._nd_inputs(log_n, log_c6 - log_n), params),
                               np.full(log_c6.shape, math.log(1e3)), log_c6 - math.log(1e3),
                               90), "numerical (golden-section search on log N)"

    def allocation_exponents(self) -> dict[str, np.ndarray]:
        """a = β/(α+β) and b = α/(α+β) (N* ∝ C^a, D* ∝ C^b) for laws of the Chinchilla form.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        if not {"alpha", "beta"} <= set(self.allocation_params):
            raise InputError(f"law {self.law.name!r} has no alpha and beta: allocation exponents are defined "
                             f"for the Chinchilla form")
        al, be = self.allocation_params["alpha"], self.allocation_params["beta"]
        return {"a": be / (al + be), "b": al / (al + be)}

    # ------------------------------------------------------------------ loss at a compute budget
    def loss_at_compute(self, C: Any, *, allocation: str = "optimal", tokens_per_param: float | None = None,
                        N: float | None = None, predictive: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        """Draws of the loss at budgets ``C`` and the (N, D) used.

        ``allocation``: ``"optimal"`` (default), ``"tokens_per_param"`` (with
        ``tokens_per_param=``) or ``"fixed_n"`` (with ``N=``).  Laws of compute alone use C
        directly.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        allocation
            ``"optimal"``, ``"tokens_per_param"`` or ``"fixed_n"``.
        tokens_per_param
            Tokens per parameter (with ``allocation="tokens_per_param"``).
        N
            Parameters (with ``allocation="fixed_n"``).
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.

        Returns
        -------
        tuple
            (draws × budgets, what was used).
        """
        C = np.atleast_1d(np.asarray(C, dtype=float))
        if self.law.inputs == ("C",):
            return self.loss(C=C, predictive=predictive), {"allocation": "compute only",
                                                            "decades_beyond_data": self.decades_beyond_data(C)}
        self._require_nd("a compute budget")
        if allocation == "optimal":
            alloc = self.allocation(C)
            n, d, how = alloc["N"], alloc["D"], f"compute-optimal ({alloc.method})"
        elif allocation == "tokens_per_param":
            if not tokens_per_param or tokens_per_param <= 0:
                raise InputError("allocation='tokens_per_param' needs tokens_per_param > 0")
            n1 = np.sqrt(C / (FLOP_PER_PARAM_TOKEN * tokens_per_param))
            n, d = np.broadcast_to(n1, (self.n_draws, len(C))), np.broadcast_to(n1 * tokens_per_param,
                                                                                 (self.n_draws, len(C)))
            how = f"{tokens_per_param:g} tokens per parameter"
        elif allocation == "fixed_n":
            if not N or N <= 0:
                raise InputError("allocation='fixed_n' needs N > 0")
            n = np.full((self.n_draws, len(C)), float(N))
            d = C[None, :] / (FLOP_PER_PARAM_TOKEN * n)
            how = f"fixed N = {N:.3g}"
        else:
            raise InputError(f"allocation must be 'optimal', 'tokens_per_param' or 'fixed_n', not {allocation!r}")
        log_mu = self._log_loss_per_draw(n, d) + self._drift(C)
        with np.errstate(over="ignore"):  # a heavy-tailed (Student-t) new-run draw may be +inf: its true limit
            loss = np.exp(log_mu) if not predictive else np.exp(self.likelihood.draw(
                self.rng, log_mu, self._noise_scale(), {k: v[:, None] for k, v in self.extra.items()})
                + self._scatter(C))
        return loss, {"allocation": how, "N": n, "D": d, "decades_beyond_data": self.decades_beyond_data(C)}

    def at_compute(self, C: Any, *, allocation: str = "optimal", tokens_per_param: float | None = None,
                   N: float | None = None):
        """Forecasts at compute budgets as an :class:`xarray.Dataset` with ArviZ's dimensions.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        allocation, tokens_per_param, N
            How each budget is split between parameters and tokens, as for :meth:`loss_at_compute`.

        Returns
        -------
        xarray.Dataset
            ``loss`` (expected), ``loss_pred`` (a new run's) and, for laws of N and D, ``N``, ``D``
            and ``tokens_per_param``, with dimensions (chain, draw, compute) and the coordinate
            ``decades_beyond_data`` along ``compute``.  A forecaster thinned by ``max_draws`` (or a
            subset) has one chain of its draws.

        Examples
        --------
        >>> import bayes_scaling as bs
        >>> fit = bs.fit("chinchilla", draws=200, tune=300, chains=2, backtests=False, seed=3)
        >>> ds = bs.Forecaster(fit).at_compute([1e23, 1e24])
        >>> dict(ds["loss"].sizes)
        {'chain': 2, 'draw': 200, 'compute': 2}
        """
        import xarray as xr

        C = np.atleast_1d(np.asarray(C, dtype=float))
        expected, info = self.loss_at_compute(C, allocation=allocation, tokens_per_param=tokens_per_param, N=N)
        predictive, _ = self.loss_at_compute(C, allocation=allocation, tokens_per_param=tokens_per_param, N=N,
                                             predictive=True)
        chains, draws = (1, self.n_draws) if self._thinned else self._chains
        dims = ("chain", "draw", "compute")

        def cube(values: np.ndarray) -> tuple:
            return dims, np.broadcast_to(values, (self.n_draws, len(C))).reshape(chains, draws, len(C))

        data = {"loss": cube(expected), "loss_pred": cube(predictive)}
        if "N" in info:
            data |= {"N": cube(info["N"]), "D": cube(info["D"]), "tokens_per_param": cube(info["D"] / info["N"])}
        coords = {"chain": np.arange(chains), "draw": np.arange(draws), "compute": C,
                  "decades_beyond_data": ("compute", info["decades_beyond_data"])}
        out = xr.Dataset(data, coords=coords, attrs={"allocation": info["allocation"], "law": self.law.name,
                                                     "structural_error": self.structural is not None})
        for name, unit in (("loss", "nats/token"), ("loss_pred", "nats/token"), ("N", "parameters"),
                           ("D", "tokens"), ("tokens_per_param", "tokens per parameter")):
            if name in out:
                out[name].attrs["units"] = unit
        out["compute"].attrs["units"] = "FLOP"
        return out

    def expected_log_loss_per_draw(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """log expected loss where N and D differ per draw (shape draws × k), structural drift included.

        A law of compute alone is evaluated at C = 6·N·D.

        Parameters
        ----------
        n
            Parameters N (per draw).
        d
            Tokens D (per draw).

        Returns
        -------
        numpy.ndarray
        """
        C = FLOP_PER_PARAM_TOKEN * n * d
        if self.law.inputs == ("C",):
            return self._law_log_loss({"C": np.log(C)}) + self._drift(C)
        self._require_nd("a loss at (N, D) per draw")
        return self._log_loss_per_draw(n, d) + self._drift(C)

    def _log_loss_per_draw(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """log loss where N and D differ per draw (shape draws × budgets), rescaled by ρ."""
        return self._law_log_loss(self._nd_inputs(np.log(n), np.log(d)))

    def _nd_inputs(self, log_n: np.ndarray, log_d: np.ndarray) -> dict[str, np.ndarray]:
        """Log inputs at (N, D); data-constrained laws get fresh data (unique tokens = D)."""
        x = {"N": log_n, "D": log_d}
        if "unique_tokens" in self.law.inputs:
            x["unique_tokens"] = log_d
        return x

    def _optimal_log_loss(self, log_c: np.ndarray) -> np.ndarray:
        """Expected log loss at the compute-optimal allocation (structural drift included), for log C
        per draw (shape draws × k)."""
        drift = self._drift(np.exp(log_c))
        if self.law.inputs == ("C",):
            return self._law_log_loss({"C": log_c}) + drift
        log_n, _ = self._optimal_log_n(log_c)
        return self._log_loss_per_draw(np.exp(log_n), np.exp(log_c - log_n) / FLOP_PER_PARAM_TOKEN) + drift

    def compute_for_loss(self, target: float, *, predictive: bool = False) -> dict[str, Any]:
        """Draws of the compute (and N*, D*) at which the expected loss reaches ``target``.

        Draws for which the target is below what the law can reach (e.g. below the
        irreducible loss E, or not reached by 10^40 FLOP) are NaN; ``p_reachable`` is the
        posterior probability that the target is reachable at all.

        Parameters
        ----------
        target
            The target loss (nats per token).
        predictive
            A new run's loss (noise and scatter) instead of the expected loss.

        Returns
        -------
        dict
            ``C``, ``N``, ``D`` draws and ``p_reachable``.
        """
        if not target > 0:
            raise InputError(f"target loss must be positive, got {target}")
        lo = np.full(self.n_draws, _LOG_C_RANGE[0])
        hi = np.full(self.n_draws, _LOG_C_RANGE[1])
        log_t = math.log(target)
        reachable = self._optimal_log_loss(hi[:, None])[:, 0] <= log_t
        already = self._optimal_log_loss(lo[:, None])[:, 0] <= log_t
        for _ in range(80):  # bisection in log C: the optimal loss falls as compute grows
            mid = (lo + hi) / 2
            above = self._optimal_log_loss(mid[:, None])[:, 0] > log_t
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        log_c = np.where(reachable & ~already, (lo + hi) / 2, np.nan)
        log_c = np.where(already, _LOG_C_RANGE[0], log_c)
        C = np.exp(log_c)
        out: dict[str, Any] = {"C": C, "p_reachable": float(reachable.mean()), "target": float(target)}
        if "E" in self.params:
            out["p_below_irreducible"] = float(np.mean(self.params["E"] >= target))
        if {"N", "D"} <= set(self.law.inputs):
            ok = np.isfinite(C)
            # every draw at its own C (an unreached target's draws at any budget, then dropped)
            log_n = self._optimal_log_n(np.where(ok, log_c, math.log(1e20))[:, None])[0][:, 0]
            n = np.where(ok, np.exp(log_n), np.nan)
            out.update(N=n, D=C / (FLOP_PER_PARAM_TOKEN * n))
        return out


def _golden_section(f, a: np.ndarray, b: np.ndarray, iterations: int) -> np.ndarray:
    """The minimum of ``f`` (unimodal, elementwise) between ``a`` and ``b``: ``iterations`` steps of
    a golden-section search, each shrinking the bracket by 0.618 (90 steps: below 1e-15 of it)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a, b = a.copy(), b.copy()
    g = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):
        c1, c2 = b - g * (b - a), a + g * (b - a)
        left = f(c1) < f(c2)
        b = np.where(left, c2, b)
        a = np.where(left, a, c1)
    return (a + b) / 2


