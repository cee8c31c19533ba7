"""The ``bayes-scaling`` command line.

Every subcommand is a thin layer over the public API.  Exit codes: 0 success,
1 the analysis failed, 2 bad input or usage.  ``--json`` prints a machine-readable
result on stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bayes_scaling._version import __version__
from bayes_scaling.cli import batch, compare, data, design, downstream, energy, fit, forecast, isoflop, report
from bayes_scaling.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _Parser
from bayes_scaling.errors import BayesScalingError, InputError
from bayes_scaling.io.outputs import Stopped, clear_stop, request_stop

__all__ = ["build_parser", "json_safe", "main"]

#: Subcommands in the order --help lists them; each module adds its own parser.
SUBCOMMANDS = (report, data, fit, forecast, design, isoflop, downstream, energy, compare, batch)
#: Commands that compile and sample models: PyTensor's compile directory is checked before their work.
SAMPLING_COMMANDS = {"report", "fit", "isoflop", "downstream", "compare", "batch"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-scaling`` (exposed for documentation and tests)."""
    parser = _Parser(
        prog="bayes-scaling",
        description="Bayesian analysis of neural scaling laws and of AI training energy.",
        epilog="Exit codes: 0 success, 1 analysis failed, 2 bad input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (no progress, no warnings)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


class _Formatter(logging.Formatter):
    """Progress as plain lines; warnings and errors with their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {message}"


@contextlib.contextmanager
def _logging_to_stderr(verbose: int, quiet: bool) -> Iterator[None]:
    """Route the library's log records to stderr while a command runs; restore the loggers after.

    (A handler left behind would hold a stream that a caller, e.g. a test harness, closes.)
    """
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("bayes_scaling")
    saved = (list(root.handlers), root.level)
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.setLevel(level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """SIGTERM raises :class:`~bayes_scaling.io.outputs.Stopped` in the main thread, so that output
    folders are cleaned up (like Ctrl-C)."""
    def stop(signum, frame):
        request_stop()

    clear_stop()
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (e.g. a test runner's worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear_stop()


def _printable_streams() -> None:
    """Under a locale whose encoding cannot write our text (``LC_ALL=C`` without UTF-8 mode: ASCII),
    write what it cannot as escapes instead of failing after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding not in ("utf8", "utf16", "utf32") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):  # a stream a caller replaced may not allow it
                stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    _printable_streams()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], Any] = args.handler
    with _logging_to_stderr(args.verbose, args.quiet), _warnings_to_stderr(args.quiet) as messages, \
            _terminate_as_exception():
        warnings.simplefilter("always")
        # pip-installed PyTensor cannot link BLAS; our models use none, so this is noise.
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        try:
            if args.command in SAMPLING_COMMANDS:
                from bayes_scaling.sampling.compiled import require_compile_dir

                require_compile_dir()
            result = handler(args)
        except BayesScalingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted: nothing was written (an earlier result folder is unchanged)", file=sys.stderr)
            return 130
        except Stopped:
            print("terminated: nothing was written (an earlier result folder is unchanged)", file=sys.stderr)
            return 143
        except OSError as exc:  # a file the user named cannot be read or written
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
            return EXIT_USAGE
        except Exception as exc:  # a bug: say so plainly; -v shows where
            print(f"error: unexpected {type(exc).__name__}: {exc}\nThis is a bug in bayes-scaling "
                  f"{__version__}; please report it with the command line "
                  f"{'and the traceback above' if args.verbose else '(rerun with -v for the traceback)'}.",
                  file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
            return EXIT_FAILED
    if getattr(args, "json", False):
        payload = dict(result) if isinstance(result, dict) else {"result": result}
        payload["warnings"] = messages
        print(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False))
    return EXIT_OK


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def _warnings_to_stderr(quiet: bool) -> Iterator[list[str]]:
    """Print each warning once, when it happens, as ``warning: …``; yield the list of messages
    (for ``--json``).  Deprecation noise from dependencies is dropped."""
    noise = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    messages: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if issubclass(category, noise) or text in messages:
            return
        messages.append(text)
        if not quiet:
            print(f"warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield messages
