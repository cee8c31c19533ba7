"""Energy: factor posteriors against independent calculations, calibration, forecasts, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_scaling import InputError, load_dataset
from bayes_scaling.cli import main
from bayes_scaling.energy.factors import EfficiencyTrend, Population
from bayes_scaling.energy.tables import budget_table, energy_grid, inference_table
from bayes_scaling.energy.training import JOULES_PER_MWH, Carbon, EnergyModel, calibrate, growth_scenario, implied_mfu


@pytest.fixture(scope="module")
def model():
    return EnergyModel.fit(draws=4000, seed=0)


def test_trend_recovers_a_known_slope():
    rng = np.random.default_rng(0)
    years = np.linspace(2016, 2026, 40)
    eff = 10 ** (11.8 + 0.13 * (years - 2020) + rng.normal(0, 0.05, years.size))
    table = pd.DataFrame({"accelerator": [f"chip{i}" for i in range(40)], "release_year": years,
                          "bf16_flop_per_joule": eff, "bf16_flops": eff * 500, "fp8_flops": eff * 1000,
                          "fp8_flop_per_joule": eff * 2, "tdp_w": 500.0})
    trend = EfficiencyTrend.fit(table, draws=4000, rng=np.random.default_rng(1))
    assert np.quantile(trend.b, 0.005) < 0.13 < np.quantile(trend.b, 0.995)
    # Posterior mean equals least squares closely with this much data (the prior is weak).
    slope_ls = np.polyfit(years - 2020, np.log10(eff), 1)[0]
    assert trend.b.mean() == pytest.approx(slope_ls, abs=2e-3)
    assert np.median(10 ** trend.fp8_ratio.loc) == pytest.approx(2.0, rel=0.02)


def test_population_posterior_matches_conjugate_normal():
    """With a flat-ish prior, the grid posterior mean of the location matches the sample mean,
    and its spread matches s/sqrt(n)."""
    x = np.random.default_rng(2).normal(1.0, 0.5, 30)
    pop = Population.fit(x, prior_mean=0.0, prior_sd=100.0, scale_sd=10.0, draws=20000, rng=np.random.default_rng(3))
    assert pop.loc.mean() == pytest.approx(x.mean(), abs=0.02)
    assert pop.loc.std() == pytest.approx(x.std(ddof=1) / math.sqrt(30), rel=0.15)
    assert np.median(pop.scale) == pytest.approx(x.std(ddof=1), rel=0.1)


def test_implied_mfu_matches_the_published_utilization():
    runs = load_dataset("training-energy").set_index("run", drop=False)
    mfu = implied_mfu(runs, load_dataset("accelerators"))
    assert mfu["GPT-3 175B"] == pytest.approx(24.6 / 125, rel=0.01)   # Patterson: 24.6 of 125 TFLOP/s
    assert mfu["T5-11B"] == pytest.approx(45.6 / 123, rel=0.01)       # Patterson: 45.6 of 123


def test_hardware_trend_matches_published_range(model):
    h = model.trend.yearly_factor
    # Epoch AI: energy efficiency of ML hardware improves roughly 1.3-1.5x per year.
    assert 1.25 < np.median(h) < 1.5
    assert np.median(model.trend.doubling_time) == pytest.approx(math.log(2) / math.log(np.median(h)), rel=0.02)


def test_energy_is_flop_times_factors(model):
    """A named chip: energy / FLOP = power ratio × PUE / (FLOP per joule × MFU), checked draw by draw."""
    mwh = model.training_energy([1e24, 2e24], hardware="H100 SXM5")
    np.testing.assert_allclose(mwh[:, 1], 2 * mwh[:, 0], rtol=1e-12)
    per_flop = mwh[:, 0] * JOULES_PER_MWH / 1e24
    rng = np.random.default_rng([model.seed, 0])
    eff = model.efficiency(rng, hardware="H100 SXM5")
    power = model.power_ratio(rng)  # the order EnergyModel draws in
    util = model.utilization(rng)
    pue = model.pue(rng)
    np.testing.assert_allclose(per_flop, power * pue / (eff * util), rtol=1e-12)
    assert eff[0] == pytest.approx(989.4e12 / 700)


def test_fp8_and_later_hardware_use_less_energy(model):
    bf16 = np.median(model.training_energy(1e25, year=2027))
    fp8 = np.median(model.training_energy(1e25, year=2027, precision="fp8"))
    later = np.median(model.training_energy(1e25, year=2030))
    assert fp8 < bf16 and later < bf16


def test_calibration_covers_published_runs():
    table = calibrate(draws=4000, seed=0).set_index("run")
    assert len(table) == 10 and table.index.is_unique  # one run, one point: BLOOM's two reports are one run
    for run in ("GPT-3 175B", "LLaMA-65B", "BLOOM-176B"):
        assert table.loc[run, "inside_0.9"], run
    assert table.loc["BLOOM-176B", "report"] == "Luccioni et al. 2022"  # its team's measurement is scored
    assert table.attrs["coverage"]["0.9"] >= 0.8
    assert table.attrs["median_abs_log_error"] < 0.5
    assert not table.loc["BLOOM-176B", "pue_included"]  # dynamic device power only


def test_growth_scenario(model):
    g = growth_scenario(model, compute_growth=(4.0, 5.0))
    np.testing.assert_allclose(g["energy_growth"], g["compute_growth"] / g["efficiency_growth"])
    lo, hi = np.quantile(g["compute_growth"], [0.05, 0.95])
    assert lo == pytest.approx(4.0, rel=0.05) and hi == pytest.approx(5.0, rel=0.05)
    with pytest.raises(InputError, match="1 <= low < high"):
        growth_scenario(model, compute_growth=(5.0, 4.0))


def test_inference_crossover_is_three_D_times_utilization_ratio(model):
    """Serving overtakes training when tokens × 2N/u_inf = 6ND/u_train: at about 3·D·u_inf/u_train."""
    table = inference_table(model, 7e10, [1e12], training_flop=6 * 7e10 * 1.4e12, hardware="A100 SXM4")
    med = table.attrs["crossover_tokens"][0]
    assert 1e11 < med < 1.4e13
    assert table.loc[0, "energy_mwh"] > 0


def test_budget_table_and_carbon(model):
    carbon = Carbon.parse("0.4:0.1")
    table = budget_table(model, [1e25], years=[2026], precisions=["bf16", "fp8"], carbon=carbon)
    assert list(table["precision"]) == ["bf16", "fp8"]
    ratio = table["tco2e"] / table["energy_mwh"]
    assert np.all((ratio > 0.3) & (ratio < 0.5))
    with pytest.raises(InputError, match="give years"):
        budget_table(model, [1e25])
    long = budget_table(model, [1e24, 1e25, 1e26], years=[2025, 2030])
    grid = energy_grid(long)  # one row per budget, one column (with bounds) per year: the same numbers
    assert list(grid.columns) == ["flop", "2025", "2025_lower", "2025_upper", "2030", "2030_lower", "2030_upper"]
    assert list(grid["flop"]) == [1e24, 1e25, 1e26]
    for year in ("2025", "2030"):
        rows = long[long["hardware"] == f"new chip, {year}"]
        np.testing.assert_array_equal(grid[year], rows["energy_mwh"])
        np.testing.assert_array_equal(grid[f"{year}_upper"], rows["energy_mwh_upper"])
    both = energy_grid(table)
    assert list(both.columns[1::3]) == ["2026 bf16", "2026 fp8"]
    with pytest.raises(InputError, match="MEAN or MEAN:SD"):
        Carbon.parse("-1")
    with pytest.raises(InputError, match="unknown hardware 'Z80'"):
        model.training_energy(1e24, hardware="Z80")
    with pytest.raises(InputError, match="no FP8 rate"):
        model.training_energy(1e24, hardware="A100 SXM4", precision="fp8")


def test_carbon_lognormal_has_requested_mean_and_sd():
    draws = Carbon(0.4, 0.1).draws(200000, np.random.default_rng(0))
    assert draws.mean() == pytest.approx(0.4, rel=0.01) and draws.std() == pytest.approx(0.1, rel=0.03)
    assert stats.skew(draws) > 0


def test_energy_cli(tmp_path, capsys, monkeypatch):
    out = tmp_path / "energy"
    args = ["-q", "energy", "--flop", "1e25", "--year", "2026", "--precision", "both",
            "--carbon-intensity", "0.4", "--params", "7e10", "--tokens-served", "1e13", "--growth",
            "--draws", "2000", "--out", str(out), "--json"]
    # Measured serving energy needs the ML.ENERGY files: without them, a clear error (a file where the
    # cache folder should be makes fetching fail at once, network or not).
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "ml-energy").write_text("not a folder")
    monkeypatch.setenv("BAYES_SCALING_DATA_DIR", str(tmp_path / "cache"))
    assert main([*args[:-3], "--out", str(tmp_path / "no")]) in (1, 2)
    err = capsys.readouterr().err
    assert "ml-energy" in err and "--inference-basis prior" in err and not (tmp_path / "no").exists()
    assert main([*args, "--inference-basis", "prior"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["energy_budgets"]) == 2
    assert payload["growth"]["energy_growth"][0] > 1
    assert (out / "energy_budgets.tex").is_file() and (out / "figures" / "efficiency_trend.png").is_file()
    assert main(["energy", "--target-loss", "1.9"]) == 2
    assert "--target-loss needs --fit" in capsys.readouterr().err
