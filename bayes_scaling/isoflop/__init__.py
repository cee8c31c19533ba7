"""isoFLOP analyses: the Bayesian Approach 2 model (a curve per compute budget, power laws through
the optima), the classical per-budget parabola fit, back-tests, and the comparison with the
parametric fit (Approach 3)."""
