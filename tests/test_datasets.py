"""Datasets: registry, provenance, derived columns, citations, export, remote cache."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import InputError, RunTable
from bayes_scaling.data.datasets import (
    bibtex_entries,
    cite,
    dataset_info,
    export_dataset,
    list_datasets,
    load_dataset,
    runs_from,
)
from bayes_scaling.data.remote import CACHE_ENV, RemoteDataError, fetch

EMBEDDED = ["chinchilla", "training-energy", "accelerators", "utilization", "published-fits"]
DERIVED = ["extrapolation-errors", "extrapolation-population"]  # computed by datasets/build/ scripts
REMOTE = {"epoch-chinchilla": 245, "misfitting-final": 240, "misfitting-curves": 4828, "gadre-c4": 34,
          "gadre-rpj": 35, "gadre-rw": 35, "gadre-rpj-indist": 35, "gadre-rw-indist": 35, "ml-energy-llm": 565,
          "gemstones": 199, "gadre-c4-tasks": 34, "gadre-rpj-tasks": 35, "gadre-rw-tasks": 35,
          "gadre-tasks": 51}


@pytest.fixture
def offline_cache(shared_data, monkeypatch):
    """Point the dataset cache at ../shared/data/remote, as the tests must run offline."""
    monkeypatch.setenv(CACHE_ENV, str(shared_data / "remote"))
    return shared_data / "remote"


def test_registry_lists_every_dataset():
    table = list_datasets()
    assert set(EMBEDDED) | set(DERIVED) | set(REMOTE) == set(table["name"])
    assert dict(zip(table["name"], table["storage"], strict=True))["epoch-chinchilla"] == "remote"
    assert dict(zip(table["name"], table["rows"], strict=True))["chinchilla"] == 245


@pytest.mark.parametrize("name", [*EMBEDDED, *DERIVED, *REMOTE])
def test_every_dataset_has_provenance_and_resolvable_citations(name):
    info = dataset_info(name)
    assert info.title and info.description and info.obtained and info.licence
    assert info.citation
    bib = cite(name)
    for key in info.citation:
        assert f"{{{key}," in bib
    if info.storage == "remote":
        assert info.url.startswith("https://")
        assert len(info.sha256 or "") == 64 or info.manifest


def test_every_table_row_cites_a_known_entry():
    known = bibtex_entries()
    for name in EMBEDDED[1:]:
        frame = load_dataset(name)
        for keys in frame["citation"]:
            for key in str(keys).split(";"):
                assert f"{{{key.strip()}," in known, (name, key)


def test_chinchilla_runs_with_derived_tokens():
    runs = load_dataset("chinchilla")
    assert isinstance(runs, RunTable) and len(runs) == 245
    np.testing.assert_allclose(runs.D, runs.C / (6 * runs.N), rtol=1e-12)
    assert runs.derived == {"D": "C/(6*N)"}
    assert runs.provenance["citation"] == ["hoffmann2022training"]
    assert runs.provenance["derived"] == {"D": "C/(6*N)"}
    assert 2.0 < runs.loss.min() < runs.loss.max() < 5.0


def test_training_energy_derived_columns_match_reported_energy():
    frame = load_dataset("training-energy").set_index("run")
    # GPT-3: 10,000 V100 × 14.8 days × 24 h × 330 W × PUE 1.10 = 1,289 MWh; reported 1,287.
    assert frame.loc["GPT-3 175B", "device_hours"] == pytest.approx(10_000 * 14.8 * 24)
    assert frame.loc["GPT-3 175B", "energy_mwh_from_hours"] == pytest.approx(1289.376)
    both = frame.dropna(subset=["energy_mwh_from_hours", "reported_energy_mwh"])
    assert len(both) == 14  # Patterson's four, LLaMA's six, Granite's four (hours x 700 W x PUE 1.3)
    np.testing.assert_allclose(both["energy_mwh_from_hours"], both["reported_energy_mwh"], rtol=0.01)
    # 6·N·D with the active parameters: all of a dense model's, a mixture of experts' active ones only;
    # never an MoE total; reported FLOP kept as reported.
    assert frame.loc["LLaMA-65B", "flop"] == pytest.approx(6 * 65.2e9 * 1.4e12)
    assert frame.loc["LLaMA-65B", "flop_basis"] == "6*active*D"
    assert frame.loc["DeepSeek-V3", "flop"] == pytest.approx(6 * 37e9 * 14.8e12)
    assert frame.loc["Granite 3.0 1B-A400M", "active"] == 0.4e9
    assert np.isnan(frame.loc["Switch Transformer", "active"])  # an MoE whose active size is not printed
    assert frame.loc["Llama-3.1-405B", "flop"] == 3.8e25
    assert np.isnan(frame.loc["GShard-600B", "tokens"]) and frame.loc["GShard-600B", "flop_basis"] == "reported"
    assert frame.attrs["provenance"]["derived"]["energy_mwh_from_hours"]


def test_accelerator_efficiency_is_computed():
    frame = load_dataset("accelerators").set_index("accelerator")
    assert frame.loc["NVIDIA H100 SXM5", "bf16_flop_per_joule"] == pytest.approx(989.4e12 / 700)
    assert frame.loc["NVIDIA H100 SXM5", "fp8_flop_per_joule"] == pytest.approx(1979e12 / 700)
    assert np.isnan(frame.loc["NVIDIA A100 SXM4", "fp8_flop_per_joule"])
    assert frame.loc["NVIDIA A100 SXM4", "release_year"] == pytest.approx(2020 + 134 / 366)


def test_utilization_fills_mfu_from_throughput():
    frame = load_dataset("utilization").set_index("run")
    assert frame.loc["GPT-3 175B", "mfu_mid"] == pytest.approx(24.6 / 125)
    assert frame.loc["GPT-3 175B", "mfu_low_basis"] == "achieved/peak"
    assert frame.loc["PaLM-540B", "mfu_mid"] == pytest.approx(0.462)


def test_published_fits_derive_muennighoff_constants():
    frame = load_dataset("published-fits")
    dc = frame[frame["law"] == "data-constrained"].set_index("parameter")["value"]
    assert dc["E"] == pytest.approx(1.869, abs=1e-3)
    assert dc["A"] == pytest.approx(520.8, abs=0.1)
    assert dc["B"] == pytest.approx(1487.7, abs=0.1)
    hoffmann = frame[(frame["law"] == "chinchilla")].set_index("parameter")["value"]
    assert hoffmann["alpha"] == 0.33917084


@pytest.mark.parametrize("name,rows", sorted(REMOTE.items()))
def test_remote_datasets_load_offline_from_the_cache(offline_cache, name, rows):
    data = load_dataset(name, download=False)
    assert len(data) == rows
    info = dataset_info(name)
    provenance = data.provenance if info.kind == "runs" else data.attrs["provenance"]
    if info.manifest:  # a set of files, each verified against the manifest's SHA-256
        assert provenance["manifest"] == info.manifest
    else:
        assert provenance["sha256"] == info.sha256


def test_remote_chinchilla_matches_embedded_digitization(offline_cache):
    theirs = load_dataset("epoch-chinchilla").data.sort_values(["C", "N"]).reset_index(drop=True)
    ours = load_dataset("chinchilla").data.sort_values(["C", "N"]).reset_index(drop=True)
    np.testing.assert_allclose(ours["C"], theirs["C"], rtol=2e-5)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=0.01)


def test_cached_file_with_wrong_hash_is_refused(shared_data, tmp_path):
    info = dataset_info("epoch-chinchilla")
    target = tmp_path / info.path
    target.parent.mkdir(parents=True)
    shutil.copy(shared_data / "remote" / info.path, target)
    with target.open("a") as handle:
        handle.write("1,2,3\n")
    with pytest.raises(RemoteDataError) as err:
        load_dataset("epoch-chinchilla", cache_dir=tmp_path)
    message = str(err.value)
    assert info.url in message and "expected " + info.sha256 in message and "by hand" in message


def test_missing_file_without_download_names_url_and_remedy(tmp_path):
    info = dataset_info("misfitting-final")
    with pytest.raises(RemoteDataError) as err:
        load_dataset("misfitting-final", cache_dir=tmp_path, download=False)
    assert info.url in str(err.value)
    assert str(tmp_path / info.path) in str(err.value)


def test_unreachable_host_is_a_clear_error(tmp_path):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(RemoteDataError, match=r"could not download http://127\.0\.0\.1:9/runs\.csv.*by hand"):
        fetch("http://127.0.0.1:9/runs.csv", "0" * 64, "x/runs.csv", cache=tmp_path)
    assert not (tmp_path / "x" / "runs.csv").exists()


def test_export_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "energy.csv"
    export_dataset("training-energy", out)
    frame = pd.read_csv(out)
    assert "energy_mwh_from_hours" in frame.columns and len(frame) == 54  # 34 reports and 20 Gemstones shapes
    with pytest.raises(InputError, match="exists; pass force=True"):
        export_dataset("training-energy", out)
    export_dataset("accelerators", out, force=True)
    assert len(pd.read_csv(out)) == 16


def test_runs_from_resolves_names_files_and_refuses_tables(tmp_path):
    assert len(runs_from("chinchilla")) == 245
    path = tmp_path / "runs.csv"
    path.write_text("N,D,loss\n1e8,2e9,3.5\n")
    assert len(runs_from(str(path))) == 1
    with pytest.raises(InputError, match="is a table, not a table of training runs"):
        runs_from("accelerators")
    with pytest.raises(InputError, match="neither a file nor a known dataset"):
        runs_from("chinchila")
    with pytest.raises(InputError, match="unknown dataset 'nope'"):
        dataset_info("nope")


def test_gadre_runs_read_from_their_json_files(offline_cache):
    """Gadre et al. 2024: one JSON file per run; C4 validation loss by default, as the paper uses."""
    c4, rpj, rpj_own = (load_dataset(n) for n in ("gadre-c4", "gadre-rpj", "gadre-rpj-indist"))
    assert (len(c4), len(rpj)) == (34, 35)
    assert c4.derived == {"C": "6*N*D"}
    np.testing.assert_allclose(c4.D / c4.N, c4.data["tokens_per_param_nominal"], rtol=0.05)
    assert c4.N.min() == pytest.approx(1.1e7, rel=0.1) and c4.N.max() == pytest.approx(6.9e9, rel=0.1)
    # The first c4 run, checked against its file by hand: 411,616,256 parameters, 2,058,081,280
    # tokens, C4 validation loss 3.5279 (its 'openlm' validation loss is 4.257).
    row = c4.data[c4.data["model"] == "c4_original-d=1024_l=24_h=8-0.25"].iloc[0]
    assert (row["N"], row["D"]) == (411616256.0, 2058081280.0)
    assert row["loss"] == pytest.approx(3.5279492850157737, rel=1e-12)
    # In-distribution loss is a different column of the same runs.
    assert np.array_equal(rpj.N, rpj_own.N) and not np.allclose(rpj.loss, rpj_own.loss)


def test_gemstones_runs_read_from_their_json_lines(offline_cache, tmp_path, monkeypatch):
    """Gemstones (McLeish et al. 2025): one JSON object per cooldown run; 20 shapes."""
    runs = load_dataset("gemstones")
    assert len(runs) == 199 and runs.derived == {"C": "6*N*D"} and runs.data["shape"].nunique() == 20
    # The first line of the file, checked by hand: PyGemma-1024x28, 543,482,880 parameters, step 2622,
    # 10,997,465,088 tokens (= 2622 × 2048 × 2048), final loss 3.0146045685.
    row = runs.data[(runs.data["shape"] == "1024x28") & (runs.data["step"] == 2622)].iloc[0]
    assert (row["N"], row["D"], row["width"], row["depth"]) == (543482880.0, 2622 * 2048 * 2048, 1024, 28)
    assert row["loss"] == pytest.approx(3.0146045685, rel=1e-12)
    assert runs.provenance["citation"] == ["mcleish2025gemstones"]
    # a damaged record names the file and line (the cached copy itself is verified by SHA-256 first)
    from bayes_scaling.data.datasets import _gemstones_runs

    bad = tmp_path / "cool_end.jsonl"
    bad.write_text('{"run_name": "PyGemma-256x3_pretrain", "tokens": 1}\n')
    with pytest.raises(InputError, match=r"cool_end.jsonl, line 1: not a Gemstones run record"):
        _gemstones_runs([bad], {})


def test_a_file_set_with_one_corrupted_file_is_refused(shared_data, tmp_path, monkeypatch):
    info = dataset_info("gadre-c4")
    shutil.copytree(shared_data / "remote" / info.path, tmp_path / info.path)
    victim = next((tmp_path / info.path / "exp_data" / "models").glob("*.json"))
    victim.write_text(victim.read_text() + " ")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with pytest.raises(RemoteDataError, match=f"cached copy .*{victim.name}.* expected"):
        load_dataset("gadre-c4", download=False)


def test_a_file_named_like_a_dataset_is_not_silently_taken(tmp_path, monkeypatch):
    (tmp_path / "chinchilla").write_text("N,D,loss\n1e8,2e9,3.0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="both a file in .* and a registered dataset; write ./chinchilla"):
        runs_from("chinchilla")
    assert len(runs_from("./chinchilla")) == 1  # the explicit path is the file
