"""The array operations a law formula is written against: numpy for forecasts over draws,
PyTensor for the graph the sampler differentiates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ops:
    """The array operations a law formula may use.

    Parameters
    ----------
    exp
        ``exp``.
    log
        ``log``.
    log1p
        ``log1p``.
    expm1
        ``expm1``.
    logaddexp
        ``logaddexp``.
    minimum
        ``minimum``.
    softplus
        ``softplus``.
    """

    exp: Any
    log: Any
    log1p: Any
    expm1: Any
    logaddexp: Any
    minimum: Any
    softplus: Any


NUMPY = Ops(np.exp, np.log, np.log1p, np.expm1, np.logaddexp, np.minimum,
            lambda x: np.logaddexp(0.0, x))


def pytensor_ops() -> Ops:
    """The same operations on PyTensor tensors (imported lazily: numpy users need no PyTensor).

    Returns
    -------
    Ops
    """
    import pytensor.tensor as pt

    return Ops(pt.exp, pt.log, pt.log1p, pt.expm1, pt.logaddexp, pt.minimum, pt.softplus)

