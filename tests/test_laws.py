"""Law formulas (numpy and PyTensor agree), reparametrizations, closed-form allocations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from simulate import TRUTH, simulate

from bayes_scaling import InputError
from bayes_scaling.laws.ops import NUMPY, pytensor_ops
from bayes_scaling.laws.registry import LAWS, get_law
from bayes_scaling.priors import DataStats


def test_chinchilla_formula_against_direct_arithmetic():
    law = get_law("chinchilla")
    p = TRUTH["chinchilla"]
    n, d = 7e10, 1.4e12  # Chinchilla itself
    direct = p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    assert law.loss({"N": n, "D": d}, p) == pytest.approx(direct, rel=1e-12)
    assert direct == pytest.approx(1.9208, abs=1e-4)  # Approach 3's loss for Chinchilla (70B, 1.4T)


def test_kaplan_nd_formula_against_direct_arithmetic():
    p = TRUTH["kaplan-nd"]
    n, d = 1e9, 2e10
    direct = ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"]
    assert get_law("kaplan-nd").loss({"N": n, "D": d}, p) == pytest.approx(direct, rel=1e-12)


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    p = TRUTH["data-constrained"]
    n, d = 1e9, 2e10  # 20 tokens/param: U_N = N, no excess parameters; U_D = D: no repetition
    dc = get_law("data-constrained").loss({"N": n, "D": d, "unique_tokens": d}, p)
    ch = get_law("chinchilla").loss({"N": n, "D": d}, {k: p[k] for k in ("E", "A", "B", "alpha", "beta")})
    assert dc == pytest.approx(ch, rel=1e-12)
    # Repeating 4 epochs of a quarter of the data is worse than fresh data, better than only the quarter.
    rep = get_law("data-constrained").loss({"N": n, "D": d, "unique_tokens": d / 4}, p)
    quarter = get_law("chinchilla").loss({"N": n, "D": d / 4}, {k: p[k] for k in ("E", "A", "B", "alpha", "beta")})
    assert ch < rep < quarter


def test_broken_power_law_slopes_on_both_sides_of_the_break():
    p = dict(TRUTH["broken-power-law"], E=1e-12)
    law = get_law("broken-power-law")

    def slope(c):
        lo, hi = law.loss({"C": c / 1.01}, p), law.loss({"C": c * 1.01}, p)
        return (math.log(hi) - math.log(lo)) / (2 * math.log(1.01))

    assert slope(1e14) == pytest.approx(-p["c0"], abs=1e-3)
    assert slope(1e26) == pytest.approx(-(p["c0"] + p["c1"]), abs=1e-3)


def test_the_interaction_law_without_interaction_is_the_chinchilla_law():
    """κ = 0 gives Hoffmann et al.'s law at every (N, D); κ > 0 lowers the loss of models larger than N_ref
    at D > D_ref (their data exponent is larger) and raises it for smaller ones."""
    truth = TRUTH["chinchilla-interaction"]
    n, d = np.geomspace(1e7, 1e12, 7), np.geomspace(1e9, 1e14, 7)
    nn, dd = (a.ravel() for a in np.meshgrid(n, d))
    flat = get_law("chinchilla-interaction").loss({"N": nn, "D": dd}, dict(truth, kappa=0.0))
    np.testing.assert_allclose(flat, get_law("chinchilla").loss({"N": nn, "D": dd}, TRUTH["chinchilla"]), rtol=1e-12)
    bent = get_law("chinchilla-interaction").loss({"N": nn, "D": dd}, truth)
    far = dd > 2e10
    assert np.all(bent[far & (nn > 1e9)] < flat[far & (nn > 1e9)])
    assert np.all(bent[far & (nn < 1e9)] > flat[far & (nn < 1e9)])


@pytest.mark.parametrize("name", sorted(LAWS))
def test_natural_parameters_round_trip_through_the_centred_ones(name):
    """natural(sampled(truth)) == truth: the reparametrization loses nothing."""
    law = get_law(name)
    runs, truth = simulate(name, seed=0)
    stats = DataStats.from_runs(runs)
    x_mid = {k: stats.centre[k] for k in law.inputs}
    # Recover sampled values by evaluating each term at the centre, law by law.
    sampled = _sampled_from_truth(name, truth, x_mid)
    natural = law.natural(NUMPY, sampled, stats.centre)
    for key, value in truth.items():
        assert natural[key] == pytest.approx(value, rel=1e-9), key


def _sampled_from_truth(name, t, c):
    e = math.exp
    if name in ("chinchilla", "data-constrained"):
        out = {"E": t["E"], "A_mid": t["A"] * e(-t["alpha"] * c["N"]), "B_mid": t["B"] * e(-t["beta"] * c["D"]),
               "alpha": t["alpha"], "beta": t["beta"]}
        if name == "data-constrained":
            out.update(R_D_star=t["R_D_star"], R_N_star=t["R_N_star"])
        return out
    if name == "chinchilla-interaction":
        beta_mid = t["beta"] * e(t["kappa"] * (c["N"] - math.log(1e9)))
        return {"E": t["E"], "A_mid": t["A"] * e(-t["alpha"] * c["N"]), "alpha": t["alpha"], "kappa": t["kappa"],
                "B_mid": t["B_ref"] * e(-beta_mid * (c["D"] - math.log(2e10))), "beta_mid": beta_mid}
    if name.startswith("kaplan-") and name != "kaplan-nd":
        v = name.split("-")[1][0].upper()
        out = {f"alpha_{v}": t[f"alpha_{v}"], "L_mid": e(t[f"alpha_{v}"] * (math.log(t[f"{v}_c"]) - c[v]))}
        if name.endswith("+e"):
            out["E"] = t["E"]
        return out
    if name == "kaplan-nd":
        r = t["alpha_N"] / t["alpha_D"]
        tn, td = e(r * (math.log(t["N_c"]) - c["N"])), e(math.log(t["D_c"]) - c["D"])
        return {"L_mid": (tn + td) ** t["alpha_D"], "s_N": tn / (tn + td), "alpha_N": t["alpha_N"],
                "alpha_D": t["alpha_D"]}
    if name == "compute":
        term = e(t["alpha"] * (math.log(t["C0"]) - c["C"]))
        return {"L_mid": t["E"] + term, "s": term / (t["E"] + term), "alpha": t["alpha"]}
    return {"E": t["E"], "B_mid": t["b"] * e(-t["c0"] * c["C"]), "c0": t["c0"], "c1": t["c1"], "d1": t["d1"],
            "f1": t["f1"]}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_pytensor_and_numpy_evaluate_the_same_formula(name):
    import pytensor

    law = get_law(name)
    runs, truth = simulate(name, seed=1)
    x = {k: np.log(runs.column(k)) for k in law.inputs}
    ops = pytensor_ops()
    expr = law.log_loss(ops, {k: pytensor.shared(v) for k, v in x.items()}, truth)
    # PyTensor's softplus/logaddexp use a piecewise approximation: agreement to 1e-6, not to the last bit.
    np.testing.assert_allclose(expr.eval(), law.log_loss(NUMPY, x, truth), rtol=1e-6)


@pytest.mark.parametrize("name", ["chinchilla", "kaplan-nd"])
def test_closed_form_allocation_matches_numerical_minimisation(name):
    law = get_law(name)
    p = TRUTH[name]
    for c in (1e20, 5.76e23, 1e26):
        n_star, d_star = law.compute_optimal(c, p)
        assert 6 * n_star * d_star == pytest.approx(c, rel=1e-12)
        res = minimize_scalar(lambda log_n: law.loss({"N": math.exp(log_n), "D": c / (6 * math.exp(log_n))}, p),
                              bounds=(math.log(1e5), math.log(c / 6 / 1e3)), method="bounded",
                              options={"xatol": 1e-10})
        assert math.log(n_star) == pytest.approx(res.x, abs=1e-4)


def test_chinchilla_allocation_exponents():
    p = TRUTH["chinchilla"]
    n1, _ = get_law("chinchilla").compute_optimal(1e22, p)
    n2, _ = get_law("chinchilla").compute_optimal(1e24, p)
    a = math.log(n2 / n1) / math.log(100)
    assert a == pytest.approx(p["beta"] / (p["alpha"] + p["beta"]), rel=1e-9)


def test_laws_without_closed_form_allocation_say_so():
    assert get_law("compute").compute_optimal(1e22, TRUTH["compute"]) is None
    assert not get_law("kaplan-n").has_allocation and get_law("chinchilla").has_allocation
    assert not get_law("data-constrained").has_allocation  # its optimum is found numerically


def test_unknown_law():
    with pytest.raises(InputError, match="unknown law 'chinchila'; choose one of chinchilla"):
        get_law("chinchila")
