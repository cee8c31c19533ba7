"""The downstream forecast: task tables, the two-step model's recovery and coverage on data simulated
from it, near-chance tasks, the point baseline, saving, the command line and bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.cli import main
from bayes_scaling.data.reading import read_runs
from bayes_scaling.data.tasks import (
    declared_tasks,
    default_tasks,
    task_accuracies,
    task_columns,
    task_table,
)
from bayes_scaling.downstream.checks import backtest_summary, downstream_backtest
from bayes_scaling.downstream.model import fit_downstream, load_downstream
from bayes_scaling.downstream.sigmoid import point_sigmoid, sigmoid_accuracy
from bayes_scaling.downstream.simulate import simulate_task_ladder
from bayes_scaling.errors import InputError, RunTableError
from bayes_scaling.sampling.diagnostics import SamplingWarning

TRUE = {  # chance, ceiling, k, m in standardized −log10 C, items
    "easy": (0.25, 0.90, 1.5, 0.8, 2000),
    "hard": (0.25, 0.80, 2.5, -1.0, 1000),
    "binary": (0.50, 0.85, 1.0, 0.0, 1500),
    "open": (0.00, 0.70, 1.2, -0.5, 3000),
    "flat": (0.25, 0.26, 1.0, 0.0, 5000),  # at chance throughout
}


def simulated_runs(seed: int = 0) -> pd.DataFrame:
    return simulate_task_ladder(TRUE, seed=seed)


ITEMS = {task: spec[4] for task, spec in TRUE.items()}
CHANCE = {task: spec[0] for task, spec in TRUE.items()}


@pytest.fixture(scope="module")
def simulated():
    runs = read_runs(simulated_runs(), name="simulated")
    cut = float(np.sort(runs.C)[-6])
    with warnings.catch_warnings():  # tiny draws: the four tasks' hyperparameters mix slowly (checked below)
        warnings.simplefilter("ignore", SamplingWarning)
        fit = fit_downstream(runs, chance=CHANCE, items=ITEMS, through="compute", cut=cut, draws=300, tune=400,
                             chains=2, seed=3)
    return runs, cut, fit


def test_task_columns_are_found_and_described():
    runs = read_runs(simulated_runs(), name="simulated")
    assert task_columns(runs) == list(TRUE)
    table = task_table(runs, chance={"easy": 0.25}, items=ITEMS)
    assert table.set_index("task").loc["easy", "chance_source"] == "given"
    assert table.set_index("task").loc["open", "chance"] == 0.0  # assumed 0, said so
    assert table.set_index("task").loc["open", "chance_source"] == "assumed 0"
    with pytest.raises(InputError, match="no column 'nope'"):
        task_table(runs, ["nope"])


def test_percentages_are_refused_with_row_and_column(tmp_path):
    frame = simulated_runs()
    frame["easy"] = frame["easy"].astype(object)
    frame.loc[3, "easy"] = 45.0
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runs = read_runs(path)
    with pytest.raises(RunTableError, match=r"line 5, column 'easy': 45.0 is not an accuracy in \[0, 1\]"):
        task_accuracies(runs, ["easy"])


def test_near_chance_task_is_reported_not_forecast(simulated):
    runs, cut, fit = simulated
    status = fit.tasks.set_index("task")["status"]
    assert status["flat"] == "near chance"
    assert (status.drop("flat") == "fitted").all()
    held = runs.subset(runs.C >= cut)
    draws = fit.accuracy(N=held.N, D=held.D)
    assert np.isnan(draws.sel(task="flat").values).all()
    assert np.isfinite(draws.sel(task="easy").values).all()
    assert draws.dims == ("draw", "task", "run")


def test_parameters_are_recovered(simulated):
    runs, _, fit = simulated
    # tiny draws: the hyperparameters of four tasks mix slowly; the tasks' own parameters must not
    from arviz_stats import rhat

    assert fit.diagnostics.divergences == 0, str(fit.diagnostics)
    own = rhat(fit.tree["posterior"].to_dataset(), var_names=["k", "m", "ceiling"])
    assert max(float(own[v].max()) for v in own.data_vars) < 1.05, own
    # the truth is standardized over all the runs, the fit over those below the cut: k·(m − z) is
    # the same curve in −log10 C with k' = k·s_fit/s_all, m' = (x̄_all + s_all·m − x̄_fit) / s_fit
    x_all = -np.log10(runs.C)
    scale = x_all.std() / fit.x_scale
    post = fit.tree["posterior"]
    for j, task in enumerate(fit.fitted_tasks):
        _, _, k, m, _ = TRUE[task]
        truths = {"k": k / scale, "m": (x_all.mean() + x_all.std() * m - fit.x_centre) / fit.x_scale}
        for name, truth in truths.items():
            values = post[name].values[..., j].ravel()
            lo, hi = np.quantile(values, [0.005, 0.995])
            assert lo <= truth <= hi, (task, name, truth, lo, hi)


def test_heldout_forecasts_cover_at_about_nominal(simulated):
    runs, cut, fit = simulated
    table = downstream_backtest(runs, cut=cut, fit=fit, seed=1)
    summary = backtest_summary(table).iloc[0]
    assert summary["forecasts"] == 4 * 6
    assert 0.7 <= summary["coverage_0.9"] <= 1.0, summary.to_dict()
    assert 0.2 <= summary["coverage_0.5"] <= 0.85, summary.to_dict()
    assert abs(summary["mean_error"]) < 3.0  # points
    by_task = backtest_summary(table, by="task")
    assert set(by_task["task"]) == {"easy", "hard", "binary", "open"}


def test_point_sigmoid_recovers_an_exact_curve():
    x = np.linspace(-2, 2, 25)
    fit = point_sigmoid(x, sigmoid_accuracy(x, 0.5, 0.9, 1.3, -0.4), 0.5)
    assert fit["ceiling"] == pytest.approx(0.9, abs=1e-3) and fit["k"] == pytest.approx(1.3, rel=1e-3)


def test_save_and_load_give_the_same_forecast(simulated, tmp_path):
    runs, cut, fit = simulated
    path = fit.save(tmp_path / "downstream.nc")
    again = load_downstream(path)
    held = runs.subset(runs.C >= cut)
    a = fit.accuracy(N=held.N, D=held.D, seed=2).values
    b = again.accuracy(N=held.N, D=held.D, seed=2).values
    np.testing.assert_allclose(a, b)
    with pytest.raises(InputError, match="exists"):
        fit.save(path)


def test_cli_forecasts_backtests_and_writes_figures(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    simulated_runs().to_csv(path, index=False)
    out = tmp_path / "out"
    cut = f"{float(np.sort(read_runs(path).C)[-6]):.6g}"
    code = main(["downstream", str(path), "--through", "compute", "--chance", "0.25", "binary=0.5", "open=0",
                 "--cut", cut, "--predict", "1e10,2e11", "--draws", "100", "--tune", "200", "--chains", "2",
                 "--seed", "1", "--out", str(out), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["forecast"] and payload["backtest_summary"]["forecasts"] > 0 and payload["backtest"]
    assert payload["structural_error"]["backtest_cuts"] >= 3
    assert payload["structural_error"]["sigma_lower"] <= payload["structural_error"]["sigma_upper"]
    statuses = {row["task"]: row["status"] for row in payload["tasks"]}
    assert statuses["flat"] == "near chance"
    levels = {row["task"]: row["chance"] for row in payload["tasks"]}
    assert levels == {"easy": 0.25, "hard": 0.25, "binary": 0.5, "open": 0.0, "flat": 0.25}
    assert (out / "downstream.nc").is_file()
    assert (out / "figures" / "downstream_easy.png").is_file()
    assert (out / "downstream_backtest.csv").is_file()


def test_cli_says_what_to_forecast(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    simulated_runs().to_csv(path, index=False)
    assert main(["downstream", str(path)]) == 2
    assert "--cut FLOP" in capsys.readouterr().err


def test_gadre_task_tables_load(shared_data, monkeypatch):
    from bayes_scaling.data.datasets import load_dataset
    from bayes_scaling.data.remote import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(shared_data / "remote"))
    runs = load_dataset("gadre-rw-tasks")
    assert len(runs) == 35 and len(task_columns(runs)) == 46
    table = task_table(runs)
    assert (table["chance_source"] == "gadre-tasks").all()
    assert table.set_index("task").loc["hellaswag", "chance"] == 0.25
    assert table.set_index("task").loc["copa", "items"] == 100
    assert len(declared_tasks(runs)) == 46 and default_tasks(runs) == declared_tasks(runs)
    chinchilla = load_dataset("chinchilla")
    assert declared_tasks(chinchilla) == [] and "colour_distance" in task_columns(chinchilla)  # found, not declared


def test_structural_error_is_small_when_the_sigmoid_holds_and_found_when_it_bends(simulated):
    _, _, held = simulated  # simulated from step 2's own model: its refits miss by their spread alone
    assert held.config["structural"]["backtest_cuts"] >= 3
    assert held.config["structural"]["sigma_upper"] < 0.3, held.config["structural"]
    tasks = {f"t{j}": (0.25, 0.95, 1.0 + 0.2 * j, 0.5, 2000) for j in range(4)}
    frame = simulate_task_ladder(tasks, seed=4)
    x = -np.log10(6 * frame["N"] * frame["D"])
    z = ((x - x.mean()) / x.std()).to_numpy()
    rng = np.random.default_rng(5)
    for j, task in enumerate(tasks):  # the logit bends beyond the smaller runs, up for some tasks, down for others
        logit = 0.5 - (1.0 + 0.2 * j) * z + (-1) ** j * 0.8 * np.clip(-z, 0, None) ** 2
        frame[task] = rng.binomial(2000, 0.25 + 0.7 / (1 + np.exp(-logit))) / 2000
    runs = read_runs(frame, name="bending")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        bent = fit_downstream(runs, chance=0.25, items=2000, through="compute", cut=float(np.sort(runs.C)[-6]),
                              draws=200, tune=300, chains=2, seed=2)
    assert bent.config["structural"]["sigma_lower"] > held.config["structural"]["sigma_upper"], (
        bent.config["structural"], held.config["structural"])


def test_structural_drift_spreads_beyond_the_data_within_chance_and_one():
    from bayes_scaling.downstream.structural import drift_accuracy

    p = np.full((4000, 2, 3), 0.6)
    chance = np.array([0.25, 0.0])[None, :, None]
    moved = drift_accuracy(p, chance, np.full(4000, 0.8), np.array([-0.5, 0.5, 1.5]), seed=3)
    assert np.all(moved[:, :, 0] == 0.6)  # inside the data: the curve as fitted
    spread = moved.std(axis=0)
    assert np.all(spread[:, 2] > 2 * spread[:, 1]) and np.all(spread[:, 1] > 0.01)
    assert moved.min() >= 0.25 * 0 and np.all(moved[:, 0] >= 0.25) and moved.max() <= 1.0
    # one slope per draw and task: the drift at 1.5 decades is three times the drift at 0.5 in logit
    logit = np.log((moved[:, 0] - 0.25) / (1 - moved[:, 0]))
    np.testing.assert_allclose(logit[:, 2] - logit[:, 0], 3 * (logit[:, 1] - logit[:, 0]), rtol=1e-6, atol=1e-9)
