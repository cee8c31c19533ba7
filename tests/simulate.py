"""Simulated run tables from known parameters, for recovery tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_scaling import read_runs
from bayes_scaling.laws.registry import get_law

# Known truths per law (published values where they exist).
TRUTH = {
    "chinchilla": {"E": 1.69337368, "A": 406.401018, "B": 410.722827, "alpha": 0.33917084, "beta": 0.2849083},
    # Chinchilla's values, with β at N = 1e9 and a data exponent 26% larger per decade of N.
    "chinchilla-interaction": {"E": 1.69337368, "A": 406.401018, "B_ref": 410.722827 * 2e10 ** -0.2849083,
                               "alpha": 0.33917084, "beta": 0.2849083, "kappa": 0.1},
    "kaplan-n": {"N_c": 8.8e13, "alpha_N": 0.076},
    "kaplan-n+e": {"E": 1.7, "N_c": 1e10, "alpha_N": 0.3},
    "kaplan-d": {"D_c": 5.4e13, "alpha_D": 0.095},
    "kaplan-d+e": {"E": 1.7, "D_c": 2e11, "alpha_D": 0.3},
    "kaplan-nd": {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
    # (alpha 0.05 with E would put E and alpha on a ridge that no sampler crosses well.)
    "compute": {"E": 1.7, "C0": 3e18, "alpha": 0.25},
    "data-constrained": {"E": 1.87, "A": 520.8, "B": 1487.7, "alpha": 0.3527, "beta": 0.3527,
                         "R_D_star": 15.4, "R_N_star": 5.3},
    "broken-power-law": {"E": 1.7, "b": 2e3, "c0": 0.15, "c1": 0.25, "d1": 1e20, "f1": 0.5},
}


def simulate(law_name: str, *, seed: int, sigma: float = 0.01, sizes=None, tokens_per_param=None,
             repeats=(1, 4, 16), params=None, groups: int = 1) -> tuple:
    """Runs on a grid of model sizes × tokens per parameter with lognormal noise.

    Returns (RunTable, truth).  For the data-constrained law, each run is repeated over
    ``repeats`` epochs of its unique tokens.
    """
    law = get_law(law_name)
    truth = dict(params or TRUTH[law_name])
    rng = np.random.default_rng(seed)
    # A grid wide enough to identify every term (a narrow one leaves E, B, beta on a ridge).
    sizes = np.geomspace(2e7, 2e10, 6) if sizes is None else np.asarray(sizes)
    tpp = np.array([2.0, 8, 32, 128, 512]) if tokens_per_param is None else np.asarray(tokens_per_param)
    n, k = np.meshgrid(sizes, tpp)
    frame = pd.DataFrame({"N": n.ravel(), "D": (n * k).ravel()})
    if "unique_tokens" in law.inputs:
        frame = pd.concat([frame.assign(unique_tokens=frame["D"] / r) for r in repeats], ignore_index=True)
    if law.inputs == ("C",) and law_name == "broken-power-law":
        # A wider compute range, so both sides of the break are seen.
        n2 = np.geomspace(2e7, 3e10, 12)
        frame = pd.DataFrame({"N": np.repeat(n2, 3), "D": np.repeat(n2, 3) * np.tile([10.0, 20, 40], 12)})
    frame["C"] = 6 * frame["N"] * frame["D"]
    inputs = {c: frame[c].to_numpy() for c in law.inputs}
    mean = law.loss(inputs, truth)
    frame["loss"] = mean * np.exp(rng.normal(0.0, sigma, len(frame)))
    if groups > 1:
        frame["group"] = [f"g{i % groups}" for i in range(len(frame))]
    return read_runs(frame, name=f"simulated {law_name} (seed {seed})"), truth
