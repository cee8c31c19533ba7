"""Structural error: its likelihood, its update, its draws, and forecasts that include it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayes_scaling as bs
from bayes_scaling.calibration.population import fit_population, load_population, population_draws
from bayes_scaling.calibration.rolling import extrapolation_cuts
from bayes_scaling.calibration.update import update
from bayes_scaling.posterior.structural import StructuralError, cut_loglik

POPULATION = pd.DataFrame({"mu_b": [-0.004], "sigma_b": [0.01], "mu_log_tau": [np.log(0.006)],
                           "sigma_log_tau": [0.4], "mu_log_omega": [np.log(0.008)], "sigma_log_omega": [0.4]})


def test_cut_loglik_is_the_multivariate_normal():
    """Sherman–Morrison against scipy's dense multivariate normal."""
    rng = np.random.default_rng(0)
    d, s = rng.uniform(0.1, 2, 7), rng.uniform(0.005, 0.03, 7)
    e = rng.normal(0, 0.02, 7)
    for b, tau, omega in ((0.01, 0.005, 0.02), (-0.03, 0.0, 0.0), (0.0, 0.05, 0.001)):
        cov = np.diag(s**2 + omega**2 * d**2) + tau**2 * np.outer(d, d)
        expected = stats.multivariate_normal(b * d, cov).logpdf(e)
        ours = cut_loglik(np, np.array([[b]]), np.array([[tau]]), np.array([[omega]]), d[None], e[None], s[None])
        np.testing.assert_allclose(ours[0], expected, rtol=1e-10)


def test_the_update_integrates_the_drift_as_brute_force_importance_sampling_does():
    """b integrated in closed form, against the population's own b draws weighted by cut_loglik."""
    rng = np.random.default_rng(5)
    errors = _simulated_backtests(rng, 0.015, 0.004, 0.006, cuts=3, runs=15)
    se = update(POPULATION, errors, draws=20_000, c_ref=1.0, seed=1)
    prop = population_draws(POPULATION, 400_000, np.random.default_rng(2))
    logw = sum(cut_loglik(np, prop["b"][:, None], prop["tau"][:, None], prop["omega"][:, None], d[None], e[None],
                          s[None]) for d, e, s in
               ((g["d"].to_numpy(), g["error"].to_numpy(), g["spread"].to_numpy()) for _, g in errors.groupby("cut")))
    w = np.exp(logw - logw.max())
    w /= w.sum()
    for name, ours in (("b", se.b), ("tau", se.tau), ("omega", se.omega)):
        brute = np.sum(w * prop[name])
        sd = np.sqrt(np.sum(w * (prop[name] - brute) ** 2))
        assert abs(ours.mean() - brute) < 0.05 * sd, name


def test_shift_has_the_stated_mean_and_variance():
    n = 200_000
    se = StructuralError(np.full(n, -0.01), np.full(n, 0.004), np.full(n, 0.006), c_ref=1e21, source="test")
    shift = se.shift(np.array([1e20, 1e21, 1e23]), np.random.default_rng(1))
    assert np.all(shift[:, :2] == 0)  # inside the data: no structural error
    np.testing.assert_allclose(shift[:, 2].mean(), -0.02, atol=2e-4)
    np.testing.assert_allclose(shift[:, 2].std(), 2 * np.hypot(0.004, 0.006), rtol=0.01)


def _simulated_backtests(rng, b, tau, omega, cuts=3, runs=12, rho=1.0):
    rows = []
    for c in range(cuts):
        d = rng.uniform(0.05, 1.5, runs)
        s = rng.uniform(0.004, 0.01, runs)
        kappa = b + tau * rng.normal()
        e = kappa * d + rng.normal(0, np.sqrt((rho * s) ** 2 + (omega * d) ** 2))
        rows.append(pd.DataFrame({"cut": float(c), "d": d, "error": e, "spread": s}))
    return pd.concat(rows, ignore_index=True)


def test_update_recovers_a_dataset_drift():
    """Back-tests drifting by -0.03 per decade move the population (centred at -0.004) to it."""
    errors = _simulated_backtests(np.random.default_rng(2), -0.03, 0.003, 0.005, cuts=5, runs=20)
    se = update(POPULATION, errors, draws=4000, c_ref=1.0, seed=0)
    lo, hi = np.quantile(se.b, [0.025, 0.975])
    assert lo < -0.03 < hi and hi < -0.015
    assert se.info["internal_backtests"] == 5 and se.info["effective_cells"] > 50
    prior = update(POPULATION, None, draws=4000, c_ref=1.0, seed=0)
    assert abs(np.median(prior.b) + 0.004) < 0.002


def test_a_symmetric_update_learns_the_size_of_the_drift_not_its_direction():
    """Back-tests drifting by -0.02 per decade: the symmetric update finds |b| near 0.02 with either
    sign equally likely; back-tests without drift or scatter shrink |b|, τ and ω below the population's."""
    rng = np.random.default_rng(2)
    population = POPULATION.assign(mu_b=0.0)
    prior = update(population, None, draws=4000, c_ref=1.0, seed=0)
    drifting = update(population, _simulated_backtests(rng, -0.02, 0.003, 0.005, cuts=3, runs=20), draws=4000,
                      c_ref=1.0, seed=0, symmetric=True)
    lo, hi = np.quantile(np.abs(drifting.b), [0.025, 0.975])
    assert lo < 0.02 < hi and lo > np.quantile(np.abs(prior.b), 0.5)
    assert 0.45 < np.mean(drifting.b > 0) < 0.55 and drifting.info["symmetric"]
    steady = update(population, _simulated_backtests(rng, 0.0, 1e-3, 1e-3, cuts=3, runs=12), draws=4000,
                    c_ref=1.0, seed=0, symmetric=True)
    for name in ("b", "tau", "omega"):
        assert np.median(np.abs(getattr(steady, name))) < np.median(np.abs(getattr(prior, name))), name


def test_a_population_drift_keeps_the_shared_direction_and_learns_the_sizes():
    """drift="population" (the "shared" mode): back-tests drifting *up* by 0.02 per decade do not turn
    the drift, which stays the population's N(μ_b, σ_b²); they still tell its scatter's size."""
    rng = np.random.default_rng(4)
    population = POPULATION.assign(mu_b=-0.005, sigma_b=0.01)
    up = _simulated_backtests(rng, 0.02, 0.003, 0.02, cuts=3, runs=20)
    shared = update(population, up, draws=4000, c_ref=1.0, seed=0, drift="population")
    assert shared.info["drift"] == "population"
    assert abs(np.mean(shared.b) + 0.005) < 0.001 and abs(np.std(shared.b) - 0.01) < 0.001
    learned = update(population, up, draws=4000, c_ref=1.0, seed=0, drift="updated")
    assert np.mean(learned.b) > np.mean(shared.b) + 0.005  # the other rule follows the back-tests' direction
    steady = update(population, _simulated_backtests(rng, 0.0, 1e-3, 1e-3, cuts=3, runs=12), draws=4000,
                    c_ref=1.0, seed=0, drift="population")
    assert np.median(steady.omega) < np.median(shared.omega)  # the sizes do follow the back-tests
    with pytest.raises(ValueError, match="drift must be one of"):
        update(population, up, draws=10, c_ref=1.0, drift="sideways")


def test_updated_forecasts_are_calibrated_when_the_model_holds():
    """Datasets drawn from the population: 90% intervals of a new run's error hold it ~90% of the time."""
    rng = np.random.default_rng(3)
    truths = population_draws(POPULATION, 150, rng)
    hits50 = hits90 = 0
    for k in range(150):
        b, tau, omega = (truths[p][k] for p in ("b", "tau", "omega"))
        errors = _simulated_backtests(rng, b, tau, omega)
        se = update(POPULATION, errors, draws=2000, c_ref=1.0, seed=k)
        d = 1.0
        actual = (b + tau * rng.normal()) * d + omega * d * rng.normal()
        draws = se.shift(np.array([10.0**d]), rng)[:, 0]
        hits90 += np.quantile(draws, 0.05) <= actual <= np.quantile(draws, 0.95)
        hits50 += np.quantile(draws, 0.25) <= actual <= np.quantile(draws, 0.75)
    # binomial 99% ranges for n = 150: 90% → [0.83, 0.95], 50% → [0.39, 0.61]
    assert 0.83 <= hits90 / 150 <= 0.96 and 0.38 <= hits50 / 150 <= 0.62


def test_the_shipped_population_and_its_fallback():
    pop = load_population("chinchilla", "student-t")
    assert len(pop) >= 1000 and "chinchilla" in pop.attrs["source"] and "gadre-c4" in pop.attrs["source"]
    assert np.isfinite(pop.to_numpy()).all()
    assert (pop["sigma_log_lambda"] > 0).all()  # learned from inner back-tests: λ differs between datasets
    assert (pop["sigma_log_shrink"] > 0).all()  # and so does ρ, how far the law-only spread overstates errors
    assert len(load_population("kaplan-nd", "normal")) == len(pop)  # no population of its own: chinchilla's
    every_run = load_population("chinchilla", "student-t", window=None)
    assert "every run" in every_run.attrs["source"] and "frontier" in pop.attrs["source"]
    assert "gemstones" in pop.attrs["source"] and not every_run.equals(pop)
    assert pop["mu_b"].std() > 0  # the shared direction is learned
    old = pop.drop(columns=["mu_log_lambda", "sigma_log_lambda", "mu_log_shrink", "sigma_log_shrink"],
                   errors="ignore")  # a population learned before λ and ρ: λ = 1, ρ = 1
    assert update(old, None, draws=10, c_ref=1.0).n_draws == 10
    assert np.all(update(old, _simulated_backtests(np.random.default_rng(0), 0.0, 0.004, 0.006), draws=50,
                         c_ref=1.0).rho == 1.0)


def _with_spread_scale(population, rho: float, spread: float = 0.3):
    """``population`` with a ρ (how many times the law-only spread forecasts scatter) near ``rho``."""
    return population.assign(mu_log_shrink=np.log(-np.log(rho)), sigma_log_shrink=spread)


def test_the_update_learns_how_far_the_law_only_spread_overstates_the_errors():
    """Back-tests whose errors scatter half as much as the law-only spread says, and no structural
    error: the update finds ρ near 0.5 from a population centred at 0.8; back-tests at the stated
    spread leave ρ near 1.  Beyond the data a forecast's spread about its centre is ρ× the law's;
    inside it, untouched."""
    rng = np.random.default_rng(8)
    population = _with_spread_scale(POPULATION.assign(mu_b=0.0, mu_log_tau=np.log(1e-3), mu_log_omega=np.log(1e-3)),
                                    0.8, spread=1.0)
    tight = _simulated_backtests(rng, 0.0, 0.0, 0.0, cuts=4, runs=20)
    tight["error"] *= 0.5
    learned = update(population, tight, draws=4000, c_ref=1.0, seed=0, symmetric=True)
    lo, hi = np.quantile(learned.rho, [0.05, 0.95])
    assert lo < 0.5 < hi and hi < 0.7, (lo, hi)
    assert learned.info["spread_scale"] == pytest.approx(np.median(learned.rho))
    stated = update(population, _simulated_backtests(rng, 0.0, 0.0, 0.0, cuts=4, runs=20), draws=4000, c_ref=1.0,
                    seed=0, symmetric=True)
    assert np.quantile(stated.rho, 0.5) > 0.85
    law = rng.normal(0.0, 0.02, (4000, 3))
    forecast = learned.respread(law, np.zeros((1, 3)), np.array([0.5, 1.0, 10.0]))
    np.testing.assert_array_equal(forecast[:, :2], law[:, :2])
    np.testing.assert_allclose(forecast[:, 2], learned.rho * law[:, 2])


def _to_inner_scale(population, lam):
    """A population whose (b, τ, ω) are λ× those of ``population`` (λ = 1)."""
    return population.assign(mu_b=population["mu_b"] * lam, sigma_b=population["sigma_b"] * lam,
                             mu_log_tau=population["mu_log_tau"] + np.log(lam),
                             mu_log_omega=population["mu_log_omega"] + np.log(lam))


def test_the_update_reads_inner_back_tests_at_the_population_lambda():
    """With λ = 2 known, updating on back-tests equals updating the population moved to their
    scale (λb, λτ, λω) and halving every draw; a λ with spread draws a λ per population row."""
    errors = _simulated_backtests(np.random.default_rng(4), -0.04, 0.006, 0.01, cuts=3, runs=15)
    population = POPULATION.assign(mu_b=0.0)
    with_lambda = update(population.assign(mu_log_lambda=np.log(2.0), sigma_log_lambda=0.0), errors, draws=3000,
                         c_ref=1.0, seed=3, symmetric=True)
    moved = update(_to_inner_scale(population, 2.0).assign(mu_log_lambda=0.0, sigma_log_lambda=0.0), errors,
                   draws=3000, c_ref=1.0, seed=3, symmetric=True)
    for name in ("b", "tau", "omega"):
        np.testing.assert_allclose(getattr(with_lambda, name), getattr(moved, name) / 2.0, rtol=1e-9)
    assert with_lambda.info["inner_scale"] == pytest.approx(2.0)
    plain = update(population, errors, draws=3000, c_ref=1.0, seed=3, symmetric=True)  # no λ columns: λ = 1
    assert plain.info["inner_scale"] == 1.0 and np.median(plain.tau) > np.median(with_lambda.tau)
    spread = update(population.assign(mu_log_lambda=np.log(2.0), sigma_log_lambda=0.5), errors, draws=3000,
                    c_ref=1.0, seed=3, symmetric=True)
    assert 1.3 < spread.info["inner_scale"] < 3.0
    draws = population_draws(population.assign(mu_log_lambda=np.log(3.0), sigma_log_lambda=0.0), 20_000,
                             np.random.default_rng(0), inner=True)
    outer = population_draws(population, 20_000, np.random.default_rng(0))
    np.testing.assert_allclose(np.median(draws["tau"]) / np.median(outer["tau"]), 3.0, rtol=1e-9)


def test_the_populations_vectorized_likelihood_is_the_sum_over_back_tests():
    """_BacktestLayout.loglik (one cumulative sum for every back-test of every dataset) against
    cut_loglik summed cut by cut, an inner back-test's (b, τ, ω) scaled by its dataset's λ, every
    law-only spread by its dataset's ρ."""
    from bayes_scaling.calibration.population import _BacktestLayout

    rng = np.random.default_rng(6)
    frames = []
    for k in range(3):
        outer = _simulated_backtests(rng, 0.01, 0.004, 0.006, cuts=3, runs=9).assign(kind="outer", dataset=f"d{k}")
        frames.append(outer.assign(origin=outer["cut"]))
        for origin in range(2):
            inner = _simulated_backtests(rng, 0.02, 0.008, 0.01, cuts=2, runs=7)
            frames.append(inner.assign(kind="inner", origin=float(origin), dataset=f"d{k}"))
    errors = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0)  # any row order
    b, tau, omega, lam = rng.normal(0, 0.01, 3), rng.uniform(0.002, 0.01, 3), rng.uniform(0.002, 0.01, 3), \
        rng.uniform(0.5, 3.0, 3)
    rho = rng.uniform(0.3, 1.0, 3)
    expected = 0.0
    for (name, kind, _, _), g in errors.groupby(["dataset", "kind", "origin", "cut"]):
        k = int(name[1:])
        scale = lam[k] if kind == "inner" else 1.0
        expected += cut_loglik(np, scale * b[k], scale * tau[k], scale * omega[k], g["d"].to_numpy()[None],
                               g["error"].to_numpy()[None], rho[k] * g["spread"].to_numpy()[None])[0]
    layout = _BacktestLayout(errors, ["d0", "d1", "d2"])
    np.testing.assert_allclose(layout.loglik(np, b, tau, omega, lam, rho), expected, rtol=1e-12)


@pytest.mark.slow
def test_the_population_learns_how_much_more_inner_back_tests_err():
    """Four datasets whose inner back-tests err 2.5× as much as their forecasts: the population
    finds λ near 2.5, and its (b, τ, ω) at the forecasts' scale."""
    rng = np.random.default_rng(11)
    frames = []
    for k in range(4):
        b, tau, omega = rng.normal(0, 0.01), 0.004 * np.exp(0.3 * rng.normal()), 0.006 * np.exp(0.3 * rng.normal())
        outer = _simulated_backtests(rng, b, tau, omega, cuts=4, runs=15).assign(kind="outer")
        outer["origin"] = outer["cut"]
        frames.append(outer.assign(dataset=f"d{k}"))
        for origin in range(3):
            inner = _simulated_backtests(rng, 2.5 * b, 2.5 * tau, 2.5 * omega, cuts=3, runs=12)
            frames.append(inner.assign(kind="inner", origin=float(origin), dataset=f"d{k}"))
    population = fit_population(pd.concat(frames, ignore_index=True), draws=200, tune=300, chains=2, seed=0)
    lam = np.exp(population["mu_log_lambda"])
    lo, hi = np.quantile(lam, [0.05, 0.95])
    assert lo < 2.5 < hi and lo > 1.5, (lo, hi)
    assert np.quantile(np.exp(population["mu_log_omega"]), 0.05) < 0.006 < np.quantile(
        np.exp(population["mu_log_omega"]), 0.95)
    with pytest.raises(bs.InputError, match="'outer' or 'inner'"):
        fit_population(pd.concat(frames).assign(kind="other"), draws=10, tune=10, chains=1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayes_scaling.sampling.diagnostics.SamplingWarning")  # 2 × 200 draws: a recovery test
def test_the_population_learns_how_far_the_law_only_spread_overstates_the_errors():
    """Four datasets whose back-tests, inner and outer, scatter 0.5× the stated law-only spread
    about their drift: the population's ρ for a new dataset comes out near 0.5, not 1."""
    rng = np.random.default_rng(12)
    frames = []
    for k in range(4):
        outer = _simulated_backtests(rng, 0.0, 0.002, 0.002, cuts=4, runs=15, rho=0.5).assign(kind="outer")
        frames.append(outer.assign(origin=outer["cut"], dataset=f"d{k}"))
        for origin in range(3):
            inner = _simulated_backtests(rng, 0.0, 0.002, 0.002, cuts=3, runs=12, rho=0.5)
            frames.append(inner.assign(kind="inner", origin=float(origin), dataset=f"d{k}"))
    population = fit_population(pd.concat(frames, ignore_index=True), draws=200, tune=300, chains=2, seed=0)
    rho = population_draws(population, 20_000, np.random.default_rng(0))["rho"]
    assert 0.35 < np.median(rho) < 0.65, np.median(rho)


def test_cuts_always_leave_runs_to_fit_and_to_score():
    """An isoFLOP ladder whose top budget holds 15% of the runs: the old quantile cuts scored nothing."""
    budgets = np.repeat(np.geomspace(1e18, 1e21, 7), [20, 20, 20, 15, 10, 8, 15])
    n = np.concatenate([np.geomspace(np.sqrt(c / 6 / 80), np.sqrt(c / 6 / 5), k)
                        for c, k in zip(*np.unique(budgets, return_counts=True), strict=True)])
    runs = bs.read_runs(pd.DataFrame({"N": n, "C": budgets, "loss": 2 + 1e3 * budgets ** -0.15}), name="ladder")
    cuts = extrapolation_cuts(runs, min_train=18)
    assert len(cuts) >= 3
    for cut in cuts:
        assert (runs.C <= cut).sum() >= 18 and (runs.C > cut).sum() >= 2
    with pytest.raises(bs.InputError, match="no compute cut leaves"):
        extrapolation_cuts(runs.subset(runs.C <= 1e18 * 1.01, label="one budget"), min_train=18)


def test_a_cut_is_the_largest_training_budget_itself():
    """10 ** log10(C) can come out an ulp below C: a cut made that way left the runs of its own budget
    out of training, and a user's fit of 102 Chinchilla runs failed (17 runs left to fit, 18 needed)."""
    budget = 9.720290945e18
    assert 10 ** np.log10(np.array([budget])).max() < budget  # the trap: a scalar round trip falls short
    budgets = np.repeat([1e18, 3e18, budget, 1e20, 1e21], [6, 6, 6, 10, 4])
    n = np.concatenate([np.geomspace(np.sqrt(c / 6 / 80), np.sqrt(c / 6 / 5), k)
                        for c, k in zip(*np.unique(budgets, return_counts=True), strict=True)])
    runs = bs.read_runs(pd.DataFrame({"N": n, "C": budgets, "loss": 2 + 1e3 * budgets ** -0.15}), name="ladder")
    cuts = extrapolation_cuts(runs, min_train=18)
    assert budget in cuts
    for cut in cuts:
        assert cut in set(runs.C)
        assert (runs.C <= cut).sum() >= 18
    assert (runs.C <= budget).sum() == 18


def test_nested_backtests_reuse_refits_without_changing_results(monkeypatch):
    """A back-test below a cut repeats refits of training sets already fitted below a larger cut;
    the process keeps them, and what comes out is what fresh refits give."""
    from bayes_scaling.calibration import rolling

    budgets = np.repeat(np.geomspace(1e18, 1e21, 7), 6)
    n = np.concatenate([np.geomspace(np.sqrt(c / 6 / 80), np.sqrt(c / 6 / 5), 6) for c in np.unique(budgets)])
    rng = np.random.default_rng(3)
    d = budgets / (6 * n)
    loss = (1.8 + 400 * n ** -0.34 + 4e3 * d ** -0.28) * np.exp(rng.normal(0, 0.01, len(n)))
    runs = bs.read_runs(pd.DataFrame({"N": n, "D": d, "loss": loss}), name="ladder")
    settings = {"draws": 100, "tune": 100, "chains": 2, "seed": 4}
    calls = []
    real_fit = rolling.sample_law
    monkeypatch.setattr(rolling, "sample_law", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())
    cuts = extrapolation_cuts(runs, min_train=18)[:2]
    first = rolling.rolling_backtest(runs, cuts=cuts, settings=settings)
    assert len(calls) == len(cuts)
    again = rolling.rolling_backtest(runs, cuts=cuts, settings=settings)
    assert len(calls) == len(cuts)  # nothing refitted
    rolling._REFITS.clear()
    fresh = rolling.rolling_backtest(runs, cuts=cuts, settings=settings)
    assert len(calls) == 2 * len(cuts)
    for a, b, c in zip(first, again, fresh, strict=True):
        np.testing.assert_array_equal(a.log_draws, b.log_draws)
        np.testing.assert_array_equal(a.log_draws, c.log_draws)  # a fit is deterministic given its seed
    rolling.rolling_backtest(runs, cuts=cuts, settings={**settings, "seed": 5})
    assert len(calls) == 3 * len(cuts)  # other settings: other refits


def test_a_fits_backtests_are_cached_on_disk_and_reused_bit_for_bit(tmp_path, monkeypatch):
    """With ``cache_dir``, a later fit of the same runs and settings loads its internal back-tests'
    errors instead of refitting them, and its structural error is the same to the bit; another
    seed, or a change of this package's source, refits."""
    from bayes_scaling.calibration import rolling
    from bayes_scaling.data.datasets import runs_from
    from bayes_scaling.io import cache

    everything = runs_from("chinchilla")
    runs = everything.subset(np.arange(len(everything)) % 3 == 0, label="every third run")
    settings = {"draws": 100, "tune": 150, "chains": 2, "seed": 2}
    monkeypatch.setattr(rolling, "_REFITS", rolling.OrderedDict())  # no reuse within the process
    first = bs.fit(runs, cache_dir=tmp_path, **settings)
    stored = list(tmp_path.glob("chinchilla-student-t-backtests-*.npz"))
    assert len(stored) == 1

    def refit(*args, **kwargs):
        raise AssertionError("the back-tests were refitted")

    with monkeypatch.context() as patch:
        patch.setattr(rolling, "rolling_backtest", refit)
        again = bs.fit(runs, cache_dir=tmp_path, **settings)
    for name in ("b", "tau", "omega"):
        np.testing.assert_array_equal(getattr(first.structural, name), getattr(again.structural, name))
    pd.testing.assert_frame_equal(first.structural.backtests, again.structural.backtests, check_exact=True)
    bs.fit(runs, cache_dir=tmp_path, **{**settings, "seed": 3})
    monkeypatch.setattr(cache, "source_digest", lambda: "an edited source")
    bs.fit(runs, cache_dir=tmp_path, **settings)
    assert len(list(tmp_path.glob("*-backtests-*.npz"))) == 3
