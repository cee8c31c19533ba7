"""The sigmoid of step 2 between a task's chance level and its ceiling, and its least-squares fit
(the point method of Llama 3 and Bhagia et al. 2024)."""

from __future__ import annotations

import numpy as np

__all__ = ["point_sigmoid", "sigmoid_accuracy"]


def sigmoid_accuracy(z, chance, ceiling, k, m, *, np=np):
    """The sigmoid of step 2: ``chance + (ceiling − chance) · σ(k · (m − z))``, in numpy or
    PyTensor (``np=pytensor.tensor``).

    Examples
    --------
    >>> float(sigmoid_accuracy(0.0, 0.25, 0.85, 2.0, 0.0))
    0.55
    """
    if np.__name__ == "numpy":
        with np.errstate(over="ignore"):  # far from the midpoint the sigmoid is 0 or 1, exactly
            return chance + (ceiling - chance) / (1.0 + np.exp(-k * (m - z)))
    # PyTensor's own sigmoid, numerically stable far from the midpoint
    return chance + (ceiling - chance) * np.sigmoid(k * (m - z))


def point_sigmoid(x: np.ndarray, y: np.ndarray, chance: float) -> dict[str, float]:
    """Least-squares fit of ``chance + (ceiling − chance) · σ(k · (m − x))``, ceiling in
    [chance, 1], from a grid of starts.

    Parameters
    ----------
    x, y
        Inputs and accuracies.
    chance
        The task's chance level.

    Returns
    -------
    dict
        ``ceiling``, ``k``, ``m``.

    Examples
    --------
    >>> x = np.linspace(-2, 2, 20)
    >>> fit = point_sigmoid(x, 0.25 + 0.6 / (1 + np.exp(-2 * (0.5 - x))), 0.25)
    >>> round(fit["k"], 2), round(fit["m"], 2), round(fit["ceiling"], 2)
    (2.0, 0.5, 0.85)

    In any units of x (here −log10 C):

    >>> x = np.linspace(-21, -18, 20)
    >>> fit = point_sigmoid(x, 0.25 + 0.6 / (1 + np.exp(-3 * (-19.0 - x))), 0.25)
    >>> round(fit["k"], 2), round(fit["m"], 2), round(fit["ceiling"], 2)
    (3.0, -19.0, 0.85)
    """
    x = np.asarray(x, dtype=float)
    centre, scale = float(x.mean()), float(x.std()) or 1.0  # the starts are in standard units of x
    u, k, m = _least_squares((x - centre) / scale, y, chance).x
    return {"ceiling": float(chance + (1 - chance) / (1 + np.exp(-u))), "k": float(np.exp(k) / scale),
            "m": float(centre + scale * m)}


def _curve(theta: np.ndarray, x: np.ndarray, chance: float) -> np.ndarray:
    with np.errstate(over="ignore"):  # a start far out: the ceiling is chance or 1, exactly
        ceiling = chance + (1 - chance) / (1 + np.exp(-theta[0]))
        return sigmoid_accuracy(x, chance, ceiling, np.exp(theta[1]), theta[2])


def _least_squares(x: np.ndarray, y: np.ndarray, chance: float):
    """scipy's least-squares result in (logit ceiling, log k, m), the best of a grid of starts."""
    from scipy.optimize import least_squares

    best = None
    for u in (-1.0, 1.0, 3.0):
        for k in (-1.0, 0.5, 1.5):
            for m in (-3.0, 0.0, 3.0):
                result = least_squares(lambda theta: _curve(theta, x, chance) - y, [u, k, m], method="lm")
                if best is None or result.cost < best.cost:
                    best = result
    assert best is not None
    return best
