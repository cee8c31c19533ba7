"""The statistical model: likelihoods, the resolved model specification, the PyMC model, point fits."""
