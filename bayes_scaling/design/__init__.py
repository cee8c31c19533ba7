"""Experiment design: which training runs to train next so that a forecast beyond the data
narrows the most per FLOP (pre-posterior analysis of a fit, greedy batches under a budget)."""
