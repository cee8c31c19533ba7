"""``bayes-scaling report``: the whole analysis into one folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    import time

    import pandas as pd

    from bayes_scaling.forecast.tables import compact
    from bayes_scaling.io.tables import to_markdown
    from bayes_scaling.report.config import load_config
    from bayes_scaling.report.steps import run_report

    config = load_config(args.config)
    start = time.perf_counter()
    manifest = run_report(config, args.out, force=args.force, config_path=args.config)
    out = Path(args.out)
    if not args.json:
        forecast = pd.read_csv(out / "tables" / "forecast.csv")
        columns = [c for c in forecast.columns if c.split("_")[0] in ("C", "N", "D", "tokens", "loss")
                   and not c.startswith("loss_pred")]
        print(f"\nHeadline forecast ({manifest['forecast']['by']} on {config.data}; medians "
              f"[{config.level:.0%} intervals]):")
        print(to_markdown(compact(forecast[columns]), index=False))
        energy = pd.read_csv(out / "tables" / "energy_budgets.csv")
        if config.hardware:
            keep, on = energy, f"on {config.hardware}"
        else:
            first, last = config.years[0], config.years[-1]
            keep = energy[energy["hardware"].isin([f"new chip, {first:g}", f"new chip, {last:g}"])]
            on = f"on the expected hardware of {first:g}" + ("" if first == last else f" and {last:g}")
        print(f"Training energy (MWh) {on}:")
        print(to_markdown(compact(keep[["flop", "hardware", "energy_mwh", "energy_mwh_lower", "energy_mwh_upper"]]),
                          index=False))
        print(f"report written to {out / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return manifest


def add_parser(sub) -> None:
    """Add this subcommand's arguments, next to its handler."""
    p = sub.add_parser("report", help="the whole analysis: fit, compare, forecast, energy -> a report folder",
                       description="Fit the default law to the bundled Chinchilla runs (or the data of --config), "
                                   "compare laws, forecast loss and allocation for 1e22-1e27 FLOP and the training "
                                   "energy for 2025-2030, and write index.html, figures/, tables/, references.bib, "
                                   "fit.nc and manifest.json. Every choice can be set in a TOML file (see "
                                   "bayes_scaling.report.config.ReportConfig).")
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--out", default="report", help="output folder (default: report); must be empty unless --force")
    p.add_argument("--force", action="store_true", help="replace results in a non-empty output folder")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_cmd_report)
