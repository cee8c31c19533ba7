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

import csv
import hashlib
import logging
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataWarning, InputError, Problem, RunTableError

__all__ = ["RunTable", "read_runs", "parse_scale", "FLOP_PER_PARAM_TOKEN"]

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

    Attributes
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
        """Any numeric canonical column as a float64 array."""
        if name not in self.data.columns:
            raise InputError(f"{self.source}: the run table has no {name!r} column")
        return self.data[name].to_numpy(dtype=float, copy=True)

    def to_frame(self) -> pd.DataFrame:
        """A copy of the runs as a DataFrame."""
        return self.data.copy()

    def subset(self, mask: np.ndarray | pd.Series, *, label: str | None = None) -> RunTable:
        """The runs where ``mask`` is true, as a new table (for hold-out splits)."""
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
        """A JSON-ready summary: rows, ranges, derived columns, groups."""
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
        """Raise if the table has fewer than ``min_runs`` runs."""
        if len(self) < min_runs:
            reason = f" ({why})" if why else ""
            raise RunTableError(
                self.source,
                [Problem(f"only {len(self)} runs; at least {min_runs} are needed{reason}")],
                is_file=False,
            )


def parse_scale(text: str | float | int) -> float:
    """Parse a unit scale: a number (``1e6``) or a unit letter (``k``, ``M``, ``B``/``G``, ``T``, ``P``)."""
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


def read_runs(
    source: str | Path | pd.DataFrame | RunTable,
    *,
    columns: Mapping[str, str] | None = None,
    scale: Mapping[str, float | str] | None = None,
    sep: str | None = None,
    duplicates: str = "error",
    min_runs: int | None = None,
    name: str | None = None,
) -> RunTable:
    """Read training runs from a CSV/TSV/Parquet file or a DataFrame and validate them.

    Parameters
    ----------
    source
        A path to a ``.csv``, ``.tsv``/``.txt`` or ``.parquet`` file, a
        :class:`pandas.DataFrame` (never modified), or a ``RunTable`` (returned as is).
    columns
        Canonical column → your column name, e.g. ``{"N": "n_params", "D": "tokens"}``.
        Columns not given here are found by their usual names (``params``,
        ``Model Size``, ``Training FLOP`` …); ambiguous matches are an error.
    scale
        Unit factors per canonical column, as numbers or unit letters, e.g.
        ``{"N": 1e6}`` or ``{"N": "M"}`` when parameters are given in millions.
    sep
        Field delimiter of a text file (default ``,``; ``\\t`` for ``.tsv``).
    duplicates
        What to do with runs that repeat another run's ``N``, ``D``, ``C``, ``loss``
        (and group): ``"error"`` (default), ``"drop"`` (keep the first) or ``"keep"``.
    min_runs
        Refuse tables with fewer runs (e.g. the number of parameters of a law).
    name
        Name recorded as the table's source (default: the path, or ``"DataFrame"``).

    Returns
    -------
    RunTable

    Raises
    ------
    InputError
        The file cannot be read (missing, empty, wrong delimiter, unknown format).
    RunTableError
        The table is unusable; its message lists every problem with line and column.

    Warns
    -----
    DataWarning
        Losses outside the usual range of nats per token, or compute ``C`` far from
        ``6·N·D``.

    Examples
    --------
    >>> runs = read_runs("runs.csv", columns={"N": "n_params"}, scale={"N": "M"})  # doctest: +SKIP
    >>> runs.derived  # doctest: +SKIP
    {'C': '6*N*D'}
    """
    if isinstance(source, RunTable):
        return source
    if duplicates not in ("error", "drop", "keep"):
        raise InputError(f"duplicates must be 'error', 'drop' or 'keep', not {duplicates!r}")
    frame, label, is_file = _frame_of(source, sep=sep, name=name)
    return _validate(frame, label=label, is_file=is_file, columns=columns or {},
                     scale=scale or {}, duplicates=duplicates, min_runs=min_runs)


def _frame_of(source: str | Path | pd.DataFrame, *, sep: str | None, name: str | None) -> tuple[pd.DataFrame, str, bool]:
    """The table to validate (a copy), its label in messages, and whether its rows are file lines."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=True)
        label, is_file = name or "DataFrame", False
    else:
        path = Path(source)
        frame = _read_file(path, sep=sep)
        # Parquet rows are rows, not lines; text files report the line of the file.
        label, is_file = name or str(path), path.suffix.lower() not in (".parquet", ".pq")
    if len(frame.columns) == 0 or len(frame) == 0:
        raise InputError(f"{label}: no runs (the table has a header but no data rows)"
                         if len(frame.columns) else f"{label}: the table is empty")
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise InputError(f"{label}: column name(s) {', '.join(map(repr, repeated))} appear more than once in the "
                         f"header; rename them so that each column is named once")
    if not is_file:
        # Report positions ("row 3") rather than whatever index the caller's frame had.
        frame.index = pd.RangeIndex(len(frame))
    return frame, label, is_file


def _read_file(path: Path, *, sep: str | None) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError as exc:
            raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {exc}") from None
        except Exception as exc:  # pyarrow raises its own types for corrupt files
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
    if suffix not in (".csv", ".tsv", ".txt", ".dat", ""):
        raise InputError(f"{path}: unknown file type {suffix!r}; expected .csv, .tsv or .parquet")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    delimiter = sep if sep is not None else ("\t" if suffix == ".tsv" else ",")
    first_lines = _check_field_counts(path, delimiter)
    try:
        # Blank lines are kept as empty rows so that reported line numbers match the file.
        frame = pd.read_csv(path, sep=delimiter, skip_blank_lines=False, dtype=str,
                            keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot parse as {delimiter!r}-separated text: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        for other in (";", "\t", "|", ","):
            if other != delimiter and other in header:
                raise InputError(
                    f"{path}: the header has a single column {header!r}; the file looks "
                    f"{other!r}-separated, not {delimiter!r}-separated. "
                    f"Pass sep={other!r} (command line: --sep {other!r})."
                )
    if first_lines is not None and len(first_lines) == len(frame):
        # Row labels such that label + 2 is the file line where the row starts (quoted fields may
        # span lines, so this is not the row's position + 2).
        frame.index = pd.Index(np.asarray(first_lines, dtype=np.int64) - 2)
    # Drop lines that are entirely blank (e.g. trailing empty lines), keeping line numbers.
    blank = frame.apply(lambda col: col.astype(str).str.strip() == "").all(axis=1)
    return frame.loc[~blank]


def _check_field_counts(path: Path, delimiter: str) -> list[int] | None:
    """Refuse rows with more or fewer fields than the header; return the file line on which each
    data row starts (``None`` for regex delimiters).

    pandas would otherwise turn the first column into an index (extra fields) or pad
    the row (missing fields) without a word.
    """
    if len(delimiter) != 1:
        return None  # regex separators: leave the parsing to pandas
    problems: list[str] = []
    first_lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, skipinitialspace=True)
            header = next(reader, None)
            if header is None:
                return None
            names = [h.strip() for h in header]
            repeated = sorted({h for h in names if names.count(h) > 1 and h})
            if repeated:
                raise InputError(f"{path}: line 1: column name(s) {', '.join(map(repr, repeated))} appear more than "
                                 f"once in the header; rename them so that each column is named once")
            previous_end = reader.line_num
            for fields in reader:
                first_lines.append(previous_end + 1)
                previous_end = reader.line_num
                if fields and len(fields) != len(header) and any(f.strip() for f in fields):
                    problems.append(f"line {reader.line_num} has {len(fields)} fields, the header has {len(header)}")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: cannot parse as {delimiter!r}-separated text: {exc}") from None
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{path}: rows do not match the header ({shown}); is {delimiter!r} the delimiter, "
                         f"and are fields containing it quoted?")
    return first_lines


def _resolve_columns(frame: pd.DataFrame, columns: Mapping[str, str], label: str,
                     is_file: bool) -> dict[str, str]:
    """Canonical name → the frame's column, for every canonical column present."""
    problems: list[Problem] = []
    known = set(ALIASES)
    for canonical, original in columns.items():
        if canonical not in known:
            problems.append(Problem(f"unknown canonical column {canonical!r} in the column mapping; "
                                    f"expected one of {', '.join(ALIASES)}"))
        elif original not in frame.columns:
            problems.append(Problem(f"the column mapping names {original!r} for {canonical}, but the "
                                    f"table has no such column (it has {', '.join(map(str, frame.columns))})"))
    if problems:
        raise RunTableError(label, problems, is_file=is_file)

    mapping = dict(columns)
    taken = set(mapping.values())
    normalized = {col: _normalize(col) for col in frame.columns}
    for canonical, aliases in ALIASES.items():
        if canonical in mapping:
            continue
        matches = [c for c, n in normalized.items() if n in aliases and c not in taken]
        if canonical in frame.columns and canonical not in taken:
            others = [c for c in matches if c != canonical and not _same_numbers(frame[c], frame[canonical])]
            if others:
                problems.append(Problem(
                    f"both {canonical!r} and {', '.join(map(repr, others))} could be {canonical}, and their values "
                    f"differ; say which with "
                    f"columns={{'{canonical}': ...}} (command line: --map {canonical}=NAME)"))
            mapping[canonical] = canonical
            taken.add(canonical)
            continue
        if len(matches) == 1:
            mapping[canonical] = matches[0]
            taken.add(matches[0])
        elif len(matches) > 1:
            problems.append(Problem(
                f"several columns could be {canonical}: {', '.join(map(repr, matches))}; "
                f"say which with columns={{'{canonical}': ...}} (command line: --map {canonical}=NAME)"))
    # A metadata column must not be silently shadowed by a renamed canonical one.
    for canonical, original in mapping.items():
        if original != canonical and canonical in frame.columns and canonical not in mapping.values():
            problems.append(Problem(
                f"column {canonical!r} exists but {original!r} was chosen as {canonical}; "
                f"rename one of them", column=canonical))
    if "loss" in mapping and re.search(r"perplex|\bppl\b", str(mapping["loss"]), flags=re.IGNORECASE):
        problems.append(Problem(
            "is a perplexity; the loss must be in nats per token, the natural log of the perplexity "
            "(convert the column, or map a loss column)", column=mapping["loss"]))
    if problems:
        raise RunTableError(label, problems, is_file=is_file)
    return mapping


def _validate(frame: pd.DataFrame, *, label: str, is_file: bool, columns: Mapping[str, str],
              scale: Mapping[str, float | str], duplicates: str, min_runs: int | None) -> RunTable:
    mapping = _resolve_columns(frame, columns, label, is_file)
    missing = _missing_columns(frame, mapping, label, is_file)
    scales: dict[str, float] = {}
    for key, value in scale.items():
        if key not in NUMERIC_COLUMNS:
            raise InputError(f"unit scale given for {key!r}; scales apply to {', '.join(NUMERIC_COLUMNS)}")
        scales[key] = parse_scale(value)
    numeric, group = _parsed_columns(frame, mapping, scales, label, is_file)
    derived = _derived_column(numeric, missing, frame.index, label, is_file)
    _check_values(numeric, derived, mapping, frame.index, label, is_file)
    ordered = [c for c in (*REQUIRED, "group", "unique_tokens") if c in numeric or (c == "group" and group is not None)]
    out = pd.DataFrame({c: (group if c == "group" else numeric[c]) for c in ordered})
    used = set(mapping.values())
    for col in frame.columns:
        if col not in used and col not in out.columns:
            out[col] = _as_numbers_if_possible(frame[col]) if is_file else frame[col]
    out = _without_duplicates(out, duplicates, label, is_file)
    table = RunTable(data=out, source=label, derived=derived,
                     column_map={c: mapping.get(c, c) for c in ordered}, scales=scales)
    if min_runs is not None:
        table.require(min_runs)
    return table


def _missing_columns(frame: pd.DataFrame, mapping: Mapping[str, str], label: str, is_file: bool) -> list[str]:
    """The required columns not found; an error unless only one of N, D, C is missing (it is derived)."""
    missing = [c for c in REQUIRED if c not in mapping]
    size_missing = [c for c in missing if c != "loss"]
    blocking = (["loss"] if "loss" in missing else []) + (size_missing if len(size_missing) > 1 else [])
    if blocking:
        hints = "; ".join(f"{c}: {', '.join(repr(a) for a in ALIASES[c][:4])} …" for c in blocking)
        raise RunTableError(label, [Problem(
            f"missing required column(s) {', '.join(blocking)} (found {', '.join(map(repr, frame.columns))}). "
            f"Need loss and at least two of N, D, C; recognised names are {hints}; "
            f"or map yours with columns={{...}} (command line: --map N=NAME)")], is_file=is_file)
    return missing


def _parsed_columns(frame: pd.DataFrame, mapping: Mapping[str, str], scales: Mapping[str, float], label: str,
                    is_file: bool) -> tuple[dict[str, pd.Series], pd.Series | None]:
    """The numeric columns in their units, and the group labels; every bad cell is one problem."""
    problems: list[Problem] = []
    numeric: dict[str, pd.Series] = {}
    for canonical in NUMERIC_COLUMNS:
        if canonical not in mapping:
            continue
        original = mapping[canonical]
        values, col_problems = _to_positive(frame[original], original)
        problems.extend(col_problems)
        numeric[canonical] = values * scales.get(canonical, 1.0)
    group = None
    if "group" in mapping:
        raw = frame[mapping["group"]]
        empty = raw.isna() | (raw.astype(str).str.strip() == "")
        for row in np.flatnonzero(empty.to_numpy()):
            problems.append(Problem("missing group label", row=int(frame.index[row]), column=mapping["group"]))
        group = raw.astype(str).str.strip()
    if problems:
        raise RunTableError(label, problems, is_file=is_file)
    return numeric, group


def _derived_column(numeric: dict[str, pd.Series], missing: list[str], index: pd.Index, label: str,
                    is_file: bool) -> dict[str, str]:
    """Derive the one missing of N, D, C from C = 6ND (in place); or warn where the given C is far from it."""
    derived: dict[str, str] = {}
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        if missing:
            (gone,) = missing
            if gone == "C":
                numeric["C"] = FLOP_PER_PARAM_TOKEN * numeric["N"] * numeric["D"]
                derived["C"] = "6*N*D"
            elif gone == "D":
                numeric["D"] = numeric["C"] / (FLOP_PER_PARAM_TOKEN * numeric["N"])
                derived["D"] = "C/(6*N)"
            else:
                numeric["N"] = numeric["C"] / (FLOP_PER_PARAM_TOKEN * numeric["D"])
                derived["N"] = "C/(6*D)"
            log.info("%s: derived %s = %s", label, gone, derived[gone])
        else:
            ratio = numeric["C"] / (FLOP_PER_PARAM_TOKEN * numeric["N"] * numeric["D"])
            off = np.flatnonzero(((ratio > COMPUTE_RATIO_WARN) | (ratio < 1 / COMPUTE_RATIO_WARN)).to_numpy())
            if off.size:
                where = _rows_text(index[off], is_file)
                warnings.warn(
                    f"{label}: C differs from 6·N·D by more than {COMPUTE_RATIO_WARN:g}x at {where} "
                    f"(C/(6ND) from {ratio.iloc[off].min():.3g} to {ratio.iloc[off].max():.3g}); "
                    f"check the units of N, D and C", DataWarning, stacklevel=4)
    return derived


def _check_values(numeric: dict[str, pd.Series], derived: dict[str, str], mapping: Mapping[str, str],
                  index: pd.Index, label: str, is_file: bool) -> None:
    """Overflow and underflow, unique tokens above D (errors); losses that do not look like nats (a warning)."""
    problems = _out_of_range(numeric, derived, mapping, index)
    if problems:
        raise RunTableError(label, problems, is_file=is_file)
    if "unique_tokens" in numeric:
        over = np.flatnonzero((numeric["unique_tokens"] > numeric["D"] * (1 + 1e-9)).to_numpy())
        for row in over:
            problems.append(Problem(
                f"unique tokens {numeric['unique_tokens'].iloc[row]:.6g} exceed training tokens "
                f"D = {numeric['D'].iloc[row]:.6g}", row=int(index[row]), column=mapping["unique_tokens"]))
        if problems:
            raise RunTableError(label, problems, is_file=is_file)
    loss = numeric["loss"]
    odd = np.flatnonzero(((loss < PLAUSIBLE_LOSS[0]) | (loss > PLAUSIBLE_LOSS[1])).to_numpy())
    if odd.size:
        warnings.warn(
            f"{label}: column {mapping['loss']!r} has values that do not look like a loss in nats per "
            f"token (outside {PLAUSIBLE_LOSS[0]}–{PLAUSIBLE_LOSS[1]}) at {_rows_text(index[odd], is_file)}; "
            f"a perplexity or a percentage? Fits model log(loss).", DataWarning, stacklevel=4)


def _without_duplicates(out: pd.DataFrame, duplicates: str, label: str, is_file: bool) -> pd.DataFrame:
    """Runs repeating another's N, D, C, loss (and group): an error, dropped or kept."""
    key = [c for c in (*REQUIRED, "group", "unique_tokens") if c in out.columns]
    dup = out.duplicated(subset=key, keep="first").to_numpy()
    if dup.any() and duplicates != "keep":
        if duplicates == "error":
            firsts = out.loc[~dup, key].reset_index().merge(out.loc[dup, key].reset_index(), on=key)
            problems = [Problem(f"duplicates the run on {_rows_text([int(r.index_x)], is_file)} "
                                f"(same {', '.join(key)}); pass duplicates='drop' to keep one "
                                f"(command line: --duplicates drop)", row=int(r.index_y))
                        for r in firsts.itertuples()]
            raise RunTableError(label, problems, is_file=is_file)
        log.info("%s: dropped %d duplicated runs", label, int(dup.sum()))
        out = out.loc[~dup]
    return out.reset_index(drop=True)


def _to_positive(raw: pd.Series, column: str) -> tuple[pd.Series, list[Problem]]:
    """Parse one column to float, listing every cell that is not a positive finite number
    (vectorized: only the bad cells are visited one by one, at most :data:`MAX_PROBLEMS_PER_COLUMN`)."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype(float), [Problem("is a true/false column; expected positive numbers", column=column)]
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype(str).str.strip()
        blank = raw.isna() | text.isin(["", "nan", "NaN", "NA", "N/A", "null", "None"])
        values = pd.to_numeric(text.where(~blank), errors="coerce")
        if any(isinstance(v, bool) for v in raw.iloc[:1000]):
            return values.astype(float), [Problem("holds true/false values; expected positive numbers",
                                                  column=column)]
    else:
        blank = raw.isna()
        values = pd.to_numeric(raw, errors="coerce")
    values = values.astype(float)
    v = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = blank.to_numpy() | ~np.isfinite(v) | ~(v > 0)
    problems: list[Problem] = []
    positions = np.flatnonzero(bad)
    for pos in positions[:MAX_PROBLEMS_PER_COLUMN]:
        row, value, cell = int(values.index[pos]), v[pos], raw.iloc[pos]
        if blank.iloc[pos]:
            message = "missing value (empty or NaN); expected a positive number"
        elif math.isnan(value):
            message = f"{str(cell)!r} is not a number"
        elif math.isinf(value):
            message = f"{str(cell)!r} is infinite; expected a finite positive number"
        else:
            message = f"{value:g} is not positive; expected a number > 0"
        problems.append(Problem(message, row=row, column=column))
    if positions.size > MAX_PROBLEMS_PER_COLUMN:
        problems.append(Problem(f"{positions.size - MAX_PROBLEMS_PER_COLUMN} more cells that are not positive "
                                f"finite numbers", column=column))
    return values, problems


def _out_of_range(numeric: Mapping[str, pd.Series], derived: Mapping[str, str], mapping: Mapping[str, str],
                  index: pd.Index) -> list[Problem]:
    """Values that overflowed or underflowed (after unit scaling or derivation): ±inf, 0, subnormal."""
    problems: list[Problem] = []
    tiny = np.finfo(float).tiny
    for name, values in numeric.items():
        v = values.to_numpy()
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(v) | ~(v >= tiny))
        how = f"derived as {derived[name]}" if name in derived else "after unit scaling"
        for pos in bad[:MAX_PROBLEMS_PER_COLUMN]:
            problems.append(Problem(
                f"{name} = {v[pos]:g} {how} is outside the range of double-precision numbers "
                f"({tiny:.3g} to {np.finfo(float).max:.3g}); check the units",
                row=int(index[pos]), column=None if name in derived else mapping[name]))
    return problems


def _same_numbers(a: pd.Series, b: pd.Series) -> bool:
    """Whether two columns hold the same numbers (so either may serve as a canonical column)."""
    x = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(b, errors="coerce").to_numpy(dtype=float)
    return bool(np.allclose(x, y, rtol=1e-9, atol=0.0, equal_nan=True))


def _as_numbers_if_possible(column: pd.Series) -> pd.Series:
    """Metadata read from text: numbers where every cell is one, text otherwise."""
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _rows_text(rows, is_file: bool) -> str:
    rows = [int(r) for r in rows]
    shown = [str(r + 2) if is_file else str(r) for r in rows[:8]]
    more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
    return f"{'line' if is_file else 'row'}{'s' if len(rows) > 1 else ''} {', '.join(shown)}{more}"
