"""Forecasts from posterior draws: loss, compute-optimal allocation, compute for a target loss,
law averages and the lifetime-optimal allocation."""
