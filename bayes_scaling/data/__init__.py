"""Runs and datasets: reading and validating run tables, the dataset registry, remote files."""
