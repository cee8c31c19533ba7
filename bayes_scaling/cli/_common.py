"""What every subcommand shares: argument types, option groups, exit codes, paths."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bayes_scaling.errors import InputError

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
            if key.strip() in out:
                raise InputError(f"{option} {key.strip()} is given twice")
            out[key.strip()] = value.strip()
    return out


_REFUSED = object()


def _argument_type(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str,
                   name: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, and refuse it unless ``accept`` says yes."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = _REFUSED
        if value is _REFUSED or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = parse.__qualname__ = name
    return parse


positive_number = _argument_type(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0",
                                 "positive_number")
positive_int = _argument_type(int, lambda v: v >= 1, "a whole number ≥ 1", "positive_int")
credible_level = _argument_type(float, lambda v: 0 < v < 1, "a level strictly between 0 and 1 (e.g. 0.9)",
                                "credible_level")
finite_number = _argument_type(float, math.isfinite, "a finite number", "finite_number")
def _window(text: str) -> float | str | None:
    word = text.strip().lower()
    if word == "frontier":
        return "frontier"
    if word in ("all", "none"):
        return None
    return float(text)


#: ``--window``: a number of decades, ``frontier`` (the default rule) or ``all`` (every run; also ``none``).
training_window_option = _argument_type(
    _window, lambda v: v is None or v == "frontier" or (math.isfinite(v) and v > 0),
    "a number of decades > 0, 'frontier' or 'all'", "training_window_option")
def _scheduler(text: str) -> str:
    from urllib.parse import urlsplit

    address = text.strip()
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls", "ws", "wss") or not parts.hostname or " " in address or parts.path:
        raise ValueError(address)
    if parts.port is None or not 0 < parts.port < 65536:  # .port raises ValueError for a non-number
        raise ValueError(address)
    return address


#: ``--dask``: a Dask scheduler address, ``[tcp|tls|ws|wss://]HOST:PORT``.
scheduler_address = _argument_type(_scheduler, bool, "a Dask scheduler address such as tcp://10.0.0.5:8786",
                                   "scheduler_address")
#: A seed numpy and nutpie both take: a whole number from 0 to 2**64 - 1.
seed_number = _argument_type(int, lambda v: 0 <= v < 2 ** 64, "a seed: a whole number from 0 to 2**64 - 1",
                             "seed_number")


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


def _add_output_options(p: argparse.ArgumentParser, *, required: bool, default: str = "") -> None:
    where = f" (default: {default})" if default else ""
    p.add_argument("--out", required=required,
                   help=f"output folder{where}; it must be empty unless --force")
    p.add_argument("--force", action="store_true", help="replace results in a non-empty output folder")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")


def _add_grid_options(p: argparse.ArgumentParser, *, laws: str) -> None:
    """Datasets, laws and likelihoods to combine, and the sampler's size (compare, batch)."""
    p.add_argument("data", nargs="+", help="dataset name(s) or file(s) of runs")
    p.add_argument("--laws", default=laws, help=f"comma-separated laws (default {laws})")
    p.add_argument("--likelihoods", default="student-t", help="comma-separated likelihoods (default student-t)")
    add_sampler_size(p)


def _run_table_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "columns": parse_pairs(args.map, option="--map"),
        "scale": parse_pairs(args.scale, option="--scale"),
        "sep": args.sep,
        "duplicates": args.duplicates,
    }


def parse_priors(items: Sequence[str] | None) -> dict[str, str]:
    """``--prior alpha='LogNormal(mu=-1.1, sigma=0.3)'`` items into {name: spec}."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise InputError(f"--prior expects NAME=DISTRIBUTION(...), got {item!r}")
        if name.strip() in out:
            raise InputError(f"--prior {name.strip()} is given twice; give each parameter's prior once")
        out[name.strip()] = spec.strip()
    return out


def _moved(paths: Sequence[Path], stage: Path, out: Path) -> list[Path]:
    """Where files written into a staging folder are once it has moved into place."""
    return [out / Path(p).relative_to(stage) for p in paths]


def _resolve_fit_path(path: str) -> Path:
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "fit.nc"
    if not candidate.is_file():
        raise InputError(f"{path}: no fit found (expected a fit.nc file or a folder written by 'bayes-scaling fit')")
    return candidate


def _listed(text: str, allowed: Sequence[str], option: str) -> list[str]:
    """Comma-separated names, each one of ``allowed``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise InputError(f"unknown {option.lstrip('-').rstrip('s')} {name!r} in {option}; choose from "
                             f"{', '.join(allowed)}")
    if not names:
        raise InputError(f"{option} names nothing")
    return names


def _add_figures_option(p: argparse.ArgumentParser, *, default: str, cost: str) -> None:
    """``--figures FORMATS``: comma-separated from png, pdf, svg, or 'none' (see :func:`_figure_formats`)."""
    p.add_argument("--figures", default=default, metavar="FORMATS",
                   help=f"figure formats, comma-separated from png, pdf, svg, or 'none' (default: {default}; {cost})")


def fit_cache_folder(args: argparse.Namespace) -> Path | None:
    """The folder of ``--cache`` (default: the user's fit cache); None with ``--no-cache``.
    Checked before any work: a file there is refused, not found out after the fits."""
    from bayes_scaling.io.cache import default_fit_cache

    if getattr(args, "no_cache", False):
        return None
    folder = Path(args.cache) if args.cache else default_fit_cache()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--cache {folder}: is a file; the fit cache is a folder (give another path)")
    return folder


def _figure_formats(args: argparse.Namespace) -> list[str]:
    """The formats of ``--figures``; empty for 'none'.  Checked before any work starts."""
    from bayes_scaling.plots.style import FIGURE_FORMATS

    return [] if args.figures.strip() == "none" else _listed(args.figures, FIGURE_FORMATS, "--figures")


def _grid_of(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The laws and likelihoods of ``--laws`` and ``--likelihoods`` (see :func:`_add_grid_options`)."""
    from bayes_scaling.laws.registry import law_names
    from bayes_scaling.model.likelihoods import LIKELIHOODS

    return (_listed(args.laws, law_names(), "--laws"),
            _listed(args.likelihoods, list(LIKELIHOODS), "--likelihoods"))


def add_sampler_size(p: argparse.ArgumentParser, *, after_tuning: str = "") -> None:
    """--draws, --tune and --chains, their defaults from the one home of sampler defaults."""
    from bayes_scaling.sampling.settings import SAMPLER_DEFAULTS as d

    p.add_argument("--draws", type=positive_int, default=d.draws, help=f"draws per chain{after_tuning} (default {d.draws})")
    p.add_argument("--tune", type=positive_int, default=d.tune, help=f"tuning steps per chain (default {d.tune})")
    p.add_argument("--chains", type=positive_int, default=d.chains, help=f"chains (default {d.chains})")
