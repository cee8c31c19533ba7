"""Law-averaged forecasts: weights from the fits' own back-tests, and a mixture that keeps each law's draws."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from simulate import simulate

import bayes_scaling as bs
from bayes_scaling.calibration.update import predictive_error_draws, predictive_log_density
from bayes_scaling.cli import main
from bayes_scaling.forecast.averaging import LawAverage, default_forecaster, draw_counts
from bayes_scaling.forecast.forecaster import Forecaster
from bayes_scaling.forecast.tables import forecast_table, target_table
from bayes_scaling.sampling.diagnostics import SamplingWarning

QUICK = {"draws": 300, "tune": 500, "chains": 2, "seed": 1}


@pytest.fixture(scope="module")
def fits():
    """The true law (chinchilla) and a law of compute alone, fitted to the same simulated runs."""
    runs, _ = simulate("chinchilla", seed=8, sigma=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return {law: bs.fit(runs, law=law, likelihood="normal", **QUICK) for law in ("chinchilla", "compute")}


def test_draw_counts_are_whole_proportional_and_complete():
    counts = draw_counts(np.array([0.7, 0.2, 0.1, 0.0]), 1001)
    assert counts.sum() == 1001 and counts[-1] == 0
    np.testing.assert_allclose(counts / 1001, [0.7, 0.2, 0.1, 0.0], atol=1 / 1001)
    with pytest.raises(bs.InputError, match="non-negative"):
        draw_counts(np.array([0.5, -0.1]), 10)
    with pytest.raises(bs.InputError, match="not all zero"):
        draw_counts(np.array([0.0, 0.0]), 10)


def test_predictive_log_density_is_the_normal_of_a_fixed_population():
    """A population without spread is one (b, τ, ω): the density is N(b·d, s² + (τ² + ω²)d²)."""
    population = pd.DataFrame({"mu_b": [-0.01], "sigma_b": [0.0], "mu_log_tau": [np.log(0.004)],
                               "sigma_log_tau": [0.0], "mu_log_omega": [np.log(0.006)], "sigma_log_omega": [0.0]})
    errors = pd.DataFrame({"d": [0.2, 0.9, 1.7], "error": [0.001, -0.02, 0.01], "spread": [0.005, 0.006, 0.01]})
    sd = np.sqrt(errors["spread"] ** 2 + (0.004**2 + 0.006**2) * errors["d"] ** 2)
    expected = stats.norm.logpdf(errors["error"], -0.01 * errors["d"], sd)
    np.testing.assert_allclose(predictive_log_density(population, errors, draws=50), expected, rtol=1e-12)
    sim = predictive_error_draws(population, errors, draws=200_000)  # the same distribution, as draws
    np.testing.assert_allclose(sim.mean(axis=0), -0.01 * errors["d"], atol=3e-4)
    np.testing.assert_allclose(sim.std(axis=0), sd, rtol=0.01)


def test_fits_keep_their_back_tests_and_the_weights_prefer_the_true_law(fits, tmp_path):
    kept = fits["chinchilla"].structural.backtests
    assert list(kept.columns) == ["cut", "run", "C", "d", "error", "spread"] and kept["cut"].nunique() >= 2
    assert kept["run"].between(0, len(fits["chinchilla"].runs) - 1).all()
    path = fits["chinchilla"].save(tmp_path / "fit.nc")
    pd.testing.assert_frame_equal(bs.load_fit(path).structural.backtests, kept)
    check = bs.backtest_check(fits)  # the same back-tests, scored as coverage of the default intervals
    assert set(check.index) == {"chinchilla", "compute"} and (check["held_out"] == len(kept)).all()
    assert check.loc["chinchilla", "coverage_90"] >= 0.8 and check.loc["chinchilla", "crps"] < check.loc["compute", "crps"]
    table = bs.lfo_weights(fits)
    assert table.index[0] == "chinchilla" and table.loc["chinchilla", "stacking_weight"] > 0.8
    assert table.loc["compute", "elpd_diff"] < 0 and table["held_out"].iloc[0] >= 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        no_backtests = bs.fit(fits["chinchilla"].runs, law="compute", likelihood="normal", discrepancy="none",
                              **QUICK)
    with pytest.raises(bs.InputError, match="kept no back-tests"):
        bs.lfo_weights({"chinchilla": fits["chinchilla"], "compute": no_backtests})
    fc, weights = default_forecaster({"chinchilla": fits["chinchilla"], "compute": no_backtests}, main="chinchilla")
    assert isinstance(fc, Forecaster) and weights is None  # no weights to be had: the main law, with a warning


def test_a_law_average_is_a_mixture_of_the_laws_draws(fits):
    budgets = np.array([1e20, 1e23])
    alone = Forecaster(fits["chinchilla"], seed=3)
    one = LawAverage.from_fits(fits, weights={"chinchilla": 1.0, "compute": 0.0}, seed=3)
    assert list(one.components) == ["chinchilla"] and one.n_draws == alone.n_draws
    np.testing.assert_array_equal(one.loss_at_compute(budgets)[0], alone.loss_at_compute(budgets)[0])

    half = LawAverage.from_fits(fits, weights={"chinchilla": 1.0, "compute": 1.0}, seed=3)
    loss, info = half.loss_at_compute(budgets)
    k = half.components["chinchilla"].n_draws
    assert loss.shape == (half.n_draws, 2) and k == half.n_draws // 2
    assert np.isin(loss[:k], alone.loss_at_compute(budgets)[0]).all()  # each draw is one law's draw
    other = Forecaster(fits["compute"], seed=3).loss_at_compute(budgets)[0]
    assert np.isin(loss[k:], other).all()
    assert info["N"].shape == (k, 2)  # allocation from the law of N and D only
    table = forecast_table(half, budgets)
    assert {"N", "N_lower", "loss", "loss_pred_upper", "decades_beyond_data"} <= set(table.columns)
    assert table["loss_lower"].iloc[1] < table["loss"].iloc[1] < table["loss_upper"].iloc[1]
    targets = target_table(half, [2.3])
    assert 0 < targets["p_reachable"].iloc[0] <= 1 and np.isfinite(targets["C"].iloc[0])
    assert half.expected_log_loss_per_draw(np.full((half.n_draws, 1), 1e9),
                                           np.full((half.n_draws, 1), 2e10)).shape == (half.n_draws, 1)
    with pytest.raises(bs.InputError, match="weights are for"):
        LawAverage({"chinchilla": alone}, {"other": 1.0})
    shown = half._repr_html_()  # Jupyter
    assert "Law average" in shown and "compute" in shown and "<table" in shown
    shown = fits["chinchilla"]._repr_html_()
    assert "Chinchilla" in shown and "diagnostics" in shown and "alpha" in shown and "<table" in shown


def test_forecast_command_averages_several_fits(fits, tmp_path, capsys):
    paths = [fits[law].save(tmp_path / f"{law}.nc") for law in fits]
    out = tmp_path / "averaged"
    assert main(["forecast", *map(str, paths), "--compute", "1e22", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["by"].startswith("law average") and payload["law_weights"]["chinchilla / normal"] > 0.8
    assert (out / "law_weights.csv").is_file() and (out / "forecast.csv").is_file()
    assert main(["forecast", str(paths[0]), str(paths[0]), "--compute", "1e22", "--out", str(tmp_path / "x")]) == 2
    assert "a second fit of chinchilla" in capsys.readouterr().err
