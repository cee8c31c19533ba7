"""Batches of fits: the same results in this process, on joblib workers and on a real Dask cluster."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from simulate import simulate

from bayes_scaling.batch import run_batch, tasks_for
from bayes_scaling.errors import InputError

SETTINGS = {"draws": 200, "tune": 300, "chains": 2, "discrepancy": "none"}


def _tasks():
    datasets = {"a": simulate("kaplan-n+e", seed=31)[0], "b": simulate("kaplan-n+e", seed=32)[0]}
    return tasks_for(datasets, laws=["kaplan-n+e"], likelihoods=["normal"], seeds=[0, 1], settings=SETTINGS)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_results():
    distributed = pytest.importorskip("distributed")
    tasks = _tasks()
    seen = []
    local = run_batch(tasks, progress=lambda done, total, task: seen.append((done, total)))
    assert seen[-1] == (4, 4) and (local["worker_pid"] == os.getpid()).all()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = run_batch(tasks, executor=client)
    assert (remote["worker_pid"] != os.getpid()).all() and remote["worker_pid"].nunique() == 2
    columns = ["task", "draws_sha256", "E_median", "alpha_N_sd", "rhat_max"]
    pd.testing.assert_frame_equal(local[columns], remote[columns])


def test_bad_batches_are_refused(monkeypatch):
    import bayes_scaling.batch

    monkeypatch.setattr(bayes_scaling.batch, "SCHEDULER_TIMEOUT", "1s")  # nothing listens there: no need to wait
    with pytest.raises(InputError, match="no tasks"):
        run_batch([])
    with pytest.raises(InputError, match="seeds="):
        tasks_for({}, settings={"seed": 3})
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run_batch(_tasks()[:1], executor="tcp://127.0.0.1:9")


def test_a_task_that_cannot_be_fitted_stops_the_batch_before_any_fit():
    """A dataset too small for the law, or a cut that leaves too few runs, is named before any fitting."""
    import bayes_scaling as bs

    runs = simulate("kaplan-n+e", seed=31)[0]
    tiny = bs.read_runs(runs.data.iloc[:3], name="tiny")
    with pytest.raises(InputError, match=r"(?s)batch task tiny / kaplan-n\+e / normal / all runs / seed 0: .*only 3 runs"):
        tasks_for({"a": runs, "tiny": tiny}, laws=["kaplan-n+e"], likelihoods=["normal"], settings=SETTINGS)
    with pytest.raises(InputError, match=r"(?s)C <= .*only 1 run.*no task was run"):
        tasks_for({"a": runs}, laws=["kaplan-n+e"], likelihoods=["normal"], cuts=[float(runs.C.min())],
                  settings=SETTINGS)


@pytest.mark.slow
def test_batch_command_writes_one_table_of_fits(tmp_path, capsys):
    import json
    from pathlib import Path

    from bayes_scaling.cli import main

    small = Path(__file__).parent / "data" / "runs_small.csv"
    out = tmp_path / "batch"
    argv = ["-q", "batch", str(small), "--map", "N=params_M", "--map", "D=tokens_B", "--scale", "N=M", "--scale",
            "D=B", "--likelihoods", "normal", "--seeds", "0", "1", "--draws", "100", "--tune", "200", "--chains", "2",
            "--discrepancy", "none", "--out", str(out), "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["batch"]
    assert [r["seed"] for r in rows] == [0, 1] and rows[0]["draws_sha256"] != rows[1]["draws_sha256"]
    assert (out / "batch.csv").is_file() and (out / "batch.tex").is_file()
    assert main(["batch", "chinchilla", "--laws", "chinchila", "--out", str(tmp_path / "x")]) == 2
    assert "unknown law 'chinchila' in --laws" in capsys.readouterr().err
