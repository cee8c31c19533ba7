"""Calibration of forecasts beyond the data: rolling back-tests, the population of structural
errors across published datasets, its update by a fit's own back-tests, and leave-one-dataset-out
evaluation."""
