"""Outputs are all-or-nothing: atomic files, staged folders, a lock, --force that never deletes inputs."""

from __future__ import annotations

import json
import os

import pytest

from bayes_scaling import InputError
from bayes_scaling.io.outputs import (
    MARKER,
    Stopped,
    atomic_file,
    check_output_folder,
    clear_stop,
    free_folder,
    output_folder,
    request_stop,
)


def leftovers(parent):
    """Hidden staging, replaced or lock entries left beside output folders."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and p.name != MARKER)


def test_a_successful_run_moves_the_folder_into_place_with_its_marker(tmp_path):
    target = tmp_path / "out"
    with output_folder(target, command="test") as stage:
        assert stage != target and not target.exists()
        (stage / "a.csv").write_text("1")
        (stage / "figures").mkdir()
        (stage / "figures" / "f.png").write_bytes(b"png")
    assert (target / "a.csv").read_text() == "1"
    marker = json.loads((target / MARKER).read_text())
    assert marker["written_by"] == "test" and marker["files"] == ["a.csv", "figures/f.png"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_run_leaves_nothing(tmp_path, failure):
    target = tmp_path / "out"
    with pytest.raises(type(failure)), output_folder(target) as stage:
        (stage / "half.csv").write_text("partial")
        raise failure
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_a_failed_forced_run_leaves_the_previous_results(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as stage:
        (stage / "result.csv").write_text("old")
    with pytest.raises(RuntimeError), output_folder(target, force=True) as stage:
        (stage / "result.csv").write_text("new, half written")
        raise RuntimeError("sampling failed")
    assert (target / "result.csv").read_text() == "old"
    assert leftovers(tmp_path) == []


def test_force_replaces_earlier_results_and_drops_stale_files(tmp_path):
    target = tmp_path / "out"
    with output_folder(target) as stage:
        (stage / "old_table.csv").write_text("stale")
        (stage / "keep.csv").write_text("1")
    with output_folder(target, force=True) as stage:
        (stage / "keep.csv").write_text("2")
    assert not (target / "old_table.csv").exists()
    assert (target / "keep.csv").read_text() == "2"


def test_without_force_a_non_empty_folder_is_refused_before_any_work(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "x").write_text("x")
    with pytest.raises(InputError, match="is not empty; choose another folder or pass --force"):
        check_output_folder(target)
    with pytest.raises(InputError, match="is not empty"), output_folder(target):
        pytest.fail("the body must not run")


def test_force_never_deletes_files_it_did_not_write(tmp_path):
    target = tmp_path / "mydata"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds files that bayes-scaling did not write \(notes.txt\)"):
        with output_folder(target, force=True):
            pytest.fail("the body must not run")
    assert (target / "notes.txt").read_text() == "mine"


def test_an_input_inside_the_output_folder_is_refused(tmp_path):
    target = tmp_path / "mydata"
    with output_folder(target) as stage:  # an earlier result folder …
        (stage / "summary.csv").write_text("N,D,loss\n")
    data = target / "summary.csv"  # … whose file is now this command's input
    with pytest.raises(InputError, match="holds this command's input"):
        check_output_folder(target, force=True, inputs=[data])
    assert data.read_text() == "N,D,loss\n"


def test_a_second_writer_of_the_same_folder_is_refused_while_the_first_works(tmp_path):
    target = tmp_path / "race"
    with output_folder(target) as stage:
        (stage / "first.csv").write_text("1")
        with pytest.raises(InputError, match="is being written by another bayes-scaling run"):
            with output_folder(target):
                pytest.fail("the second body must not run")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "first.csv"]
    with output_folder(target, force=True) as stage:  # the lock is free again
        (stage / "second.csv").write_text("2")
    assert (target / "second.csv").exists()


def test_stale_staging_of_a_killed_run_is_cleaned_up(tmp_path):
    target = tmp_path / "out"
    stale = tmp_path / ".out.staging-99999999"
    stale.mkdir()
    (stale / "half.nc").write_bytes(b"x")
    with output_folder(target) as stage:
        (stage / "a").write_text("a")
    assert not stale.exists() and (target / "a").exists()


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("I am a file")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "out")


def test_nested_result_folders_count_as_results(tmp_path):
    """A forecast folder inside a fit folder is a result too: fit --force may replace both."""
    fit_dir = tmp_path / "fit"
    with output_folder(fit_dir) as stage:
        (stage / "fit.nc").write_bytes(b"nc")
    with output_folder(fit_dir / "forecast") as stage:
        (stage / "forecast.csv").write_text("x")
    check_output_folder(fit_dir, force=True)  # no foreign files


def test_free_folder_picks_the_next_unused_name(tmp_path):
    assert free_folder(tmp_path / "forecast") == tmp_path / "forecast"
    (tmp_path / "forecast").mkdir()
    assert free_folder(tmp_path / "forecast") == tmp_path / "forecast"  # empty: usable
    (tmp_path / "forecast" / "a").write_text("a")
    assert free_folder(tmp_path / "forecast") == tmp_path / "forecast-2"


def test_atomic_file_keeps_the_old_content_on_failure(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["table.csv"]
    with atomic_file(target) as tmp:
        assert tmp.suffix == ".csv"  # writers that pick a format by extension still work
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["table.csv"]


@pytest.mark.parametrize("name", [".", "..", ""])
def test_the_current_folder_is_never_an_output_folder(tmp_path, monkeypatch, name):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(InputError, match="is the current folder"):
        check_output_folder(name, force=True)
    assert work.is_dir() and list(tmp_path.iterdir()) == [work]


def test_a_stop_swallowed_by_a_finalizer_still_writes_nothing(tmp_path):
    """SIGTERM's exception raised inside a __del__ is ignored by Python (seen in CI: a report
    finished and exited 0); the recorded request still stops the commit."""
    class Finalized:
        def __del__(self):
            request_stop()

    previous = tmp_path / "out"
    with output_folder(previous, command="first") as stage:
        (stage / "a.txt").write_text("first")
    try:
        with pytest.raises(Stopped), output_folder(previous, force=True) as stage:
            (stage / "a.txt").write_text("second")
            finalized = Finalized()
            del finalized  # Stopped raised in __del__: printed as "Exception ignored", not propagated
        assert (previous / "a.txt").read_text() == "first"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    finally:
        clear_stop()
    with output_folder(previous, force=True) as stage:  # cleared: the next run writes
        (stage / "a.txt").write_text("third")
    assert (previous / "a.txt").read_text() == "third"
