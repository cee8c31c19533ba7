"""Datasets shipped with, or registered by, bayes_scaling — each with its provenance.

The registry is ``datasets/registry.toml``.  Run data load as a :class:`RunTable` (its
``provenance`` attribute holds the registry entry); other tables load as a pandas
DataFrame with the provenance in ``DataFrame.attrs["provenance"]``.  Columns a table
derives (e.g. ``6·N·D``) are computed here, never typed into the files, and named in the
provenance.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_scaling._paths import data_dir
from bayes_scaling.data.reading import read_runs
from bayes_scaling.data.remote import fetch
from bayes_scaling.data.runs import FLOP_PER_PARAM_TOKEN, RunTable
from bayes_scaling.errors import InputError
from bayes_scaling.io.outputs import atomic_file

__all__ = ['DatasetInfo', 'list_datasets', 'dataset_info', 'load_dataset', 'runs_from', 'cite', 'export_dataset', 'bibtex_entries']

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what a dataset is and where it comes from.

    Parameters
    ----------
    name
        The dataset's name.
    kind
        ``runs`` or ``table``.
    storage
        ``embedded`` or ``remote``.
    title
        A title.
    description
        What it is.
    citation
        BibTeX keys.
    licence
        Its licence.
    obtained
        How it was obtained.
    units
        Units by column.
    file
        The embedded file.
    url
        The remote file's URL.
    sha256
        The remote file's SHA-256.
    path
        Its path in the cache.
    rows
        Rows (of a remote table).
    read
        Options of :func:`read_runs`.
    derive
        Columns derived by code.
    manifest
        SHA-256 of each file of a remote file set.
    reader
        The reader of a file set.
    select
        What the reader selects.
    curves
        For runs that are checkpoints of training curves: the columns that identify one curve
        (:mod:`bayes_scaling.isoflop.envelope`).
    tasks
        For runs with task accuracies: the table dataset that describes the tasks (``task``,
        ``chance``, ``items``; :mod:`bayes_scaling.data.tasks`).
    """

    name: str
    kind: str
    storage: str
    title: str
    description: str
    citation: tuple[str, ...]
    licence: str
    obtained: str
    units: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    url: str | None = None
    sha256: str | None = None
    path: str | None = None
    rows: int | None = None
    read: dict[str, Any] = field(default_factory=dict)
    derive: str | None = None
    manifest: str | None = None
    reader: str | None = None
    select: dict[str, Any] = field(default_factory=dict)
    tasks: str | None = None
    curves: tuple[str, ...] = ()

    def provenance(self) -> dict[str, Any]:
        """JSON-ready provenance (what is attached to a loaded dataset).

        Returns
        -------
        dict
        """
        out = {k: v for k, v in self.__dict__.items() if v not in (None, {}, ())}
        out["citation"] = list(self.citation)
        if self.curves:
            out["curves"] = list(self.curves)
        return out


@cache
def _registry() -> dict[str, DatasetInfo]:
    with (data_dir() / "registry.toml").open("rb") as handle:
        raw = tomllib.load(handle)
    return {name: DatasetInfo(name=name, **{**entry, "citation": tuple(entry.get("citation", ())),
                                            "curves": tuple(entry.get("curves", ()))})
            for name, entry in raw.items()}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; raises :class:`InputError` listing known names.

    Parameters
    ----------
    name
        A dataset name.

    Returns
    -------
    DatasetInfo
    """
    registry = _registry()
    if name not in registry:
        raise InputError(f"unknown dataset {name!r}; known datasets: {', '.join(registry)}")
    return registry[name]


def list_datasets() -> pd.DataFrame:
    """The registered datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset: ``name``, ``kind`` (runs or table), ``rows``, ``storage`` (embedded or
        remote), ``title`` and ``citation`` keys.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> table = bs.list_datasets()
    >>> row = table.set_index("name").loc["chinchilla"]
    >>> row["kind"], int(row["rows"]), row["storage"]
    ('runs', 245, 'embedded')
    """
    rows = []
    for info in _registry().values():
        count = info.rows if info.storage == "remote" else len(load_dataset(info.name))
        rows.append({"name": info.name, "kind": info.kind, "rows": count, "storage": info.storage,
                     "title": info.title, "citation": ", ".join(info.citation)})
    return pd.DataFrame(rows)


def load_dataset(name: str, *, cache_dir: str | os.PathLike | None = None,
                 download: bool = True) -> RunTable | pd.DataFrame:
    """Load a dataset by name, with its provenance attached.

    Parameters
    ----------
    name
        A name from :func:`list_datasets` (``bayes-scaling datasets``).
    cache_dir
        Folder of the remote-dataset cache (default: ``$BAYES_SCALING_DATA_DIR`` or the
        user cache directory).
    download
        Whether a remote dataset missing from the cache may be downloaded.

    Returns
    -------
    RunTable or pandas.DataFrame
        A ``RunTable`` for run data (provenance in ``.provenance``); a DataFrame for other
        tables (provenance in ``.attrs["provenance"]``).

    Raises
    ------
    InputError
        For an unknown name; :class:`~bayes_scaling.data.remote.RemoteDataError` for a remote file
        that cannot be obtained (with how to provide it by hand).

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> runs = bs.load_dataset("chinchilla")
    >>> len(runs), runs.derived
    (245, {'D': 'C/(6*N)'})
    """
    info = dataset_info(name)
    if info.manifest:
        source: Any = _READERS[str(info.reader)](_fetch_file_set(info, cache_dir, download), info.select)
    elif info.storage == "remote":
        assert info.url and info.sha256 and info.path, f"registry entry {name} lacks url/sha256/path"
        source = fetch(info.url, info.sha256, info.path, cache=cache_dir, download=download)
    else:
        source = data_dir() / str(info.file)
    provenance = info.provenance()
    if info.kind == "runs":
        table = read_runs(source, name=name, **info.read)
        return RunTable(data=table.data, source=name, derived=table.derived, column_map=table.column_map,
                        scales=table.scales, provenance={**provenance, "derived": dict(table.derived)})
    frame = source if isinstance(source, pd.DataFrame) else pd.read_csv(source)
    derived: dict[str, str] = {}
    if info.derive:
        frame, derived = _DERIVERS[info.derive](frame)
    frame.attrs["provenance"] = {**provenance, "derived": derived}
    return frame


# --------------------------------------------------------------------------- remote file sets
def _fetch_file_set(info: DatasetInfo, cache_dir: str | os.PathLike | None, download: bool) -> list[Path]:
    """Every file of a manifest (``SHA-256  relative path`` per line), fetched and verified."""
    assert info.url and info.path, f"registry entry {info.name} lacks url/path"
    paths = []
    for line in (data_dir() / str(info.manifest)).read_text().splitlines():
        if not line.strip():
            continue
        sha256, relative = line.split(maxsplit=1)
        paths.append(fetch(info.url + relative, sha256, info.path + relative, cache=cache_dir, download=download))
    return paths


def _gadre2024_runs(paths: list[Path], select: dict[str, Any]) -> pd.DataFrame:
    """Runs of Gadre et al. 2024 from their per-model JSON files: one training set, one validation loss.

    ``select["loss"]`` names the validation set by the folder of its ``val_data`` path
    (``c4_val``, ``paloma_redpajama``, ``paloma_falcon-refinedweb`` …).
    """
    rows = []
    for path in paths:
        record = json.loads(path.read_text())
        if record["dataset_name"] != select["dataset_name"]:
            continue
        hyper = record["hyperparameters"]
        losses = {Path(result["val_data"][0]).parent.name: result["loss"] for result in record["results"]}
        if select["loss"] not in losses:
            raise InputError(f"{path}: no validation loss {select['loss']!r} (it has {', '.join(sorted(losses))})")
        rows.append({"model": record["name"], "N": float(hyper["params"]), "D": float(hyper["tokens"]),
                     "loss": float(losses[select["loss"]]), "params_no_embed": float(hyper["params_no_embed"]),
                     "tokens_per_param_nominal": 20.0 * float(hyper["chinchilla_multiplier"])})
    return pd.DataFrame(rows).sort_values(["N", "D"], ignore_index=True)  # C is derived as 6·N·D


def _gadre2024_tasks(paths: list[Path], select: dict[str, Any]) -> pd.DataFrame:
    """The Gadre et al. 2024 runs of :func:`_gadre2024_runs` with one column per downstream task: the
    accuracy (0–1) of ``eval_metrics.icl`` in the run's ``evaluation_<model>_heavy.json``."""
    models = [p for p in paths if p.parent.name == "models"]
    evals = {p.name: p for p in paths if p.parent.name == "evals"}
    runs = _gadre2024_runs(models, select)
    stems = {json.loads(p.read_text())["name"]: p.stem for p in models}
    rows = []
    for model in runs["model"]:
        name = f"evaluation_{stems[model]}_heavy.json"
        if name not in evals:
            raise InputError(f"no evaluation file {name} for the run {model} (the manifest lists the files of evals/)")
        try:
            accuracies = json.loads(evals[name].read_text())["eval_metrics"]["icl"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{evals[name]}: not an evaluation record with eval_metrics.icl ({exc})") from None
        rows.append({task: float(value) for task, value in sorted(accuracies.items())})
    tasks = pd.DataFrame(rows)
    if tasks.isna().any().any():
        missing = tasks.columns[tasks.isna().any()].tolist()
        raise InputError(f"the evaluation files do not all have the same tasks: {', '.join(missing)} missing in some")
    return pd.concat([runs, tasks], axis=1)


def _gemstones_runs(paths: list[Path], select: dict[str, Any]) -> pd.DataFrame:
    """Gemstones cooldown runs (McLeish et al. 2025): one JSON object a line, one run each."""
    rows = []
    for path in paths:
        for line_number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append({"shape": record["run_name"].removeprefix("PyGemma-").removesuffix("_pretrain"),
                             "N": float(record["params_active_precise"]), "D": float(record["tokens"]),
                             "loss": float(record["final_loss"]), "width": int(record["width"]),
                             "depth": int(record["depth"]), "step": int(record["step"]),
                             "seconds_per_step": float(record["seconds_per_step"]),
                             "num_nodes": int(record["num_nodes"])})
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}, line {line_number}: not a Gemstones run record ({type(exc).__name__}: "
                                 f"{exc}); expected run_name, params_active_precise, tokens, final_loss, width, "
                                 "depth, step, seconds_per_step, num_nodes") from None
    return pd.DataFrame(rows).sort_values(["N", "D"], ignore_index=True)  # C is derived as 6·N·D


def _mlenergy_llm(paths: list[Path], select: dict[str, Any]) -> pd.DataFrame:
    """LLM serving configurations of the ML.ENERGY leaderboard, one row per task × configuration."""
    columns = {"model_id": "model_id", "nickname": "nickname", "architecture": "architecture",
               "total_params_billions": "total_params_b", "activated_params_billions": "active_params_b",
               "weight_precision": "weight_precision", "gpu_model": "gpu", "num_gpus": "num_gpus",
               "tensor_parallel": "tensor_parallel", "expert_parallel": "expert_parallel",
               "data_parallel": "data_parallel", "max_num_seqs": "max_num_seqs", "avg_batch_size": "avg_batch_size",
               "avg_output_len": "avg_output_len", "energy_per_token_joules": "energy_per_token_j",
               "energy_per_request_joules": "energy_per_request_j",
               "output_throughput_tokens_per_sec": "output_tokens_per_s", "avg_power_watts": "avg_power_w",
               "median_itl_ms": "median_itl_ms"}
    frames = []
    for path in paths:
        record = json.loads(path.read_text())
        frame = pd.DataFrame(record["configurations"])
        missing = sorted(set(columns) - set(frame.columns))
        if missing:
            raise InputError(f"{path}: configurations lack {', '.join(missing)}")
        frames.append(frame[list(columns)].rename(columns=columns).assign(task=record["task"]))
    out = pd.concat(frames, ignore_index=True)
    out.insert(1, "family", out["model_id"].str.replace(r"-FP8$", "", regex=True))
    return out


_READERS = {"gadre2024": _gadre2024_runs, "gadre2024_tasks": _gadre2024_tasks, "gemstones": _gemstones_runs, "mlenergy_llm": _mlenergy_llm}


# --------------------------------------------------------------------------- derived columns
def _training_energy(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    out = frame.copy()
    dense = out["params_kind"].eq("dense")
    out["active"] = out["active_params"].where(out["active_params"].notna(), out["params"].where(dense))
    six_nd = FLOP_PER_PARAM_TOKEN * out["active"] * out["tokens"]
    out["flop"] = out["reported_flop"].where(out["reported_flop"].notna(), six_nd)
    out["flop_basis"] = np.where(out["reported_flop"].notna(), "reported",
                                 np.where(six_nd.notna(), "6*active*D", "unknown"))
    from_days = out["devices"] * out["duration_days"] * 24.0
    out["device_hours_basis"] = np.where(out["device_hours"].notna(), "reported",
                                         np.where(from_days.notna(), "devices*days*24", "unknown"))
    out["device_hours"] = out["device_hours"].where(out["device_hours"].notna(), from_days)
    out["energy_mwh_from_hours"] = out["device_hours"] * out["power_per_device_w"] * out["pue"] / 1e6
    return out, {
        "active": "active_params, else params for dense models",
        "flop": "reported_flop, else 6*active*tokens",
        "device_hours": "reported, else devices*duration_days*24",
        "energy_mwh_from_hours": "device_hours*power_per_device_w*pue/1e6",
    }


def _accelerators(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    out = frame.copy()
    dates = pd.to_datetime(out["release_date"], format="%Y-%m-%d")
    start = pd.to_datetime(dates.dt.year.astype(str) + "-01-01")
    days_in_year = np.where(dates.dt.is_leap_year, 366.0, 365.0)
    out["release_year"] = dates.dt.year + (dates - start).dt.days / days_in_year
    out["bf16_flop_per_joule"] = out["bf16_flops"] / out["tdp_w"]
    out["fp8_flop_per_joule"] = out["fp8_flops"] / out["tdp_w"]
    return out, {
        "release_year": "decimal year of release_date",
        "bf16_flop_per_joule": "bf16_flops/tdp_w",
        "fp8_flop_per_joule": "fp8_flops/tdp_w",
    }


def _utilization(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    out = frame.copy()
    for side in ("low", "high"):
        from_tp = out[f"achieved_tflops_{side}"] / out["peak_tflops"]
        out[f"mfu_{side}_basis"] = np.where(out[f"mfu_{side}"].notna(), "reported",
                                            np.where(from_tp.notna(), "achieved/peak", "unknown"))
        out[f"mfu_{side}"] = out[f"mfu_{side}"].where(out[f"mfu_{side}"].notna(), from_tp)
    out["mfu_mid"] = (out["mfu_low"] + out["mfu_high"]) / 2
    return out, {
        "mfu_low, mfu_high": "reported, else achieved_tflops/peak_tflops",
        "mfu_mid": "(mfu_low+mfu_high)/2",
    }


def _published_fits(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    logs = frame[frame["parameter"].str.startswith("log_")]
    extra = logs.assign(parameter=logs["parameter"].str.removeprefix("log_"),
                        value=np.exp(logs["value"]),
                        note="derived: exp of the published log-form value")
    out = pd.concat([frame, extra], ignore_index=True)
    return out, {"E, A, B of data-constrained": "exp(log_E), exp(log_A), exp(log_B)"}


def _gadre_tasks(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    out = pd.DataFrame({"task": frame["Eval Task"], "category": frame["Task Category"], "type": frame["Task Type"],
                        "shots": frame["#shots"], "items": frame["#datapoints"],
                        "chance": frame["Random baseline"] / 100.0, "description": frame["Description"]})
    return out, {"chance": "Random baseline / 100"}


_DERIVERS: dict[str, Callable[[pd.DataFrame], tuple[pd.DataFrame, dict[str, str]]]] = {
    "training_energy": _training_energy,
    "accelerators": _accelerators,
    "utilization": _utilization,
    "published_fits": _published_fits,
    "gadre_tasks": _gadre_tasks,
}


# --------------------------------------------------------------------------- citations, export
def bibtex_entries(keys: list[str] | tuple[str, ...] | None = None) -> str:
    """BibTeX entries from ``references.bib`` for ``keys`` (all when ``None``), in that order.

    Parameters
    ----------
    keys
        Citation keys (None: all).

    Returns
    -------
    str
    """
    text = (data_dir() / "references.bib").read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    for match in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,", text):
        start, depth = match.start(), 0
        for end in range(text.index("{", start), len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                entries[match.group(1)] = text[start:end + 1]
                break
    wanted = list(entries) if keys is None else list(dict.fromkeys(keys))
    missing = [k for k in wanted if k not in entries]
    if missing:
        raise InputError(f"no BibTeX entry for {', '.join(missing)} in references.bib")
    return "\n\n".join(entries[k] for k in wanted) + "\n"


def cite(name: str) -> str:
    """BibTeX for a dataset's sources.

    Parameters
    ----------
    name
        A name from :func:`list_datasets`.

    Returns
    -------
    str
        The BibTeX entries of every work the dataset cites.

    Raises
    ------
    InputError
        For an unknown dataset.

    Examples
    --------
    >>> import bayes_scaling as bs
    >>> print(bs.cite("chinchilla").splitlines()[0])
    @inproceedings{hoffmann2022training,
    """
    return bibtex_entries(dataset_info(name).citation)


def export_dataset(name: str, out: str | os.PathLike, *, force: bool = False,
                   cache_dir: str | os.PathLike | None = None) -> Path:
    """Write a dataset (with derived columns) to CSV, atomically; never overwrite unless ``force``.

    Parameters
    ----------
    name
        A dataset name.
    out
        The CSV file to write.
    force
        Replace an existing file.
    cache_dir
        The cache folder (None: no cache).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = Path(out)
    if target.is_dir():
        raise InputError(f"{target} is a folder; give the CSV file to write, e.g. {target / (name + '.csv')}")
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass force=True (command line: --force) to replace it")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent} is not a folder")
    data = load_dataset(name, cache_dir=cache_dir)
    frame = data.to_frame() if isinstance(data, RunTable) else data
    with atomic_file(target) as tmp:
        frame.to_csv(tmp, index=False)
    return target


def runs_from(spec: str | os.PathLike | pd.DataFrame | RunTable, **read_options: Any) -> RunTable:
    """A run table from a dataset name, a file path, a DataFrame or a RunTable.

    A string that names an existing file is read as a file; otherwise it must be the name
    of a ``runs`` dataset.  ``read_options`` go to :func:`read_runs` for files and frames.

    Parameters
    ----------
    spec
        A dataset name, a file path, a DataFrame or a RunTable.
    **read_options
        Options of :func:`read_runs`.

    Returns
    -------
    RunTable
    """
    if not isinstance(spec, str | os.PathLike | pd.DataFrame | RunTable):
        raise InputError(f"runs must be a dataset name, a file path, a pandas DataFrame or a RunTable, not "
                         f"{type(spec).__module__}.{type(spec).__qualname__}; for arrays, "
                         f"pd.DataFrame({{'N': ..., 'D': ..., 'loss': ...}})")
    if isinstance(spec, str) and spec in _registry() and Path(spec).is_file():
        raise InputError(f"{spec!r} is both a file in {Path.cwd()} and a registered dataset; write ./{spec} for "
                         f"the file, or rename it to use the dataset")
    if isinstance(spec, str) and not Path(spec).is_file() and spec in _registry():
        info = dataset_info(spec)
        if info.kind != "runs":
            raise InputError(f"dataset {spec!r} is a {info.kind}, not a table of training runs")
        used = {k: v for k, v in read_options.items() if v not in (None, {}, "error")}
        if used:
            raise InputError(f"{', '.join(used)} apply to files, not to the registered dataset {spec!r}")
        table = load_dataset(spec)
        assert isinstance(table, RunTable)
        return table
    if isinstance(spec, str) and not Path(spec).exists() and not re.search(r"[./\\]", spec):
        raise InputError(f"{spec!r} is neither a file nor a known dataset "
                         f"(runs datasets: {', '.join(n for n, i in _registry().items() if i.kind == 'runs')})")
    return read_runs(spec, **read_options)
