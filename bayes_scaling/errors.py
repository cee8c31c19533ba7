"""Exceptions and warnings raised by bayes_scaling.

Every error a user can cause carries enough context to act on it: which file, which
row, which column, and what was expected.  The command-line interface maps the
classes below to exit codes: :class:`InputError` → 2 (bad input or usage),
any other :class:`BayesScalingError` → 1 (the analysis failed).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ['BayesScalingError', 'InputError', 'Problem', 'RunTableError', 'DataWarning']


class BayesScalingError(Exception):
    """Base class of every error raised by bayes_scaling on purpose."""

    exit_code = 1


class InputError(BayesScalingError, ValueError):
    """The input (a file, a table, an option) is unusable as given."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one place of an input table.

    Attributes
    ----------
    message
        What is wrong and what was expected.
    row
        0-based position of the data row, or ``None`` when the problem concerns the
        whole table or a whole column.
    column
        The column *as the user named it*, or ``None``.

    Parameters
    ----------
    message
        What is wrong.
    row
        The row (a file line for files).
    column
        The column.
    """

    message: str
    row: int | None = None
    column: str | None = None

    def describe(self, *, is_file: bool) -> str:
        """Render the location and message, with file line numbers for files.

        Parameters
        ----------
        is_file
            Rows are file lines.

        Returns
        -------
        str
        """
        where = []
        if self.row is not None:
            # Line 1 of a CSV file is its header, so data row 0 is on line 2.
            where.append(f"line {self.row + 2}" if is_file else f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class RunTableError(InputError):
    """A run table failed validation; ``problems`` lists every problem found.

    Parameters
    ----------
    source
        The table's name.
    problems
        Every problem found.
    is_file
        Rows are file lines.
    """

    max_listed = 20

    def __init__(self, source: str, problems: list[Problem], *, is_file: bool):
        self.source = source
        self.problems = list(problems)
        self.is_file = is_file
        lines = [p.describe(is_file=is_file) for p in self.problems[: self.max_listed]]
        more = len(self.problems) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        noun = "problem" if len(self.problems) == 1 else "problems"
        body = "\n  ".join(lines)
        super().__init__(f"{source}: {len(self.problems)} {noun}:\n  {body}")


class DataWarning(UserWarning):
    """Input data that is usable but looks suspicious (e.g. losses that look like perplexities)."""
