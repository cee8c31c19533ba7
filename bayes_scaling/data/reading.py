"""Reading run tables: :func:`read_runs` turns a CSV, TSV, Parquet file or DataFrame into a validated
:class:`~bayes_scaling.data.runs.RunTable`, listing every problem with its file line and column.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_scaling.data.runs import (
    ALIASES,
    COMPUTE_RATIO_WARN,
    FLOP_PER_PARAM_TOKEN,
    MAX_PROBLEMS_PER_COLUMN,
    NUMERIC_COLUMNS,
    PLAUSIBLE_LOSS,
    REQUIRED,
    RunTable,
    _normalize,
    parse_scale,
)
from bayes_scaling.errors import DataWarning, InputError, Problem, RunTableError

log = logging.getLogger(__name__)


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
    >>> import pandas as pd
    >>> from bayes_scaling import read_runs
    >>> frame = pd.DataFrame({"params_M": [70, 160, 410], "tokens_B": [1.4, 3.2, 8.2], "loss": [3.6, 3.2, 2.9]})
    >>> runs = read_runs(frame, columns={"N": "params_M", "D": "tokens_B"}, scale={"N": "M", "D": "B"})
    >>> runs.derived, float(runs.N[0])
    ({'C': '6*N*D'}, 70000000.0)

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

