"""Write the Gemstones runs' device-hours into ``training-energy`` (datasets/training-energy.csv).

Usage (the ``gemstones`` dataset read from the dataset cache; offline, point it at shared/data/remote)::

    BAYES_SCALING_DATA_DIR=../shared/data/remote python datasets/build/gemstones_hours.py

McLeish et al. (2025) trained 20 model shapes (48M–2.0B parameters, width 256–3072 × depth 3–80)
with litgpt and AxoNN on AMD MI250X GPUs of OLCF Frontier (four MI250X a node), and logged each
shape's mean time per step and node count.  One row per shape, its last cooldown (the longest
complete schedule, 99–110B tokens):

- devices = num_nodes × 4 (MI250X, the unit the ``accelerators`` peak is given for);
- device-hours = step × seconds_per_step × devices / 3600;
- FLOP = 6 · N · D (left to the ``training-energy`` derivation: no FLOP is printed).

The hours come from the steady time per step, so they leave out restarts, evaluation and queueing
that a reported total holds: fewer hours than a wall-clock count.  The rows share one lab, whose
partially pooled effect in the utilization regression absorbs that difference.  Rows of this
citation already in the table are replaced; every other row is kept as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bayes_scaling.data.datasets import load_dataset
from bayes_scaling.io.outputs import atomic_file

CITATION = "mcleish2025gemstones"
LAB = "University of Maryland"
YEAR = 2025  # arXiv 2502.06857, February 2025
MI250X_PER_NODE = 4
SOURCE = ("McLeish et al. 2025, Gemstones cooldown runs (wandb_dfs/wandb_df_for_fitting_cool_end.jsonl: step, "
          "seconds_per_step, num_nodes); hardware from the model cards")
DERIVED = "device_hours (step x seconds_per_step x devices / 3600); devices (num_nodes x 4 MI250X per Frontier node)"


def gemstones_rows() -> pd.DataFrame:
    """One ``training-energy`` row per Gemstones shape (its last cooldown).

    Returns
    -------
    pandas.DataFrame
    """
    runs = load_dataset("gemstones").to_frame()
    last = runs.sort_values("D").groupby("shape", sort=False).tail(1).sort_values("N")
    devices = last["num_nodes"] * MI250X_PER_NODE
    return pd.DataFrame({
        "run": "Gemstone-" + last["shape"], "lab": LAB, "year": YEAR, "params": last["N"].astype("int64"),
        "params_kind": "dense", "tokens": last["D"].astype("int64"), "hardware": "AMD MI250X", "precision": "bf16", "devices": devices,
        "device_hours": (last["step"] * last["seconds_per_step"] * devices / 3600.0).round(1),
        "source": SOURCE, "citation": CITATION, "derived_fields": DERIVED,
        "notes": [f"width {w} x depth {d}; {s:.3f} s per step on {n} nodes for {st} steps of 2048 x 2048 tokens. "
                  "Hours from the steady time per step: no restarts, evaluation or queueing."
                  for w, d, s, n, st in zip(last["width"], last["depth"], last["seconds_per_step"], last["num_nodes"],
                                            last["step"], strict=True)],
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=Path(__file__).resolve().parents[1] / "training-energy.csv",
                        help="the training-energy CSV to update (default: the project's)")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table, dtype=str, keep_default_na=False)
    kept = table[table["citation"] != CITATION]
    new = gemstones_rows().astype(str).reindex(columns=table.columns, fill_value="")
    with atomic_file(args.table) as tmp:
        pd.concat([kept, new], ignore_index=True).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
