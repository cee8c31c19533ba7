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
from bayes_scaling.energy.calibration import calibrate, calibration_summary
from bayes_scaling.energy.factors import EfficiencyTrend, Population
from bayes_scaling.energy.tables import budget_table, energy_grid, inference_table, run_table
from bayes_scaling.energy.training import (
    JOULES_PER_MWH,
    Carbon,
    EnergyModel,
    growth_scenario,
    implied_mfu,
)
from bayes_scaling.energy.utilization import (
    PREDICTORS,
    TrainingRun,
    UtilizationModel,
    mfu_observations,
)


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
    run = TrainingRun(active_params=7e10, devices=2048)
    mwh = model.training_energy([1e24, 2e24], hardware="H100 SXM5", run=run)
    np.testing.assert_allclose(mwh[:, 1], 2 * mwh[:, 0], rtol=1e-12)  # a run of known size: energy ∝ FLOP
    per_flop = mwh[:, 0] * JOULES_PER_MWH / 1e24
    rng = np.random.default_rng([model.seed, 0])
    eff = model.efficiency(rng, hardware="H100 SXM5")
    power = model.power_ratio(rng)  # the order EnergyModel draws in
    util = model.utilization(rng, run=run, hardware="H100 SXM5")
    pue = model.pue(rng)
    np.testing.assert_allclose(per_flop, power * pue / (eff * util), rtol=1e-12)
    assert eff[0] == pytest.approx(989.4e12 / 700)


def test_training_run_quantities_are_one_draw_apart(model):
    """Device energy per device-hour is power/TDP × TDP and facility / device energy is the PUE, draw by draw;
    the table's device-hours are FLOP ÷ (peak × MFU × 3600)."""
    run = TrainingRun(active_params=1e9, devices=256, year=2024)
    f = model._factors(year=None, hardware="H100", precision=None, salt=0, run=run, flop=1e23)
    rng = np.random.default_rng([model.seed, 0])
    model.efficiency(rng, hardware="H100")
    power = model.power_ratio(rng)
    util = model.utilization(rng, run=run, hardware="H100")
    pue = model.pue(rng)
    np.testing.assert_allclose(f["per_flop_device"] / f["hours_per_flop"], power * 700.0 * 3600.0, rtol=1e-12)
    np.testing.assert_allclose(f["per_flop_facility"] / f["per_flop_device"], pue, rtol=1e-12)
    table = model.training_run(1e23, hardware="H100", run=run).set_index("quantity")
    assert table.loc["device_hours", "median"] == pytest.approx(np.median(1e23 / (989.4e12 * util * 3600)), rel=1e-9)
    assert table.loc["utilization", "lower"] < table.loc["utilization", "median"] < table.loc["utilization", "upper"]
    no_chip = model.training_run(1e23, year=2026, run=run).set_index("quantity")
    assert np.isnan(no_chip.loc["device_hours", "median"])  # a year's expected chip has no FLOP/s per device
    assert no_chip.loc["facility_energy_mwh", "median"] > 0
    with pytest.raises(InputError, match="give the chip"):
        model.training_run(1e23)
    with pytest.raises(InputError, match="below the active"):
        TrainingRun(active_params=1e10, total_params=1e9)


def test_small_and_moe_runs_get_less_utilization(model):
    """The regression's point: a 1B model on 256 H100s is not given a 175B model's utilization."""
    rng = np.random.default_rng(0)
    small = model.utilization(rng, run=TrainingRun(active_params=1e9, devices=256), hardware="H100")
    large = model.utilization(rng, run=TrainingRun(active_params=175e9, devices=10000), hardware="H100")
    moe = model.utilization(rng, run=TrainingRun(active_params=1e9, total_params=7e9, devices=256), hardware="H100")
    assert np.median(small) < np.median(large)
    assert np.median(moe) < np.median(small)


def _simulated_runs(n, rng, beta, labs=8, chips=5, sigma=0.3, tau=0.3):
    lab_effect, chip_effect = rng.normal(0, tau, labs), rng.normal(0, tau, chips)
    active = 10 ** rng.uniform(8.5, 11.5, n)
    moe = rng.random(n) < 0.3
    fp8 = rng.random(n) < 0.2
    devices = 10 ** rng.uniform(2, 4, n)
    year = rng.integers(2019, 2026, n).astype(float)
    lab, chip = rng.integers(0, labs, n), rng.integers(0, chips, n)
    names = ["NVIDIA V100 SXM2", "Google TPU v3", "NVIDIA A100 SXM4", "Google TPU v4", "NVIDIA H100 SXM5"]
    released = load_dataset("accelerators").set_index("accelerator").loc[names, "release_year"].to_numpy()
    x = np.column_stack([np.ones(n), np.log10(active / 1e10), moe, fp8, np.log10(devices / 1000), year - 2022,
                         released[chip] - 2020])
    eta = x @ beta + lab_effect[lab] + chip_effect[chip] + sigma * rng.standard_t(4, n)
    return pd.DataFrame({"run": [f"run {i}" for i in range(n)], "key": [f"run {i}" for i in range(n)],
                         "lab": [f"lab {j}" for j in lab], "chip": [names[j] for j in chip],
                         "chip_year": released[chip],
                         "mfu": 1 / (1 + np.exp(-eta)), "active": active, "total": np.where(moe, active * 8, active),
                         "devices": devices, "year": year, "precision": np.where(fp8, "fp8", "bf16")})


def test_utilization_regression_recovers_known_coefficients_and_covers_new_runs():
    """Simulated from the model with known coefficients (away from the priors' means): the posterior
    covers them, and 90% predictive intervals of new runs from the same labs and chips hold about 90%."""
    beta = np.array([-0.6, 0.35, -0.5, 0.3, -0.15, 0.05, -0.05])
    rng = np.random.default_rng(4)
    runs = _simulated_runs(300, rng, beta)
    chips = load_dataset("accelerators")
    fit = UtilizationModel.fit(runs, chips=chips, draws=3000, rng=np.random.default_rng(5))
    lo, hi = np.quantile(fit.beta, [0.01, 0.99], axis=0)
    for name, true, low, high in zip(PREDICTORS, beta, lo, hi, strict=True):
        if name != "intercept":  # the intercept trades off against the group effects' means
            assert low < true < high, name
    assert hi[1] - lo[1] < 0.3  # 300 runs pin the size effect (its prior's 98% interval is 1.4 wide)
    assert np.median(fit.sigma) == pytest.approx(0.3, rel=0.3)
    new = _simulated_runs(400, np.random.default_rng(4), beta)  # same seed: the same lab and chip effects
    new = new.iloc[300:] if len(new) > 300 else new
    inside = []
    for r in new.itertuples():
        draws = fit.predictive(TrainingRun(active_params=r.active, total_params=r.total, devices=r.devices,
                                           year=r.year, precision=r.precision, lab=r.lab),
                               rng=np.random.default_rng(r.Index), chip=r.chip)
        low, high = np.quantile(draws, [0.05, 0.95])
        inside.append(low <= r.mfu <= high)
    assert 0.84 <= np.mean(inside) <= 0.96


def test_fp8_and_later_hardware_use_less_energy(model):
    bf16 = np.median(model.training_energy(1e25, year=2027))
    fp8 = np.median(model.training_energy(1e25, year=2027, precision="fp8"))
    later = np.median(model.training_energy(1e25, year=2030))
    assert fp8 < bf16 and later < bf16


@pytest.fixture(scope="module")
def calibration():
    return calibrate(draws=1000, seed=0)


def test_calibration_forecasts_published_runs(calibration):
    table = calibration
    hours = table[table["quantity"] == "device_hours"].set_index("run")
    assert len(hours) >= 30 and hours.index.is_unique  # one run, one point: BLOOM's two reports are one run
    energy = table[table["quantity"] == "energy_mwh"].set_index("run")
    assert energy.loc["BLOOM-176B", "report"] == "Luccioni et al. 2022"  # its team's report is scored
    assert energy.loc["BLOOM-176B", "scope"] == "device"  # dynamic device power only: no PUE
    assert "GShard-600B" not in hours.index  # active parameters not printed: not forecast
    # Granite's energy is its own hours × 700 W × PUE 1.3: forecast as that product of the forecast hours;
    # Patterson et al.'s T5 energy is from measured power: forecast with the model's power and PUE.
    granite = energy.loc["Granite 3.0 2B"]
    assert granite["basis"] == "device-hours × stated power"
    assert granite["median"] == pytest.approx(hours.loc["Granite 3.0 2B", "median"] * 700 * 1.3 / 1e6, rel=1e-9)
    assert energy.loc["T5-11B", "basis"] == "reported energy"
    assert energy.loc["Apertus 70B", "basis"] == "reported energy"  # 5,000 MWh is not its 6e6 hours × 560 W
    summary = calibration_summary(table).set_index(["quantity", "group"])
    assert 0.8 <= summary.loc[("device_hours", "all"), "coverage_90"] <= 1.0
    assert 0.3 <= summary.loc[("device_hours", "all"), "coverage_50"] <= 0.7
    assert 0.7 < summary.loc[("device_hours", "all"), "median_ratio"] < 1.4
    assert summary.loc[("energy_mwh", "all"), "coverage_90"] >= 0.8
    # A run is forecast from its compute and description, never from its own hours.
    doubled = load_dataset("training-energy")
    doubled.loc[doubled["run"] == "Phi-4", "device_hours"] *= 2
    again = calibrate(draws=1000, seed=0, training_energy=doubled)
    row = again[(again["run"] == "Phi-4") & (again["quantity"] == "device_hours")].iloc[0]
    assert row["median"] == pytest.approx(hours.loc["Phi-4", "median"], rel=1e-12)
    with pytest.raises(InputError, match="holdout must be"):
        calibrate(holdout="chip")


def test_training_energy_table_is_consistent():
    """Every run has its lab, year and precision; FLOP where printed agrees with 6 · active · tokens."""
    runs = load_dataset("training-energy")
    assert runs["lab"].notna().all() and runs["year"].between(2019, 2026).all()
    assert set(runs["precision"]) <= {"bf16", "fp8"}
    assert set(runs["energy_scope"].dropna()) <= {"facility", "device"}
    both = runs[runs["reported_flop"].notna() & runs["active"].notna() & runs["tokens"].notna()]
    six_nd = 6 * both["active"] * both["tokens"]
    assert np.all(np.abs(np.log(both["reported_flop"] / six_nd)) < 0.1), both["run"].tolist()
    days = runs[runs["devices"].notna() & runs["duration_days"].notna() & (runs["device_hours_basis"] == "reported")]
    assert len(days) == 0 or np.all(days["device_hours"] <= days["devices"] * days["duration_days"] * 24 * 1.5)
    obs = mfu_observations(runs, load_dataset("accelerators"))
    assert obs["mfu"].between(0.02, 0.7).all()


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


def test_energy_cli_describes_the_run(capsys):
    """`energy --flop F --hardware CHIP --params N --total-params T --devices K --year Y --json`: utilization,
    device-hours, device and facility energy with intervals; the facility energy is the budget table's."""
    args = ["-q", "energy", "--flop", "1e23", "--hardware", "H100", "--params", "1e9", "--total-params", "7e9",
            "--devices", "256", "--year", "2025", "--draws", "1000", "--json"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    (run,) = payload["training_runs"]
    for quantity in ("utilization", "device_hours", "device_energy_mwh", "facility_energy_mwh"):
        assert run[f"{quantity}_lower"] < run[quantity] < run[f"{quantity}_upper"], quantity
    assert run["facility_energy_mwh"] > run["device_energy_mwh"]
    assert run["facility_energy_mwh"] == pytest.approx(payload["energy_budgets"][0]["energy_mwh"], rel=1e-12)
    assert main(args[:8] + args[10:]) == 0  # without --total-params: a dense model of the same active size
    dense = json.loads(capsys.readouterr().out)["training_runs"][0]
    assert dense["device_hours"] < run["device_hours"]  # the same active size as a mixture of experts: slower
    table = run_table(EnergyModel.fit(draws=1000, seed=0), [1e23], hardware="H100",
                      run=TrainingRun(active_params=1e9, total_params=7e9, devices=256, year=2025))
    assert table["device_hours"].iloc[0] == pytest.approx(run["device_hours"], rel=1e-12)
    assert main(["energy", "--flop", "1e23", "--params", "1e10", "--total-params", "1e9"]) == 2
    assert "below the active" in capsys.readouterr().err
    assert main(["energy", "--flop", "1e23", "--hardware", "H100", "--year", "2024", "2025"]) == 2
    assert "the year of the run: give one" in capsys.readouterr().err


def test_gemstones_hours_are_what_the_build_script_derives(tmp_path, shared_data, monkeypatch):
    """The committed Gemstones rows are the build script's output, and their hours are the logged time per step."""
    import importlib.util
    import shutil
    from pathlib import Path

    from bayes_scaling.data.remote import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(shared_data / "remote"))  # the gemstones file, offline
    repo = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gemstones_hours", repo / "datasets/build/gemstones_hours.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = tmp_path / "training-energy.csv"
    shutil.copy(repo / "datasets/training-energy.csv", table)
    module.main(["--table", str(table)])
    assert table.read_text() == (repo / "datasets/training-energy.csv").read_text()  # rebuilt: the same bytes
    runs = load_dataset("training-energy").set_index("run")
    shape = runs.loc["Gemstone-1024x28"]  # wandb: 26,223 steps of 1.3941352542 s on 32 nodes of 4 MI250X
    assert shape["device_hours"] == pytest.approx(26223 * 1.3941352542 * 128 / 3600, abs=0.05)
    assert shape["flop"] == pytest.approx(6 * 543482880 * 26223 * 2048 * 2048)
    mfu = implied_mfu(runs, load_dataset("accelerators"))
    assert mfu["Gemstone-1024x28"] == pytest.approx(6 * 543482880 * 2048 * 2048 / (1.3941352542 * 128 * 383e12), rel=1e-4)  # hours kept to 0.1 h
    assert (runs["lab"] == "University of Maryland").sum() == 20


def test_refits_sampled_together_are_the_refits_made_alone():
    """A run given weight zero in the batched sampler: the same posterior as a fit without it (medians
    within a quarter of a posterior sd, coefficient by coefficient); a lab left without runs keeps
    no effect (it is forecast as a new lab's)."""
    chips = load_dataset("accelerators")
    obs = mfu_observations(load_dataset("training-energy"), chips)
    one = (obs["key"] == "phi-4").to_numpy()
    lab = (obs["lab"] == "IBM").to_numpy()
    together = UtilizationModel.fit_without(obs, [one, lab], chips=chips, draws=4000, rng=np.random.default_rng(8))
    for mask, batched in zip((one, lab), together, strict=True):
        alone = UtilizationModel.fit(obs[~mask], chips=chips, draws=4000, rng=np.random.default_rng(9))
        sd = alone.beta.std(axis=0)
        np.testing.assert_array_less(np.abs(np.median(batched.beta, 0) - np.median(alone.beta, 0)), 0.25 * sd)
        assert abs(np.median(batched.sigma) - np.median(alone.sigma)) < 0.25 * alone.sigma.std()
        assert len(batched.data) == (~mask).sum() and batched.devices_fill == pytest.approx(alone.devices_fill)
    assert "IBM" not in together[1].lab_effects and "IBM" in together[0].lab_effects
