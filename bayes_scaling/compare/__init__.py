"""Comparing fits: PSIS-LOO, leave-future-out weights, back-tests, the classical baseline."""
