"""``bayes-scaling validate`` and ``bayes-scaling datasets``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bayes_scaling.cli._common import _add_run_table_options, _Parser, _run_table_kwargs


def _cmd_validate(args: argparse.Namespace) -> dict[str, Any]:
    from bayes_scaling.data.datasets import runs_from
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
    from bayes_scaling.data.datasets import (
        cite,
        dataset_info,
        export_dataset,
        list_datasets,
        load_dataset,
    )
    from bayes_scaling.data.runs import RunTable
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
            import pandas as pd

            with pd.option_context("display.width", 160, "display.max_columns", 12):
                print(frame.head(10).to_string(max_colwidth=28))
    return payload


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
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
