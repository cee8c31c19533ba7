"""Run tables: training runs read from a file or a DataFrame and validated.

A run table has one row per training run and the columns

``N``
    parameters of the model;
``D``
    training tokens;
``C``
    training compute in FLOP (derived as ``6·N·D`` when absent);
``loss``
    final loss (nats per token, as published);
``group`` (optional)
    the dataset or model family the run belongs to;
``unique_tokens`` (optional)
    unique tokens seen, for the data-constrained law (repeated epochs),

plus any other (metadata) columns, kept as they are.  :func:`read_runs` finds these
columns under the names users give them (``params``, ``Model Size``, ``Training FLOP``
…), applies unit scales, derives one missing member of ``N``, ``D``, ``C`` from the
other two, and reports every problem it finds with the file, line and column.

"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling.errors import InputError, Problem, RunTableError

__all__ = ['RunTable', 'parse_scale', 'FLOP_PER_PARAM_TOKEN']


log = logging.getLogger(__name__)


#: Training FLOP per parameter per token (forward + backward pass), the ``6`` of ``C = 6·N·D``.
FLOP_PER_PARAM_TOKEN = 6.0


NUMERIC_COLUMNS = ("N", "D", "C", "loss", "unique_tokens")


REQUIRED = ("N", "D", "C", "loss")


# Names users give the canonical columns, compared after _normalize().  An exact,
# case-sensitive use of the canonical name always wins over an alias.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("n", "params", "n params", "num params", "parameters", "model size", "model params",
          "n parameters", "param count"),
    "D": ("d", "tokens", "n tokens", "num tokens", "train tokens", "training tokens", "dataset size"),
    "C": ("c", "flop", "flops", "compute", "training flop", "training flops", "training compute",
          "train flops"),
    "loss": ("loss", "final loss", "eval loss", "val loss", "validation loss", "train loss"),
    "group": ("group",),
    "unique_tokens": ("unique tokens", "u d", "unique data"),
}


UNIT_WORDS = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


# A final loss in nats per token outside this range is possible but usually a mistake
# (a perplexity, an accuracy, a percentage): warn, do not refuse.
PLAUSIBLE_LOSS = (0.1, 20.0)


#: Bad cells listed one by one per column (the rest are counted).
MAX_PROBLEMS_PER_COLUMN = 1000


# C and 6·N·D that disagree by more than this factor suggest a unit mismatch.
COMPUTE_RATIO_WARN = 3.0


def _normalize(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name).strip().lower())


@dataclass(frozen=True, eq=False)
class RunTable:
    """A validated table of training runs.

    Build one with :func:`read_runs`.  The table is never modified in place; methods
    that select runs return a new ``RunTable``.

    Parameters
    ----------
    data
        The runs: canonical columns first (``N``, ``D``, ``C``, ``loss``, then
        ``group`` and ``unique_tokens`` when present), then metadata columns.
    source
        Where the runs came from (a path, ``"DataFrame"`` or a dataset name).
    derived
        Columns computed rather than read, mapped to the formula used.
    column_map
        Canonical column → the column name in the user's input.
    scales
        Unit factors applied to canonical columns (e.g. ``{"N": 1e6}``).
    provenance
        Free-form description of the data's origin (datasets fill this in).
    """

    data: pd.DataFrame
    source: str
    derived: Mapping[str, str] = field(default_factory=dict)
    column_map: Mapping[str, str] = field(default_factory=dict)
    scales: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"RunTable({len(self)} runs from {self.source!r})"

    # Column accessors return float64 numpy arrays (copies), ready for models.
    @property
    def N(self) -> np.ndarray:  # noqa: N802 - the conventional symbol
        return self.data["N"].to_numpy(dtype=float, copy=True)

    @property
    def D(self) -> np.ndarray:  # noqa: N802
        return self.data["D"].to_numpy(dtype=float, copy=True)

    @property
    def C(self) -> np.ndarray:  # noqa: N802
        return self.data["C"].to_numpy(dtype=float, copy=True)

    @property
    def loss(self) -> np.ndarray:
        return self.data["loss"].to_numpy(dtype=float, copy=True)

    @property
    def has_groups(self) -> bool:
        return "group" in self.data.columns

    @property
    def groups(self) -> list[str]:
        """Distinct group labels in order of first appearance (empty without groups)."""
        if not self.has_groups:
            return []
        return list(pd.unique(self.data["group"]))

    def column(self, name: str) -> np.ndarray:
        """Any numeric canonical column as a float64 array.

        Parameters
        ----------
        name
            ``N``, ``D``, ``C``, ``loss`` or ``unique_tokens``.

        Returns
        -------
        numpy.ndarray
        """
        if name not in self.data.columns:
            raise InputError(f"{self.source}: the run table has no {name!r} column")
        return self.data[name].to_numpy(dtype=float, copy=True)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the runs as a DataFrame.

        Returns
        -------
        pandas.DataFrame
        """
        return self.data.copy()

    def subset(self, mask: np.ndarray | pd.Series, *, label: str | None = None) -> RunTable:
        """The runs where ``mask`` is true, as a new table (for hold-out splits).

        Parameters
        ----------
        mask
            Which runs to keep.
        label
            Appended to the source's name.

        Returns
        -------
        RunTable
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise InputError(f"mask has shape {mask.shape}; expected ({len(self)},)")
        source = self.source if label is None else f"{self.source} [{label}]"
        return RunTable(
            data=self.data.loc[mask].reset_index(drop=True),
            source=source,
            derived=dict(self.derived),
            column_map=dict(self.column_map),
            scales=dict(self.scales),
            provenance=dict(self.provenance),
        )

    def fingerprint(self) -> str:
        """SHA-256 of the canonical columns, exact to the bit.

        Two tables with the same runs in the same order have the same fingerprint,
        whatever their metadata columns; saved fits record it so a result can be tied
        to the data it came from.

        Returns
        -------
        str
        """
        h = hashlib.sha256()
        for name in (*NUMERIC_COLUMNS, "group"):
            if name not in self.data.columns:
                continue
            h.update(name.encode())
            values = self.data[name]
            if name == "group":
                h.update("\x1f".join(values.astype(str)).encode())
            else:
                h.update(np.ascontiguousarray(values.to_numpy(dtype="<f8")).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: rows, ranges, derived columns, groups.

        Returns
        -------
        dict
        """
        ranges = {
            name: {"min": float(self.data[name].min()), "max": float(self.data[name].max())}
            for name in NUMERIC_COLUMNS
            if name in self.data.columns
        }
        out: dict[str, Any] = {
            "source": self.source,
            "rows": len(self),
            "columns": {c: self.column_map.get(c, c) for c in self.data.columns},
            "ranges": ranges,
            "derived": dict(self.derived),
            "scales": dict(self.scales),
            "fingerprint": self.fingerprint(),
        }
        if self.has_groups:
            counts = self.data["group"].value_counts(sort=False)
            out["groups"] = {str(k): int(v) for k, v in counts.items()}
        return out

    def require(self, min_runs: int, *, why: str = "") -> None:
        """Raise if the table has fewer than ``min_runs`` runs.

        Parameters
        ----------
        min_runs
            The fewest runs accepted.
        why
            Why, for the message.

        Returns
        -------
        None
        """
        if len(self) < min_runs:
            reason = f" ({why})" if why else ""
            raise RunTableError(
                self.source,
                [Problem(f"only {len(self)} runs; at least {min_runs} are needed{reason}")],
                is_file=False,
            )


def parse_scale(text: str | float | int) -> float:
    """Parse a unit scale: a number (``1e6``) or a unit letter (``k``, ``M``, ``B``/``G``, ``T``, ``P``).

    Parameters
    ----------
    text
        A number or a unit letter.

    Returns
    -------
    float
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip()
        if s in UNIT_WORDS:
            value = UNIT_WORDS[s]
        else:
            try:
                value = float(s)
            except ValueError:
                raise InputError(
                    f"unit scale {text!r} is neither a number nor one of {', '.join(UNIT_WORDS)}"
                ) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"unit scale {text!r} must be a positive finite number")
    return value

