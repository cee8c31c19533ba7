"""The fit cache proves what its entries are, and is never worth a result: a damaged, poisoned or
misfiled entry is recomputed with a warning (draws then as an untouched run's), and a cache that
cannot be written costs a warning, not the fit."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.calibration import rolling
from bayes_scaling.data.datasets import runs_from
from bayes_scaling.fitting import cached_fit, fit

SETTINGS = {"draws": 100, "tune": 150, "chains": 2, "seed": 2}


@pytest.fixture(scope="module")
def runs():
    everything = runs_from("chinchilla")
    return everything.subset(np.arange(len(everything)) % 3 == 0, label="every third run")


@pytest.fixture(scope="module")
def reference(runs):
    """A fit with its back-tests and no cache: what every recomputation must give."""
    return fit(runs, **SETTINGS)


def _same_fit(a, b) -> None:
    np.testing.assert_array_equal(a.draws("alpha"), b.draws("alpha"))
    np.testing.assert_array_equal(a.structural.b, b.structural.b)
    pd.testing.assert_frame_equal(a.structural.backtests, b.structural.backtests, check_exact=True)


def _backtest_entry(folder):
    entries = list(folder.glob("*-backtests-*.npz"))
    assert len(entries) == 1, entries
    return entries[0]


@pytest.mark.parametrize("damage", ["truncated", "empty", "errors x 50", "not a zip"])
def test_a_damaged_or_poisoned_backtest_entry_is_recomputed(runs, reference, tmp_path, caplog, monkeypatch, damage):
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())  # no reuse within the process
    _same_fit(fit(runs, cache_dir=tmp_path, **SETTINGS), reference)
    entry = _backtest_entry(tmp_path)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:200])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "not a zip":
        entry.write_text("hello")
    else:  # a well-formed file whose errors were changed: its content hash no longer matches
        with np.load(entry, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        arrays["error"] = arrays["error"] * 50
        with open(entry, "wb") as handle:
            np.savez(handle, **arrays)
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.calibration.rolling"):
        again = fit(runs, cache_dir=tmp_path, **SETTINGS)
    assert "computing them again" in caplog.text
    _same_fit(again, reference)
    assert _backtest_entry(tmp_path).stat().st_size > 1000  # the entry was written anew


def test_a_backtest_entry_filed_under_another_key_is_not_used(runs, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())
    fit(runs, cache_dir=tmp_path / "a", **SETTINGS)
    fit(runs, cache_dir=tmp_path / "b", **{**SETTINGS, "seed": 3})
    seed2, seed3 = _backtest_entry(tmp_path / "a"), _backtest_entry(tmp_path / "b")
    shutil.copyfile(seed3, seed2)  # seed 3's back-tests filed as seed 2's
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.calibration.rolling"):
        fit(runs, cache_dir=tmp_path / "a", **SETTINGS)
    assert "do not prove what they are" in caplog.text


def test_a_whole_fit_entry_of_other_settings_or_damaged_is_refitted(runs, reference, tmp_path, caplog):
    first, was_cached = cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=tmp_path, settings=SETTINGS)
    assert not was_cached
    other, _ = cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=tmp_path / "other",
                          settings={**SETTINGS, "seed": 3})
    entry = next(tmp_path.glob("chinchilla-student-t-*.nc"))
    shutil.copyfile(next((tmp_path / "other").glob("chinchilla-student-t-*.nc")), entry)  # seed 3 filed as seed 2
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.fitting"):
        again, was_cached = cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=tmp_path,
                                       settings=SETTINGS)
    assert not was_cached and "made with other settings" in caplog.text and "seed 3 (asked 2)" in caplog.text
    _same_fit(again, reference)
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.fitting"):
        again, was_cached = cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=tmp_path,
                                       settings=SETTINGS)
    assert not was_cached and "cannot be used" in caplog.text
    _same_fit(again, reference)
    assert cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=tmp_path, settings=SETTINGS)[1]


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_fit(runs, reference, tmp_path, caplog, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())
    with caplog.at_level(logging.WARNING):
        result, was_cached = cached_fit(runs, law="chinchilla", likelihood="student-t", cache_dir=blocked,
                                        settings=SETTINGS)
    assert not was_cached
    assert "could not write the cache entry" in caplog.text and "--no-cache" in caplog.text
    _same_fit(result, reference)
    assert blocked.read_text() == "a file where the cache folder should be"


@pytest.mark.parametrize("seed", ["-1", str(2 ** 64), "1.5", "abc"])
def test_a_seed_outside_what_the_samplers_take_is_refused_where_it_is_parsed(seed, capsys):
    from bayes_scaling.cli import main

    assert main(["energy", "--flop", "1e24", "--seed", seed]) == 2
    err = capsys.readouterr().err
    assert "a seed: a whole number from 0 to 2**64 - 1" in err and "Traceback" not in err


# ---------------------------------------------------------------- inputs refused before any work


def test_runs_that_do_not_vary_are_refused_by_name(tmp_path):
    from bayes_scaling import InputError
    from bayes_scaling import fit as fit_law

    frame = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 20), "D": np.geomspace(1e9, 1e11, 20), "loss": 2.5})
    with pytest.raises(InputError, match="every run has the same loss"):
        fit_law(frame, draws=10, tune=10, chains=1)
    frame = pd.DataFrame({"N": 1e8, "D": np.geomspace(1e9, 1e11, 20), "loss": np.linspace(3, 2.5, 20)})
    with pytest.raises(InputError, match="every run has the same N"):
        fit_law(frame, draws=10, tune=10, chains=1)


def test_the_api_says_what_runs_may_be_and_loads_a_fit_folder(tmp_path):
    from bayes_scaling import InputError, load_fit
    from bayes_scaling import fit as fit_law

    with pytest.raises(InputError, match="not numpy.ndarray; for arrays, pd.DataFrame"):
        fit_law(np.ones((5, 3)))
    with pytest.raises(InputError, match="a folder without a fit.nc"):
        load_fit(tmp_path)
    result = fit_law("chinchilla", draws=50, tune=100, chains=1, backtests=False, seed=1)
    result.save(tmp_path / "fit.nc")
    np.testing.assert_array_equal(load_fit(tmp_path).draws("alpha"), result.draws("alpha"))


def test_compare_with_nothing_to_compare_is_refused_before_fitting(tmp_path, capsys):
    from bayes_scaling.cli import main

    assert main(["compare", "chinchilla", "--laws", "chinchilla", "--out", str(tmp_path / "out")]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
