"""The names of the choices a user makes — likelihoods, pooling, structural-error modes, training
windows, the default credible level — in a module that imports nothing heavy, so that the command
line can build its ``--help`` without importing pandas, SciPy or PyMC.  The modules that implement
each choice import its names from here (one home per idea)."""

from __future__ import annotations

__all__ = ["DEFAULT_LEVEL", "LIKELIHOOD_NAMES", "POOLING", "DISCREPANCIES", "DRIFT_RULES", "LEARNING",
           "DEFAULT_WINDOW", "FRONTIER_DECADES", "FRONTIER_MIN_RUNS", "ISOFLOP_SHAPES", "ENVELOPE_MIN_PROGRESS",
           "DOWNSTREAM_THROUGH"]

#: The default probability of a credible interval.
DEFAULT_LEVEL = 0.9

#: The likelihoods on log loss (:data:`bayes_scaling.model.likelihoods.LIKELIHOODS` implements them).
LIKELIHOOD_NAMES = ("normal", "student-t", "huber", "exgaussian")

#: How the exponents of runs with groups are shared.
POOLING = ("shared", "partial", "separate")

#: ``"shared"``: the population, its size of drift and scatter updated by the dataset's own
#: back-tests, the drift's direction the one the population's datasets share (the default);
#: ``"scaled"``: as ``"shared"``, the direction of the drift mirrored (either sign alike);
#: ``"population"``: the population's predictive for a new dataset, as is;
#: ``"calibrated"``: the population updated by the dataset's own back-tests, direction included;
#: ``"none"``: the law is taken as exact.
DISCREPANCIES = ("shared", "scaled", "population", "calibrated", "none")

#: What each mode that learns from back-tests of the dataset's own runs does to the drift
#: (``drift=`` of :func:`bayes_scaling.calibration.update.update`).
DRIFT_RULES = {"shared": "population", "scaled": "mirrored", "calibrated": "updated"}

#: The modes that learn from back-tests of the dataset's own runs.
LEARNING = tuple(DRIFT_RULES)

#: The training window of every fit unless told otherwise
#: (:func:`bayes_scaling.posterior.law_only.training_window`).
DEFAULT_WINDOW = "frontier"
#: ``window="frontier"``: the runs within this many decades below the largest budget …
FRONTIER_DECADES = 1.5
#: … when at least this many lie there (ten per parameter of a five-parameter law: a design with
#: many runs per budget, such as an isoFLOP ladder); otherwise every run.
FRONTIER_MIN_RUNS = 50

#: The shapes of an isoFLOP budget's profile (:mod:`bayes_scaling.isoflop.model`).
ISOFLOP_SHAPES = ("parabola", "asymmetric")
#: A learning curve's checkpoint enters Approach 1's envelope once its run has seen this share of its
#: tokens (:mod:`bayes_scaling.isoflop.envelope`).
ENVELOPE_MIN_PROGRESS = 0.25
#: What a downstream forecast reads task accuracy from (bayes_scaling.downstream.model).
DOWNSTREAM_THROUGH = ("loss", "task-loss", "compute")
#: An experiment design chooses runs within this many decades of N of the forecast's compute-optimal
#: N at their compute (bayes_scaling.design.choose; why: docs/design/experiment-design.md).
DESIGN_BAND = 0.3
#: Fewer simulated outcomes than this cannot tell a design's gains from noise.
DESIGN_MIN_OUTCOMES = 8
