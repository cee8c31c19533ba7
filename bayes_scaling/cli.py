"""The ``bayes-scaling`` command line.

Every subcommand is a thin layer over the public API.  Exit codes: 0 success,
1 the analysis failed, 2 bad input or usage.  ``--json`` prints a machine-readable
result on stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import BayesScalingError, InputError
from .datasets import cite, dataset_info, export_dataset, list_datasets, load_dataset, runs_from
from .runs import RunTable

__all__ = ["main", "build_parser"]

log = logging.getLogger("bayes_scaling.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors raise instead of exiting, so main() owns exit codes."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def parse_pairs(items: Sequence[str] | None, *, option: str) -> dict[str, str]:
    """Parse ``KEY=VALUE`` items (each may hold several, comma-separated) into a dict."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(",") if item.count("=") > 1 else [item]:
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InputError(f"{option} expects KEY=VALUE, got {part!r}")
            out[key.strip()] = value.strip()
    return out


def _add_run_table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--map", action="append", metavar="COL=NAME",
                   help="which of your columns is N, D, C, loss, group or unique_tokens, "
                        "e.g. --map N=n_params --map 'loss=Final loss' (repeatable)")
    p.add_argument("--scale", action="append", metavar="COL=FACTOR",
                   help="unit factor for a column, a number or k/M/B/T, e.g. --scale N=M when "
                        "parameters are in millions (repeatable)")
    p.add_argument("--sep", default=None, help="field delimiter of a text file (default ',')")
    p.add_argument("--duplicates", choices=("error", "drop", "keep"), default="error",
                   help="what to do with repeated runs (default: error)")


def _run_table_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "columns": parse_pairs(args.map, option="--map"),
        "scale": parse_pairs(args.scale, option="--scale"),
        "sep": args.sep,
        "duplicates": args.duplicates,
    }


def _cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    table = runs_from(args.file, **_run_table_kwargs(args))
    summary = table.describe()
    if not args.json:
        _print_run_summary(summary)
    return summary


def _print_run_summary(summary: dict[str, Any]) -> None:
    print(f"{summary['source']}: {summary['rows']} runs, all valid")
    print(f"  {'column':<14}{'read from':<22}{'min':>12}{'max':>12}")
    for name, rng in summary["ranges"].items():
        origin = f"derived: {summary['derived'][name]}" if name in summary["derived"] else summary["columns"][name]
        scale = summary["scales"].get(name)
        if scale:
            origin = f"{origin} ×{scale:g}"
        print(f"  {name:<14}{origin:<22}{rng['min']:>12.4g}{rng['max']:>12.4g}")
    meta = [c for c in summary["columns"] if c not in summary["ranges"] and c != "group"]
    if "groups" in summary:
        groups = ", ".join(f"{k} ({v})" for k, v in summary["groups"].items())
        print(f"  groups: {groups}")
    if meta:
        print(f"  metadata kept: {', '.join(meta)}")
    print(f"  fingerprint: {summary['fingerprint'][:16]}")


def _cmd_datasets(args: argparse.Namespace) -> Any:
    action = args.action or "list"
    if action == "list":
        table = list_datasets()
        if not args.json:
            width = max(map(len, table["name"]))
            print(f"{'name':<{width}}  {'kind':<5}  {'rows':>5}  {'storage':<8}  title")
            for row in table.itertuples():
                print(f"{row.name:<{width}}  {row.kind:<5}  {row.rows:>5}  {row.storage:<8}  {row.title}")
            print("\nbayes-scaling datasets show NAME | export NAME -o FILE | cite NAME", file=sys.stderr)
        return {"datasets": table.to_dict(orient="records")}
    if action == "cite":
        text = cite(args.name)
        if not args.json:
            print(text, end="")
        return {"name": args.name, "bibtex": text}
    if action == "export":
        path = export_dataset(args.name, args.out, force=args.force)
        if not args.json:
            print(f"wrote {path}")
        return {"name": args.name, "path": str(path)}
    info = dataset_info(args.name)
    data = load_dataset(args.name)
    payload = info.provenance()
    if isinstance(data, RunTable):
        payload["summary"] = data.describe()
        frame = data.data
    else:
        payload["derived"] = data.attrs["provenance"]["derived"]
        frame = data
    payload["columns"] = list(map(str, frame.columns))
    payload["rows"] = len(frame)
    if not args.json:
        print(f"{info.name}: {info.title}")
        print(f"  kind: {info.kind}, {len(frame)} rows, {info.storage}" + (f" ({info.url})" if info.url else ""))
        for key in ("description", "obtained", "licence"):
            print(f"  {key}: {' '.join(getattr(info, key).split())}")
        print(f"  cite: {', '.join(info.citation)}  (bayes-scaling datasets cite {info.name})")
        if isinstance(data, RunTable):
            _print_run_summary(data.describe())
        else:
            with __import__("pandas").option_context("display.width", 160, "display.max_columns", 12):
                print(frame.head(10).to_string(max_colwidth=28))
    return payload


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-scaling`` (exposed for documentation and tests)."""
    parser = _Parser(
        prog="bayes-scaling",
        description="Bayesian analysis of neural scaling laws and of AI training energy.",
        epilog="Exit codes: 0 success, 1 analysis failed, 2 bad input or usage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("validate", help="read and check a table of training runs",
                       description="Read a CSV/TSV/Parquet table of training runs, check every value, "
                                   "and print what was read (rows, ranges, derived columns) or every error.")
    p.add_argument("file", help="CSV, TSV or Parquet file of runs")
    _add_run_table_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_cmd_validate)

    p = sub.add_parser("datasets", help="list, show, export or cite the bundled and remote datasets",
                       description="Datasets with provenance. Remote ones are downloaded on first use and "
                                   "cached (set BAYES_SCALING_DATA_DIR to choose the cache folder).")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_cmd_datasets, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    a = actions.add_parser("list", help="every dataset (the default)")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("show", help="provenance and a summary of one dataset")
    a.add_argument("name")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("export", help="write a dataset (with derived columns) to CSV")
    a.add_argument("name")
    a.add_argument("-o", "--out", required=True, help="CSV file to write")
    a.add_argument("--force", action="store_true", help="replace an existing file")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a = actions.add_parser("cite", help="BibTeX for a dataset's sources")
    a.add_argument("name")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose == 1 else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("bayes_scaling")
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (also used as the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose, args.quiet)
    handler: Callable[[argparse.Namespace], Any] = args.handler
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = handler(args)
        except BayesScalingError as exc:
            _report_warnings(caught, args)
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    messages = _report_warnings(caught, args)
    if getattr(args, "json", False):
        payload = dict(result) if isinstance(result, dict) else {"result": result}
        payload["warnings"] = messages
        print(json.dumps(payload, indent=2, default=str))
    return EXIT_OK


def _report_warnings(caught: list[warnings.WarningMessage], args: argparse.Namespace) -> list[str]:
    noise = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    messages = [str(w.message) for w in caught if not issubclass(w.category, noise)]
    if not args.quiet:
        for message in messages:
            print(f"warning: {message}", file=sys.stderr)
    return messages


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
