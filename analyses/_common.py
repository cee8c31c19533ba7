"""Shared by the analysis scripts: an output folder that is never silently reused."""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from bayes_scaling.io.outputs import check_output_folder

HERE = Path(__file__).resolve().parent


def output_folder(name: str, description: str, *, extra=None) -> tuple[Path, argparse.Namespace]:
    """The script's output folder (refused when it holds results, unless --force) and its arguments;
    ``extra(parser)`` adds the script's own."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--out", default=str(HERE / "output" / name), help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace results in a non-empty output folder")
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws per chain")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # pip-installed PyTensor cannot link BLAS; our models use none.
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    out = Path(args.out)
    check_output_folder(out, force=args.force)
    out.mkdir(parents=True, exist_ok=True)
    return out, args
