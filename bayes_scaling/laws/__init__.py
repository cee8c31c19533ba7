"""Scaling laws, each written once against :class:`~bayes_scaling.laws.ops.Ops` so that the same
expression builds the PyMC model and evaluates numpy forecasts over posterior draws."""

from bayes_scaling.laws.base import Param, Sampled, ScalingLaw
from bayes_scaling.laws.families import BrokenPowerLaw, Chinchilla, ChinchillaInteraction, Compute, DataConstrained, KaplanND, KaplanSingle
from bayes_scaling.laws.ops import NUMPY, Ops, pytensor_ops
from bayes_scaling.laws.registry import LAWS, get_law, law_names, register_law

__all__ = ["Ops", "NUMPY", "pytensor_ops", "Param", "Sampled", "ScalingLaw", "Chinchilla", "ChinchillaInteraction", "KaplanSingle", "KaplanND",
           "Compute", "DataConstrained", "BrokenPowerLaw", "LAWS", "get_law", "law_names", "register_law"]
