"""A fit's posterior: the :class:`~bayes_scaling.posterior.fit_result.Fit`, its file, the law-only
sampler a back-test is, and the structural error beyond the data."""
