"""isoFLOP ladders simulated from a known Chinchilla law, laid out as labs lay them out: at each
budget, model sizes evenly spaced in log N around a guess of the optimum.  For checking isoFLOP
analyses against known truth (recovery, coverage, the bias of the classical fit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN

__all__ = ["HOFFMANN", "ChinchillaLaw", "simulate_curves", "simulate_grid", "simulate_ladder"]


@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A / N^α + B / D^β and its compute-optimal allocation.

    Parameters
    ----------
    E, A, B, alpha, beta
        The law's parameters.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    @property
    def a(self) -> float:
        """N* ∝ C^a: a = β / (α + β)."""
        return self.beta / (self.alpha + self.beta)

    def loss(self, n, d):
        """The law's loss at N, D."""
        return self.E + self.A / np.asarray(n) ** self.alpha + self.B / np.asarray(d) ** self.beta

    def n_star(self, compute):
        """Compute-optimal N at C = 6ND."""
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return g * (np.asarray(compute, dtype=float) / FLOP_PER_PARAM_TOKEN) ** self.a

    def loss_star(self, compute):
        """The loss at the compute-optimal allocation."""
        n = self.n_star(compute)
        return self.loss(n, np.asarray(compute, dtype=float) / (FLOP_PER_PARAM_TOKEN * n))


#: Hoffmann et al. 2022's fit (Approach 3).
HOFFMANN = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def simulate_ladder(law: ChinchillaLaw = HOFFMANN, budgets: Sequence[float] = tuple(np.geomspace(1e18, 1e21, 7)), *,
                    sizes: int = 7, half_width: float = 0.6, guess_exponent: float | None = None,
                    offset: float = 0.0, noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Runs of an isoFLOP ladder: ``sizes`` models per budget, evenly spaced in log10 N over
    ± ``half_width`` decades around a guessed optimum, with Gaussian noise on the loss.

    The guess is the true optimum at the smallest budget, scaled as C^``guess_exponent`` (None: the
    true exponent, a grid centred on every optimum), shifted by ``offset`` decades: a guess that
    scales wrongly drifts off the optimum as the budgets grow.

    Parameters
    ----------
    law
        The true law.
    budgets
        Compute budgets (FLOP).
    sizes
        Models per budget.
    half_width
        Half the grid's width in decades of N.
    guess_exponent
        The exponent the grid's centre scales with.
    offset
        Shift of the grid's centre (decades; positive: larger models).
    noise
        Standard deviation of the loss noise.
    seed
        Seed of the noise.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``, ``loss``.

    Examples
    --------
    >>> runs = simulate_ladder(sizes=5, noise=0.0)
    >>> len(runs), bool(runs.groupby("C")["loss"].idxmin().isin(runs.index[2::5]).all())
    (35, True)
    """
    rng = np.random.default_rng(seed)
    budgets = np.asarray(budgets, dtype=float)
    exponent = law.a if guess_exponent is None else guess_exponent
    first = np.log10(law.n_star(budgets.min()))
    rows = []
    for c in budgets:
        centre = first + exponent * np.log10(c / budgets.min()) + offset
        for x in np.linspace(centre - half_width, centre + half_width, sizes):
            n = 10 ** x
            d = c / (FLOP_PER_PARAM_TOKEN * n)
            rows.append({"N": n, "D": d, "C": c, "loss": float(law.loss(n, d)) + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def simulate_grid(law: ChinchillaLaw = HOFFMANN, sizes: Sequence[float] = tuple(np.geomspace(5e7, 1.2e9, 8)),
                  tokens: Sequence[float] = tuple(np.geomspace(1e8, 2e10, 10)), *, noise: float = 0.005,
                  seed: int = 0) -> pd.DataFrame:
    """Runs of a sizes × tokens grid (no two budgets alike, as in the (Mis)Fitting study), with Gaussian
    noise on the loss: what the isoFLOP model reads as compute slices.

    Parameters
    ----------
    law
        The true law.
    sizes
        Model sizes N.
    tokens
        Token counts D; every size is trained on every count.
    noise
        Standard deviation of the loss noise.
    seed
        Seed of the noise.

    Returns
    -------
    pandas.DataFrame
        ``N``, ``D``, ``C``, ``loss``.

    Examples
    --------
    >>> runs = simulate_grid(noise=0.0)
    >>> len(runs), runs["C"].nunique()
    (80, 80)
    """
    rng = np.random.default_rng(seed)
    n, d = (a.ravel() for a in np.meshgrid(np.asarray(sizes, float), np.asarray(tokens, float)))
    loss = law.loss(n, d) + rng.normal(0, noise, n.size)
    return pd.DataFrame({"N": n, "D": d, "C": FLOP_PER_PARAM_TOKEN * n * d, "loss": loss})


def simulate_curves(law: ChinchillaLaw = HOFFMANN, sizes: Sequence[float] = tuple(np.geomspace(5e7, 1.2e9, 8)),
                    tokens_per_param: Sequence[float] = (5.0, 10.0, 20.0, 40.0, 80.0), *, checkpoints: int = 10,
                    unannealed: float = 0.03, noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Learning curves: each size trained to several lengths, with a checkpoint every 1/``checkpoints``
    of its run.  A checkpoint at a share p of its run's tokens lies ``unannealed`` · (1 − p) (relative)
    above the law at its tokens — the learning rate has not decayed yet — so only a run's last
    checkpoint reaches the law, as with a cosine schedule fitted to the run's length.

    Parameters
    ----------
    law
        The true law.
    sizes
        Model sizes N.
    tokens_per_param
        Each size's run lengths, in tokens per parameter.
    checkpoints
        Checkpoints per run, evenly spaced in tokens.
    unannealed
        Relative excess loss of a checkpoint at the start of its run, falling linearly to 0 at its end.
    noise
        Standard deviation of the loss noise (independent per checkpoint).
    seed
        Seed of the noise.

    Returns
    -------
    pandas.DataFrame
        ``run`` (one curve), ``N``, ``D`` (tokens seen), ``C``, ``loss``, ``progress``.

    Examples
    --------
    >>> curves = simulate_curves(noise=0.0)
    >>> len(curves), curves["run"].nunique()
    (400, 40)
    """
    rng = np.random.default_rng(seed)
    rows = []
    for n in np.asarray(sizes, dtype=float):
        for ratio in tokens_per_param:
            final = ratio * n
            progress = np.arange(1, checkpoints + 1) / checkpoints
            d = final * progress
            loss = law.loss(n, d) * (1 + unannealed * (1 - progress)) + rng.normal(0, noise, progress.size)
            rows.append(pd.DataFrame({"run": len(rows), "N": n, "D": d, "C": FLOP_PER_PARAM_TOKEN * n * d,
                                      "loss": loss, "progress": progress}))
    return pd.concat(rows, ignore_index=True)
