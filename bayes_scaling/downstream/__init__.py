"""Downstream task accuracy: the two-step forecast (compute → loss → accuracy) with its
uncertainty, its back-tests and the point method it is compared with."""
