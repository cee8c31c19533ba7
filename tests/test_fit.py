"""Fitting: parameter recovery for every law, reproducibility, save/load, diagnostics."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from simulate import simulate

import bayes_scaling as bs
from bayes_scaling import InputError
from bayes_scaling.fitting import fit
from bayes_scaling.laws.registry import LAWS
from bayes_scaling.posterior.fitfile import FitFileError
from bayes_scaling.posterior.load import load_fit
from bayes_scaling.sampling.diagnostics import SamplingError, SamplingWarning

QUICK = {"draws": 300, "tune": 400, "chains": 2}


def _quiet_fit(*args, **kwargs):
    """A fit without sampling warnings; the law alone unless a test asks for the structural error
    (recovery tests check the posterior: the structural error's refits would only cost time)."""
    kwargs.setdefault("discrepancy", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return fit(*args, **kwargs)


def _assert_truth_inside(result, truth, family_level=0.99):
    """Every true value inside its interval, each at 1 - (1 - family_level)/k for k parameters: a
    calibrated posterior then misses any of them in about 1% of simulated datasets (99% each would
    miss one in 1 - 0.99^k: 5% of datasets for five parameters)."""
    summary = result.summary(ci_prob=1 - (1 - family_level) / len(truth))
    lo, hi = summary.columns[3], summary.columns[4]
    for name, value in truth.items():
        row = summary.loc[name]
        assert row[lo] <= value <= row[hi], f"{name}={value:g} outside [{row[lo]:g}, {row[hi]:g}]"


@pytest.mark.parametrize("name", sorted(set(LAWS) - {"data-constrained", "broken-power-law"}))
def test_recovers_known_parameters(name):
    runs, truth = simulate(name, seed=11)
    result = _quiet_fit(runs, law=name, likelihood="normal", seed=5, **QUICK)
    _assert_truth_inside(result, truth)
    assert result.diagnostics.divergences == 0
    assert result.diagnostics.rhat_max < 1.05


@pytest.mark.slow
def test_recovers_known_parameters_of_the_data_constrained_law():
    runs, truth = simulate("data-constrained", seed=11, sigma=0.005)
    result = _quiet_fit(runs, law="data-constrained", likelihood="normal", seed=5, draws=500, tune=1000, chains=2,
                        target_accept=0.95)
    _assert_truth_inside(result, truth)


@pytest.mark.slow
def test_the_multimodal_broken_power_law_starts_in_the_main_mode():
    """From random starts, about half the chains of this fit (once all four) settled in a mode
    with 8x the true noise; started at the multi-start optimum, every chain finds the truth."""
    runs, truth = simulate("broken-power-law", seed=11, sigma=0.005)
    result = _quiet_fit(runs, law="broken-power-law", likelihood="normal", seed=5, draws=500, tune=1000, chains=4,
                        target_accept=0.95)
    _assert_truth_inside(result, truth)
    assert result.diagnostics.rhat_max < 1.01
    np.testing.assert_allclose(result.idata["posterior"]["sigma"].values.mean(axis=1), 0.005, rtol=0.3)


@pytest.mark.slow
def test_interval_coverage_over_seeds():
    """Over simulated datasets, 90% intervals of a correctly specified model hold the truth ~90% of the time."""
    hits, total = 0, 0
    for seed in range(6):
        runs, truth = simulate("chinchilla", seed=100 + seed, sigma=0.02)
        result = _quiet_fit(runs, law="chinchilla", likelihood="normal", seed=seed, **QUICK)
        summary = result.summary(ci_prob=0.9)
        for name, value in truth.items():
            hits += bool(summary.loc[name, "q5"] <= value <= summary.loc[name, "q95"])
            total += 1
    # 30 checks at 90%: binomial 99% range is [22, 30].
    assert hits >= 22, f"{hits}/{total}"


@pytest.fixture(scope="module")
def chinchilla_fit():
    runs, _ = simulate("chinchilla", seed=3)
    return runs, _quiet_fit(runs, law="chinchilla", likelihood="student-t", seed=42, discrepancy="calibrated",
                            **QUICK)


def test_same_seed_same_draws(chinchilla_fit):
    runs, first = chinchilla_fit
    again = _quiet_fit(runs, law="chinchilla", likelihood="student-t", seed=42, discrepancy="calibrated", **QUICK)
    np.testing.assert_array_equal(first.draws("alpha"), again.draws("alpha"))
    np.testing.assert_array_equal(first.structural.b, again.structural.b)
    other = _quiet_fit(runs, law="chinchilla", likelihood="student-t", seed=43, **QUICK)
    assert not np.array_equal(first.draws("alpha"), other.draws("alpha"))


@pytest.mark.parametrize("pooling", ["shared", "partial"])
def test_a_reused_compiled_model_gives_the_draws_of_a_fresh_compile(pooling):
    """One compiled model serves other data: its draws equal those of a model compiled for that data."""
    from bayes_scaling.sampling.nuts import _COMPILED, clear_compiled_models

    first, _ = simulate("chinchilla", seed=21, groups=3)
    second, _ = simulate("chinchilla", seed=22, groups=3, sizes=np.geomspace(3e7, 1e10, 5))
    clear_compiled_models()
    _quiet_fit(first, pooling=pooling, seed=7, **QUICK)
    reused = _quiet_fit(second, pooling=pooling, seed=7, **QUICK)
    assert reused.timing["compiled_model_reused"] == 1.0 and len(_COMPILED) == 1
    clear_compiled_models()
    fresh = _quiet_fit(second, pooling=pooling, seed=7, **QUICK)
    assert fresh.timing["compiled_model_reused"] == 0.0
    for name in ("E", "alpha", "beta", "sigma"):
        np.testing.assert_array_equal(reused.draws(name), fresh.draws(name))
    assert list(reused.idata["posterior"]["E"].coords["group"].values) == ["g0", "g1", "g2"]


def test_numpy_log_likelihood_matches_pymc(chinchilla_fit):
    """Our numpy pointwise log-likelihood equals PyMC's own for the same draws."""
    import pymc as pm

    from bayes_scaling.model.pymc_model import build_model

    runs, result = chinchilla_fit
    model = build_model(_spec_of(result), runs)
    import xarray as xr

    posterior = result.idata["posterior"].to_dataset().isel(draw=slice(0, 20))
    with model:
        theirs = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": posterior}), progressbar=False)
    ours = result.idata["log_likelihood"]["log_loss"].isel(draw=slice(0, 20)).values
    theirs = theirs["log_likelihood"]["log_loss"].values
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-9)


def _spec_of(result):
    from bayes_scaling.model.pymc_model import ModelSpec
    from bayes_scaling.priors import DataStats, Prior

    priors = {k: Prior.from_dict(v) for k, v in result.config["priors"].items()}
    return ModelSpec(result.law, result.likelihood, priors, result.config["pooling"], tuple(result.groups),
                     DataStats.from_dict(result.config["stats"]))


def test_save_load_round_trip_is_exact(chinchilla_fit, tmp_path):
    _, result = chinchilla_fit
    path = result.save(tmp_path / "fit.nc")
    loaded = load_fit(path, law="chinchilla", likelihood="student-t")
    assert loaded.config == result.config
    # The file leaves out what the draws, runs and seed determine; loading recomputes it exactly.
    import xarray as xr

    with xr.open_datatree(str(path)) as stored:
        assert "log_likelihood" not in stored.children and "posterior_predictive" not in stored.children
    for group in ("posterior", "log_likelihood", "posterior_predictive", "observed_data", "constant_data"):
        a, b = result.idata[group], loaded.idata[group]
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].values, b[var].values)
    assert loaded.runs.fingerprint() == result.runs.fingerprint()
    assert loaded.summary().equals(result.summary())
    for name in ("b", "tau", "omega", "rho"):  # the structural error, ρ included
        np.testing.assert_array_equal(getattr(loaded.structural, name), getattr(result.structural, name))


def test_save_never_overwrites_unless_asked(chinchilla_fit, tmp_path):
    _, result = chinchilla_fit
    path = tmp_path / "fit.nc"
    path.write_text("precious")
    with pytest.raises(InputError, match="exists; pass overwrite=True"):
        result.save(path)
    assert path.read_text() == "precious"
    result.save(path, overwrite=True)
    assert load_fit(path).config == result.config


def test_loading_refuses_mismatched_or_modified_files(chinchilla_fit, tmp_path):
    _, result = chinchilla_fit
    path = result.save(tmp_path / "fit.nc")
    with pytest.raises(FitFileError, match="holds a fit with law 'chinchilla', not the expected 'compute'"):
        load_fit(path, law="compute")
    with pytest.raises(FitFileError, match="fitted to other data"):
        load_fit(path, fingerprint="0" * 64)
    # Tamper with the stored configuration, then with the draws.
    import xarray as xr

    with xr.open_datatree(str(path)) as opened:
        idata = opened.load().copy(deep=True)
    original = dict(idata["posterior"].attrs)
    idata["posterior"].attrs["bayes_scaling_config"] = original["bayes_scaling_config"].replace(
        '"student-t"', '"normal"')
    idata.to_netcdf(str(tmp_path / "tampered.nc"))
    with pytest.raises(FitFileError, match="stored configuration does not match its hash; the file was modified"):
        load_fit(tmp_path / "tampered.nc")
    edited = idata.copy(deep=True)
    edited["posterior"].attrs.update(original)
    alpha = edited["posterior"]["alpha"].values.copy()
    alpha[0, 0] *= 1.01
    edited["posterior"]["alpha"] = edited["posterior"]["alpha"].copy(data=alpha)
    edited.to_netcdf(str(tmp_path / "edited.nc"))
    with pytest.raises(FitFileError, match="posterior draws do not match their hash; the file was modified"):
        load_fit(tmp_path / "edited.nc")
    idata["posterior"].attrs["bayes_scaling_format"] = 99
    idata.to_netcdf(str(tmp_path / "future.nc"))
    with pytest.raises(FitFileError, match="format 99"):
        load_fit(tmp_path / "future.nc")
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(FitFileError, match="not a readable netCDF fit file"):
        load_fit(tmp_path / "junk.nc")
    with pytest.raises(FitFileError, match="no such fit file"):
        load_fit(tmp_path / "missing.nc")


def test_a_bad_model_triggers_the_diagnostics():
    """Kaplan L(N) without E cannot bend to data with a floor, and 1 chain of 30 draws cannot
    converge: R-hat/ESS problems are reported, and strict mode raises."""
    runs, _ = simulate("chinchilla", seed=4)
    with pytest.warns(SamplingWarning, match="sampling problems"):
        result = fit(runs, law="kaplan-n", likelihood="normal", draws=30, tune=30, chains=2, seed=1,
                     discrepancy="none")
    assert not result.diagnostics.ok
    assert any("ESS" in p for p in result.diagnostics.problems)
    with pytest.raises(SamplingError, match="sampling problems"):
        fit(runs, law="kaplan-n", likelihood="normal", draws=30, tune=30, chains=2, seed=1, strict=True,
            discrepancy="none")


def test_bad_options_are_clear_errors():
    runs, _ = simulate("chinchilla", seed=4)
    with pytest.raises(InputError, match="pooling must be one of shared, partial, separate"):
        fit(runs, pooling="pooled")
    with pytest.raises(InputError, match="no parameter 'gamma' to set a prior on"):
        fit(runs, priors={"gamma": "Normal(mu=0, sigma=1)"})
    with pytest.raises(InputError, match="alpha must be positive"):
        fit(runs, priors={"alpha": "Normal(mu=0.3, sigma=0.1)"})
    with pytest.raises(InputError, match="needs column\\(s\\) unique_tokens"):
        fit(runs, law="data-constrained")
    with pytest.raises(InputError, match="only 3 runs; at least 6 are needed"):
        fit(runs.subset(np.arange(len(runs)) < 3), law="chinchilla")
    with pytest.raises(InputError, match="no published fit informs law 'compute'"):
        fit(runs, law="compute", prior_set="literature")


def test_grouped_runs_with_partial_pooling():
    runs, truth = simulate("chinchilla", seed=8, groups=2)
    result = _quiet_fit(runs, law="chinchilla", likelihood="normal", pooling="partial", seed=3, **QUICK)
    assert result.draws("alpha").shape[1] == 2
    summary = result.summary(ci_prob=0.99)
    for g in ("g0", "g1"):
        row = summary.loc[f"alpha[{g}]"]
        assert row["q0.5"] <= truth["alpha"] <= row["q99.5"]
    assert "alpha_pop" in summary.index and "alpha_tau" in summary.index
    # Each group's parameter has its own ESS and R-hat (the worst of them is the whole variable's).
    per_group = summary.loc[["alpha[g0]", "alpha[g1]"], ["ess_bulk", "r_hat"]]
    assert per_group.notna().all().all()
    assert per_group["ess_bulk"].min() == pytest.approx(result.diagnostics.per_param["alpha"]["ess_bulk"])


def test_literature_priors_centre_on_the_published_fit():
    from bayes_scaling.laws.registry import get_law
    from bayes_scaling.model.spec import literature_values

    values = literature_values(get_law("chinchilla"))
    assert values["alpha"] == 0.33917084 and values["E"] == 1.69337368
    runs, _ = simulate("chinchilla", seed=2)
    result = _quiet_fit(runs, law="chinchilla", likelihood="normal", prior_set="literature", seed=1, **QUICK)
    assert result.config["priors"]["alpha"]["mu"] == pytest.approx(np.log(0.33917084))


def test_prior_predictive_covers_the_data_and_uses_the_same_priors():
    from bayes_scaling.model.spec import prior_predictive

    runs, _ = simulate("chinchilla", seed=9)
    check = prior_predictive(runs, law="chinchilla", likelihood="normal", draws=2000, seed=1)
    lo, hi = np.nanquantile(np.exp(check["log_loss"]), [0.025, 0.975], axis=0)
    inside = np.mean((runs.loss >= lo) & (runs.loss <= hi))
    assert inside > 0.9  # weakly informative: the data are plausible a priori
    assert np.median(hi / lo) > 1.5  # ...but not pinned down
    # Overrides reach the prior predictive as they reach the fit.
    tight = prior_predictive(runs, law="chinchilla", likelihood="normal", draws=2000, seed=1,
                             priors={"alpha": "LogNormal(mu=-1.0, sigma=0.01)"})
    assert np.std(tight["params"]["alpha"]) < 0.01
    assert np.median(tight["params"]["alpha"]) == pytest.approx(np.exp(-1.0), rel=0.01)


@pytest.mark.filterwarnings("ignore::bayes_scaling.sampling.diagnostics.SamplingWarning")
def test_a_format_1_file_is_converted_on_load(tmp_path):
    """tests/data/fit_format1.nc was written by bayes_scaling 0.1 (PyMC 5.28, ArviZ 0.23)."""
    import xarray as xr

    from bayes_scaling.errors import DataWarning
    from bayes_scaling.posterior.fitfile import FORMAT_VERSION

    old = Path(__file__).parent / "data" / "fit_format1.nc"
    with pytest.warns(DataWarning, match="format 1 .* converted on load; .* cannot be verified"):
        converted = load_fit(old, law="chinchilla")
    with xr.open_datatree(str(old)) as raw:
        np.testing.assert_array_equal(converted.draws("alpha"), raw["posterior"]["alpha"].values.ravel())
        assert "divergence_message" not in converted.idata["sample_stats"].data_vars
    assert converted.config["versions"]["arviz"].startswith("0.")
    assert len(converted.runs) == 12 and np.isfinite(converted.summary()["mean"]).all()
    again = converted.save(tmp_path / "upgraded.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        reloaded = load_fit(again, law="chinchilla")
    assert int(reloaded.idata["posterior"].attrs["bayes_scaling_format"]) == FORMAT_VERSION
    np.testing.assert_array_equal(reloaded.draws("alpha"), converted.draws("alpha"))


def test_an_unknown_format_is_refused_with_what_to_do(tmp_path):
    import xarray as xr

    with xr.open_datatree(str(Path(__file__).parent / "data" / "fit_format1.nc")) as raw:
        tree = raw.load().copy(deep=True)
    tree["posterior"].attrs["bayes_scaling_format"] = 0
    tree.to_netcdf(str(tmp_path / "ancient.nc"))
    with pytest.raises(FitFileError, match="format 0 .* reads formats 1, 2, 3. Re-run the fit"):
        load_fit(tmp_path / "ancient.nc")


def test_a_training_window_fits_the_largest_runs_and_its_back_tests_use_it_too():
    from bayes_scaling.posterior.law_only import training_window

    runs, _ = simulate("chinchilla", seed=6, sizes=np.geomspace(2e7, 2e10, 8))  # 40 runs over 8.5 decades
    log_c = np.log10(runs.C)
    within = int((log_c >= log_c.max() - 4.5 - 1e-12).sum())
    assert 18 < within < len(runs)
    near = training_window(runs, 4.5, min_runs=18)
    assert len(near) == within and np.log10(near.C).min() >= log_c.max() - 4.5 - 1e-9
    assert training_window(runs, None, min_runs=18) is runs
    narrow = training_window(runs, 0.5, min_runs=18)  # too few within: the 18 largest
    assert len(narrow) == 18 and np.sort(narrow.C)[0] >= np.sort(runs.C)[-18]
    for bad in (0.0, -1, float("inf"), "wide"):
        with pytest.raises(InputError, match="positive number of decades"):
            training_window(runs, bad, min_runs=18)

    result = _quiet_fit(runs, window=4.5, discrepancy="scaled", seed=1, **QUICK)
    assert len(result.runs) == within and result.config["window"] == 4.5
    kept = result.structural.backtests
    assert len(kept) and kept["run"].max() < within  # cuts of the fitted runs, not of all of them
    assert result.structural.c_ref == runs.C.max()



def test_the_frontier_window_fits_near_the_frontier_only_where_the_design_has_many_runs_there():
    from bayes_scaling.posterior.law_only import FRONTIER_DECADES, FRONTIER_MIN_RUNS, training_window

    sparse, _ = simulate("chinchilla", seed=6, sizes=np.geomspace(2e7, 2e10, 8))  # 40 runs: too few
    assert training_window(sparse, "frontier", min_runs=18) is sparse
    chinchilla = bs.load_dataset("chinchilla")
    log_c = np.log10(chinchilla.C)
    near = log_c >= log_c.max() - FRONTIER_DECADES - 1e-12
    assert near.sum() >= FRONTIER_MIN_RUNS
    fitted = training_window(chinchilla, "frontier", min_runs=18)
    assert len(fitted) == near.sum() and np.array_equal(np.sort(fitted.C), np.sort(chinchilla.C[near]))
    with pytest.raises(InputError, match="positive number of decades"):
        training_window(chinchilla, "frontiers", min_runs=18)


def test_a_frontier_fit_allocates_by_the_law_fitted_to_every_run(tmp_path):
    """The loss is forecast from the runs near the frontier, the allocation from every run: α near the
    frontier is about 0.67, the allocation exponent of every run about 0.5 (Hoffmann et al.: 0.46-0.5);
    the every-run draws are saved and loaded with the fit."""
    from bayes_scaling.posterior.load import load_fit

    result = _quiet_fit("chinchilla", seed=1, **QUICK)
    assert len(result.runs) == 57 and result.config["allocation"]["runs"] == 245
    assert "allocation_posterior" in result.idata.children
    fc = bs.Forecaster(result)
    a = np.median(fc.allocation_exponents()["a"])
    assert 0.45 < a < 0.56 and np.median(result.draws("alpha")) > 0.5
    every = result.allocation_params()
    law_only = _quiet_fit("chinchilla", seed=1, window=None, discrepancy="none", **QUICK)
    np.testing.assert_array_equal(every["alpha"], law_only.draws("alpha"))  # the same fit, bit for bit
    back = load_fit(result.save(tmp_path / "fit.nc"))
    np.testing.assert_array_equal(bs.Forecaster(back).allocation(1e24)["N"], fc.allocation(1e24)["N"])
    whole = _quiet_fit("chinchilla", seed=1, window=None, backtests=False, **QUICK)
    assert "allocation_posterior" not in whole.idata.children  # every run fitted: one posterior serves both

#: SHA-256 of Chinchilla fits' draws (seed 0: 4 × 1000 draws, five back-tests).  ``every_run``: the law
#: fitted to every run (``window=None``), as the code before the frontier default (commit a67d7a1)
#: draws it in the same environment — a change of defaults must not move the law's own draws;
#: ``posterior`` and ``structural_error``: the default fit (near the frontier, the shared drift).
#: Draws repeat bit for bit within one interpreter and package set, and only there (Python 3.13, or
#: another build of the same versions, draws otherwise), so the environment is recorded.
DIGEST_ENVIRONMENT = {"python": "3.12.1", "numpy": "2.5.5", "pytensor": "3.3.8", "nutpie": "0.16.11",
                      "numba": "0.68.0", "pymc": "6.4.0", "scipy": "1.18.1", "llvmlite": "0.50.0"}
#: The digests by the CPU numba compiles for (llvmlite's host CPU name): the same versions draw other
#: floating-point numbers on another CPU (the first set was measured on a machine whose CPU was not named).
#: A CPU's entry holds the groups last measured on it: the structural error's draws changed on 2026-12-08
#: (a share of the population on which the law holds), measured on znver5 only, whose draws of the law
#: are those of the unnamed machine.
_ZNVER5 = {
    "every_run": "5a582ce4eebff35628eecb4cec13c6b7adb5a0afc5202724fdc0ecc391571db4",
    "posterior": "5d716db5157ef1dc08162a4d0dae66988c4c3b71e5a6b5157892988de7702bad",
    "structural_error": "5180153d4934fd45b35c2216e07f6716840709d3324d686ca3e84d703e8faf84",
}
FIT_DIGESTS = {
    "znver3": {
        "every_run": "a5e6847a131911fc63157b8909ca713467dce49b9022e5134b6fa1b0c984583f",
        "posterior": "a7cc1deee228cfe42d7dfef498f70b33b1bf22dba4af71223ac53efa539859a0",
    },
    "znver5": _ZNVER5,
    "unnamed": _ZNVER5,
}


def _group_digest(tree, group: str) -> str:
    """SHA-256 of a group's variables by name as float64 bytes; the structural error's kept back-tests
    (their own group since fit-file format 3) count under their earlier names, ``backtest_…``, less
    ``run``, which format 2 held as the dimension's coordinate, not as a variable."""
    import hashlib

    variables = {name: tree[group][name].values for name in tree[group].data_vars}
    if group == "structural_error" and "structural_backtests" in tree.children:
        variables |= {f"backtest_{k}": v.values for k, v in tree["structural_backtests"].data_vars.items()
                      if k != "run"}
    digest = hashlib.sha256()
    for name in sorted(variables):
        digest.update(f"{group}/{name}".encode())
        digest.update(np.ascontiguousarray(np.asarray(variables[name], dtype=float)).tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_the_chinchilla_fits_draw_bit_for_bit_what_they_drew_before():
    import platform
    from importlib.metadata import version

    here = {"python": platform.python_version(),
            **{name: version(name) for name in DIGEST_ENVIRONMENT if name != "python"}}
    if here != DIGEST_ENVIRONMENT:
        pytest.skip(f"the digests were measured with {DIGEST_ENVIRONMENT}; this is {here}")
    import json
    import subprocess
    import sys

    import llvmlite.binding

    from bayes_scaling.sampling.compiled import COMPILE_IN_CHILD_ENV

    # In a process of its own, as a user's runs: numba code compiled in a child and loaded from the
    # cache. (The suite compiles in its own processes, and a process that compiled a model afresh
    # keeps that code, which may differ from the cached code in a last bit: other draws.)
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); from test_fit import _group_digest; "
              "from bayes_scaling.fitting import fit; "
              "every_run = fit('chinchilla', seed=0, window=None, discrepancy='none'); "
              "result = fit('chinchilla', seed=0); "
              "print(json.dumps({'every_run': _group_digest(every_run.idata, 'posterior'), "
              "**{g: _group_digest(result.idata, g) for g in ('posterior', 'structural_error')}}))")
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True, text=True,
                          env={**os.environ, COMPILE_IN_CHILD_ENV: "1"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    drawn = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = llvmlite.binding.get_host_cpu_name()
    if cpu in FIT_DIGESTS:
        assert {group: drawn[group] for group in FIT_DIGESTS[cpu]} == FIT_DIGESTS[cpu]
    elif drawn not in FIT_DIGESTS.values():
        pytest.skip(f"no digests recorded for this CPU ({cpu}): {drawn}")


def test_a_format_2_file_loads_into_the_arviz_layout_with_the_same_numbers(tmp_path):
    """Format 2 kept the structural error along a flat ``sample`` dimension with its back-tests beside
    it; it loads with (chain, draw) dimensions, its back-tests in a group of their own, the same values."""
    import xarray as xr

    from bayes_scaling.posterior.load import load_fit

    source = Path(__file__).parent / "data" / "fit_format2.nc"
    with xr.open_datatree(str(source)) as raw:
        flat = {k: np.asarray(v.values) for k, v in raw["structural_error"].to_dataset().data_vars.items()}
    result = load_fit(source)
    group = result.idata["structural_error"]
    assert group["b"].dims == ("chain", "draw") and group.sizes == {"chain": 2, "draw": 100}
    np.testing.assert_array_equal(group["b"].values.reshape(-1), flat["b"])
    np.testing.assert_array_equal(result.idata["structural_backtests"]["error"].values, flat["backtest_error"])
    assert {"prior", "prior_predictive", "log_likelihood", "posterior_predictive"} <= set(result.idata.children)
    saved = result.save(tmp_path / "again.nc")  # written in today's format, and read back the same
    again = load_fit(saved)
    np.testing.assert_array_equal(again.structural.b, result.structural.b)
    pd.testing.assert_frame_equal(again.structural.backtests, result.structural.backtests)


def test_every_group_has_chain_and_draw_dimensions_for_arviz():
    """ArviZ 1 functions work on a fit's DataTree directly: every group of draws has (chain, draw)."""
    import arviz_stats

    result = fit("chinchilla", draws=100, tune=200, chains=2, seed=4)
    tree = result.idata
    for group in ("posterior", "prior", "posterior_predictive", "prior_predictive", "log_likelihood",
                  "structural_error"):
        for name, var in tree[group].data_vars.items():
            assert var.dims[:2] == ("chain", "draw"), (group, name, var.dims)
    ess = arviz_stats.ess(tree, group="structural_error", var_names=["b"])
    assert float(ess["b"]) > 50
    assert set(tree["prior"].data_vars) >= {"E", "A", "B", "alpha", "beta"}


def test_trace_and_pair_figures_come_from_arviz_plots():
    import matplotlib

    matplotlib.use("Agg")
    from bayes_scaling.plots.posterior import plot_pair, plot_trace

    result = fit("chinchilla", draws=100, tune=200, chains=2, backtests=False, seed=4)
    trace = plot_trace(result, var_names=["alpha", "beta"])
    assert len(trace.axes) == 4 and "2 chains" in trace._suptitle.get_text()
    pair = plot_pair(result, var_names=["E", "alpha", "beta"])
    assert len([ax for ax in pair.axes if ax.has_data()]) >= 3
