"""The built-in scaling laws: Chinchilla (Hoffmann et al. 2022), Kaplan et al. 2020's L(N), L(D) and
L(N, D), compute-only, data-constrained (Muennighoff et al. 2023) and a broken power law.
"""

from __future__ import annotations

import math

import numpy as np

from bayes_scaling.laws.base import LOG6, Param, Sampled, ScalingLaw, _irreducible_prior, _lognormal, _term_prior
from bayes_scaling.laws.coordinates import StickBreakingSlopes
from bayes_scaling.priors import Prior


class Chinchilla(ScalingLaw):
    """Hoffmann et al. (2022): L = E + A/N^α + B/D^β.

    Sampled as E, α, β and ``A_mid = A/N_mid^α``, ``B_mid = B/D_mid^β`` — the loss each
    term contributes at the geometric-mean model size and token count of the data.
    """

    name = "chinchilla"
    title = "Chinchilla (Hoffmann et al. 2022)"
    formula = "L = E + A/N^alpha + B/D^beta"
    inputs = ("N", "D")
    params = (Param("E", "irreducible loss"), Param("A", "model-size amplitude"),
              Param("B", "data amplitude"), Param("alpha", "model-size exponent"),
              Param("beta", "data exponent"))
    sampled = (Sampled("E", "irreducible loss"),
               Sampled("A_mid", "loss from the model-size term at the data's geometric-mean N"),
               Sampled("B_mid", "loss from the data term at the data's geometric-mean D"),
               Sampled("alpha", "model-size exponent", exponent=True),
               Sampled("beta", "data exponent", exponent=True))
    citation = ("hoffmann2022training",)
    # Model sizes usually span fewer decades than token counts: E, A_mid and alpha form a curved
    # ridge (misfitting-final: R-hat 1.02-1.11 in the plain coordinates, <= 1.005 in these).
    coordinates = StickBreakingSlopes("E", (("B_mid", "beta"), ("A_mid", "alpha")))

    def log_terms(self, ops, x, p):
        return [ops.log(p["E"]), ops.log(p["A"]) - p["alpha"] * x["N"], ops.log(p["B"]) - p["beta"] * x["D"]]

    def natural(self, ops, s, centre):
        return {"E": s["E"], "A": s["A_mid"] * ops.exp(s["alpha"] * centre["N"]),
                "B": s["B_mid"] * ops.exp(s["beta"] * centre["D"]), "alpha": s["alpha"], "beta": s["beta"]}

    def default_priors(self, stats):
        return {"E": _irreducible_prior(stats), "A_mid": _term_prior(stats), "B_mid": _term_prior(stats),
                "alpha": _lognormal(0.3, 1.0), "beta": _lognormal(0.3, 1.0)}

    def literature_priors(self, stats, published):
        need = ("E", "A", "B", "alpha", "beta")
        if not all(k in published for k in need):
            return {}
        e, a, b, al, be = (published[k] for k in need)
        return {"E": _lognormal(e, 0.25), "alpha": _lognormal(al, 0.3), "beta": _lognormal(be, 0.3),
                "A_mid": _lognormal(a * math.exp(-al * stats.centre["N"]), 1.0),
                "B_mid": _lognormal(b * math.exp(-be * stats.centre["D"]), 1.0)}

    def compute_optimal(self, C, p):
        al, be = np.asarray(p["alpha"]), np.asarray(p["beta"])
        log_g = (np.log(al) + np.log(p["A"]) - np.log(be) - np.log(p["B"])) / (al + be)
        log_n = log_g + be / (al + be) * (np.log(C) - LOG6)
        n = np.exp(log_n)
        return n, np.asarray(C) / (6.0 * n)


class ChinchillaInteraction(Chinchilla):
    """The Chinchilla law with a data exponent that changes with model size, the first-order
    N×D interaction of Farseer (Li et al. 2025):

    L = E + A/N^α + B_ref·(D/D_ref)^(−β(N)),  β(N) = β·(N/N_ref)^κ,

    with fixed references N_ref = 10⁹ parameters and D_ref = 2·10¹⁰ tokens.  κ > 0: larger models
    gain more from data than the Chinchilla law (κ = 0) lets them.  Sampled like
    :class:`Chinchilla`, with ``B_mid`` and ``beta_mid`` the data term and its exponent at the
    data's geometric-mean N and D, and κ (normal prior, sd 0.1 per e-fold of N: β moves by
    about a quarter per decade at one sd).
    """

    name = "chinchilla-interaction"
    title = "Chinchilla with a size-dependent data exponent (after Farseer, Li et al. 2025)"
    formula = "L = E + A/N^alpha + B_ref (D/D_ref)^-beta(N),  beta(N) = beta (N/N_ref)^kappa"
    params = (Param("E", "irreducible loss"), Param("A", "model-size amplitude"),
              Param("B_ref", "data term at D_ref = 2e10 tokens"), Param("alpha", "model-size exponent"),
              Param("beta", "data exponent at N_ref = 1e9 parameters"),
              Param("kappa", "change of log beta per e-fold of N", positive=False))
    sampled = (Sampled("E", "irreducible loss"),
               Sampled("A_mid", "loss from the model-size term at the data's geometric-mean N"),
               Sampled("B_mid", "loss from the data term at the data's geometric-mean N and D"),
               Sampled("alpha", "model-size exponent", exponent=True),
               Sampled("beta_mid", "data exponent at the data's geometric-mean N", exponent=True),
               Sampled("kappa", "change of log beta per e-fold of N", positive=False))
    citation = ("hoffmann2022training", "li2025farseer")
    coordinates = StickBreakingSlopes("E", (("B_mid", "beta_mid"), ("A_mid", "alpha")))
    LOG_N_REF = math.log(1e9)
    LOG_D_REF = math.log(2e10)

    def log_terms(self, ops, x, p):
        beta_n = p["beta"] * ops.exp(p["kappa"] * (x["N"] - self.LOG_N_REF))
        return [ops.log(p["E"]), ops.log(p["A"]) - p["alpha"] * x["N"],
                ops.log(p["B_ref"]) - beta_n * (x["D"] - self.LOG_D_REF)]

    def natural(self, ops, s, centre):
        beta_ref = s["beta_mid"] * ops.exp(-s["kappa"] * (centre["N"] - self.LOG_N_REF))
        return {"E": s["E"], "A": s["A_mid"] * ops.exp(s["alpha"] * centre["N"]),
                "B_ref": s["B_mid"] * ops.exp(s["beta_mid"] * (centre["D"] - self.LOG_D_REF)),
                "alpha": s["alpha"], "beta": beta_ref, "kappa": s["kappa"]}

    def default_priors(self, stats):
        base = super().default_priors(stats)
        return {"E": base["E"], "A_mid": base["A_mid"], "B_mid": base["B_mid"], "alpha": base["alpha"],
                "beta_mid": base["beta"], "kappa": Prior("Normal", mu=0.0, sigma=0.1)}

    def literature_priors(self, stats, published):
        return {}

    def compute_optimal(self, C, p):
        """None: with κ ≠ 0 the optimum has no closed form; forecasts minimise the law numerically.

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        p
            Natural parameters by name.

        Returns
        -------
        None
        """
        return None


class KaplanSingle(ScalingLaw):
    """Kaplan et al. (2020) single-variable law: L = (X_c/X)^α_X, optionally + E.

    Sampled as α_X and ``L_mid = (X_c/X_mid)^α_X``, the power-law term at the data's
    geometric-mean X.

    Parameters
    ----------
    variable
        ``"N"`` or ``"D"``.
    irreducible
        Add an irreducible loss E.
    """

    citation = ("kaplan2020scaling",)

    def __init__(self, variable: str, *, irreducible: bool):
        self.variable = variable
        self.irreducible = irreducible
        v = variable
        self.name = f"kaplan-{v.lower()}" + ("+e" if irreducible else "")
        self.title = f"Kaplan L({v})" + (" with irreducible loss" if irreducible else "")
        self.formula = ("L = E + " if irreducible else "L = ") + f"({v}_c/{v})^alpha_{v}"
        self.inputs = (v,)
        self.params = ((Param("E", "irreducible loss"),) if irreducible else ()) + (
            Param(f"{v}_c", f"critical {v}"), Param(f"alpha_{v}", f"{v} exponent"))
        self.sampled = ((Sampled("E", "irreducible loss"),) if irreducible else ()) + (
            Sampled("L_mid", f"power-law term at the data's geometric-mean {v}"),
            Sampled(f"alpha_{v}", f"{v} exponent", exponent=True))

    def log_terms(self, ops, x, p):
        v = self.variable
        term = p[f"alpha_{v}"] * (ops.log(p[f"{v}_c"]) - x[v])
        return [ops.log(p["E"]), term] if self.irreducible else [term]

    def natural(self, ops, s, centre):
        v = self.variable
        out = {f"{v}_c": ops.exp(centre[v] + ops.log(s["L_mid"]) / s[f"alpha_{v}"]), f"alpha_{v}": s[f"alpha_{v}"]}
        if self.irreducible:
            out["E"] = s["E"]
        return out

    def default_priors(self, stats):
        v = self.variable
        if self.irreducible:
            return {"E": _irreducible_prior(stats), "L_mid": _lognormal(0.5 * stats.loss_mid, 1.0),
                    f"alpha_{v}": _lognormal(0.3, 1.0)}
        # Without E the whole loss is the power law: it equals the typical loss at the centre,
        # and exponents are small (Kaplan: 0.076 for N, 0.095 for D).
        return {"L_mid": _lognormal(stats.loss_mid, 0.5), f"alpha_{v}": _lognormal(0.1, 1.0)}

    def literature_priors(self, stats, published):
        v = self.variable
        if self.irreducible or f"alpha_{v}" not in published or f"{v}_c" not in published:
            return {}
        al, xc = published[f"alpha_{v}"], published[f"{v}_c"]
        return {f"alpha_{v}": _lognormal(al, 0.3),
                "L_mid": _lognormal(math.exp(al * (math.log(xc) - stats.centre[v])), 0.5)}


class KaplanND(ScalingLaw):
    """Kaplan et al. (2020): L = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D.

    Sampled as the loss at the data's centre ``L_mid``, the share ``s_N`` of the bracket
    that the N term holds there, and the two exponents.
    """

    name = "kaplan-nd"
    title = "Kaplan L(N, D)"
    formula = "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
    inputs = ("N", "D")
    params = (Param("N_c", "critical N"), Param("D_c", "critical D"),
              Param("alpha_N", "N exponent"), Param("alpha_D", "D exponent"))
    sampled = (Sampled("L_mid", "loss at the data's geometric-mean N and D"),
               Sampled("s_N", "share of the bracket held by the N term at the centre"),
               Sampled("alpha_N", "N exponent", exponent=True),
               Sampled("alpha_D", "D exponent", exponent=True))
    citation = ("kaplan2020scaling",)

    def log_terms(self, ops, x, p):
        r = p["alpha_N"] / p["alpha_D"]
        return [p["alpha_D"] * ops.logaddexp(r * (ops.log(p["N_c"]) - x["N"]), ops.log(p["D_c"]) - x["D"])]

    def natural(self, ops, s, centre):
        log_bracket = ops.log(s["L_mid"]) / s["alpha_D"]
        log_tn = ops.log(s["s_N"]) + log_bracket
        log_td = ops.log1p(-s["s_N"]) + log_bracket
        return {"N_c": ops.exp(centre["N"] + log_tn * s["alpha_D"] / s["alpha_N"]),
                "D_c": ops.exp(centre["D"] + log_td), "alpha_N": s["alpha_N"], "alpha_D": s["alpha_D"]}

    def default_priors(self, stats):
        return {"L_mid": _lognormal(stats.loss_mid, 0.5), "s_N": Prior("Beta", alpha=2.0, beta=2.0),
                "alpha_N": _lognormal(0.1, 1.0), "alpha_D": _lognormal(0.1, 1.0)}

    def compute_optimal(self, C, p):
        r = np.asarray(p["alpha_N"]) / np.asarray(p["alpha_D"])
        log_n = (np.log(r) + r * np.log(p["N_c"]) + np.log(C) - LOG6 - np.log(p["D_c"])) / (r + 1)
        n = np.exp(log_n)
        return n, np.asarray(C) / (6.0 * n)


class Compute(ScalingLaw):
    """Loss against compute alone: L = E + (C₀/C)^α (the seed relation L ∝ C^−α, plus E)."""

    name = "compute"
    title = "Compute-only power law"
    formula = "L = E + (C0/C)^alpha"
    inputs = ("C",)
    params = (Param("E", "irreducible loss"), Param("C0", "compute scale"), Param("alpha", "compute exponent"))
    # Sampled as the loss at the data's centre, the share of it above E, and α: E and the
    # power-law term trade off along a ridge (E + term ≈ the centre's loss, correlation ~0.99
    # with α), which NUTS crossed slowly when E and the term were sampled apart (R-hat 1.2,
    # ESS 15 on chinchilla below 4e20 FLOP); their sum is now one well-identified parameter.
    sampled = (Sampled("L_mid", "loss at the data's geometric-mean C"),
               Sampled("s", "share of that loss above E (the power-law term)"),
               Sampled("alpha", "compute exponent", exponent=True))
    citation = ("kaplan2020scaling",)

    def log_terms(self, ops, x, p):
        return [ops.log(p["E"]), p["alpha"] * (ops.log(p["C0"]) - x["C"])]

    def natural(self, ops, s, centre):
        return {"E": s["L_mid"] * (1 - s["s"]), "C0": ops.exp(centre["C"] + ops.log(s["L_mid"] * s["s"]) / s["alpha"]),
                "alpha": s["alpha"]}

    def default_priors(self, stats):
        return {"L_mid": _lognormal(stats.loss_mid, 0.5), "s": Prior("Beta", alpha=2.0, beta=2.0),
                "alpha": _lognormal(0.15, 1.0)}


class DataConstrained(Chinchilla):
    """Muennighoff et al. (2023): the Chinchilla form with repeated data.

    L = E + A/N'^α + B/D'^β with effective data D' = U_D + U_D·R_D*·(1 − e^(−R_D/R_D*)),
    R_D = D/U_D − 1 repetitions of the U_D unique tokens, and effective parameters
    N' = U_N + U_N·R_N*·(1 − e^(−R_N/R_N*)), U_N = min(N, U_D/20), R_N = N/U_N − 1
    (U_N: the compute-optimal model for U_D tokens, at Chinchilla's 20 tokens per
    parameter).  Needs a ``unique_tokens`` column.  Centred like :class:`Chinchilla`.
    """

    name = "data-constrained"
    title = "Data-constrained (Muennighoff et al. 2023)"
    coordinates = None  # no ridge measured on its data yet: each quantity in its own log coordinates
    formula = "L = E + A/N'^alpha + B/D'^beta (effective N', D' under repetition)"
    inputs = ("N", "D", "unique_tokens")
    _decay = (("R_D_star", "decay constant of repeated data", 15.0),
              ("R_N_star", "decay constant of excess parameters", 5.0))
    params = Chinchilla.params + tuple(Param(n, d) for n, d, _ in _decay)
    sampled = Chinchilla.sampled + tuple(Sampled(n, d) for n, d, _ in _decay)
    citation = ("muennighoff2023scaling",)
    tokens_per_param = 20.0

    def log_terms(self, ops, x, p):
        log_ud = x["unique_tokens"]
        r_d = ops.exp(x["D"] - log_ud) - 1.0
        log_d_eff = log_ud + ops.log1p(-p["R_D_star"] * ops.expm1(-r_d / p["R_D_star"]))
        log_un = ops.minimum(x["N"], log_ud - math.log(self.tokens_per_param))
        r_n = ops.exp(x["N"] - log_un) - 1.0
        log_n_eff = log_un + ops.log1p(-p["R_N_star"] * ops.expm1(-r_n / p["R_N_star"]))
        return super().log_terms(ops, {"N": log_n_eff, "D": log_d_eff}, p)

    def natural(self, ops, s, centre):
        return {**super().natural(ops, s, centre), **{n: s[n] for n, _, _ in self._decay}}

    def default_priors(self, stats):
        return {**super().default_priors(stats), **{n: _lognormal(m, 1.0) for n, _, m in self._decay}}

    def literature_priors(self, stats, published):
        base = super().literature_priors(stats, published)
        if not base or not all(n in published for n, _, _ in self._decay):
            return {}
        return {**base, **{n: _lognormal(published[n], 0.5) for n, _, _ in self._decay}}

    def compute_optimal(self, C, p):
        """None: Chinchilla's closed form is not this law's optimum (parameters beyond U_D/20 are
        discounted), so forecasts minimise it numerically (at Muennighoff et al.'s values the closed
        form gave 19.61 tokens per parameter, the minimum is at 19.81).

        Parameters
        ----------
        C
            Compute budgets in FLOP.
        p
            Natural parameters by name.

        Returns
        -------
        None
        """
        return None


class BrokenPowerLaw(ScalingLaw):
    """Caballero et al. (2022), one break, in compute:
    L = E + b·C^(−c0)·(1 + (C/d1)^(1/f1))^(−c1·f1).

    Beyond the break at C ≈ d1 the exponent changes from c0 to c0 + c1; f1 sets how
    sharply.  Sampled with ``B_mid = b·C_mid^(−c0)``.
    """

    name = "broken-power-law"
    title = "Broken power law (Caballero et al. 2022), one break"
    formula = "L = E + b C^-c0 (1 + (C/d1)^(1/f1))^(-c1 f1)"
    inputs = ("C",)
    params = (Param("E", "irreducible loss"), Param("b", "amplitude"), Param("c0", "exponent before the break"),
              Param("c1", "change of exponent at the break", positive=False), Param("d1", "break location (FLOP)"),
              Param("f1", "sharpness of the break"))
    sampled = (Sampled("E", "irreducible loss"),
               Sampled("B_mid", "power-law term (before the break) at the data's geometric-mean C"),
               Sampled("c0", "exponent before the break", exponent=True),
               Sampled("c1", "change of exponent at the break", exponent=True, positive=False),
               Sampled("d1", "break location (FLOP)"),
               Sampled("f1", "sharpness of the break"))
    citation = ("caballero2022broken",)
    # Measured: from random starts about half of NUTS chains (sometimes all four) settled in a
    # mode with 8x the true noise on simulated data; started at the optimum none did.
    multimodal = True

    def log_terms(self, ops, x, p):
        bend = p["c1"] * p["f1"] * ops.softplus((x["C"] - ops.log(p["d1"])) / p["f1"])
        return [ops.log(p["E"]), ops.log(p["b"]) - p["c0"] * x["C"] - bend]

    def natural(self, ops, s, centre):
        return {"E": s["E"], "b": s["B_mid"] * ops.exp(s["c0"] * centre["C"]), "c0": s["c0"], "c1": s["c1"],
                "d1": s["d1"], "f1": s["f1"]}

    def default_priors(self, stats):
        spread = max(stats.spread["C"], 1.0)
        return {"E": _irreducible_prior(stats), "B_mid": _lognormal(0.5 * stats.loss_mid, 1.0),
                "c0": _lognormal(0.15, 1.0), "c1": Prior("Normal", mu=0.0, sigma=0.3),
                "d1": Prior("LogNormal", mu=float(stats.centre["C"]), sigma=float(spread)),
                "f1": _lognormal(1.0, 0.7)}

