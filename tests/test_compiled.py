"""The disk-cached nutpie compile: the same draws as nutpie's own compile, and a second process loads it
(its C callbacks, and the rewritten graphs it rebuilds its functions from)."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from simulate import simulate

from bayes_scaling.laws.registry import get_law
from bayes_scaling.model.likelihoods import get_likelihood
from bayes_scaling.model.pymc_model import build_model, model_data
from bayes_scaling.model.spec import model_spec
from bayes_scaling.sampling.compiled import _unpack_lines, compile_cached, graph_key

nutpie = pytest.importorskip("nutpie")


@pytest.fixture(autouse=True)
def _compile_in_a_child_as_users_do(monkeypatch):
    """conftest turns the child compile off for speed; here it is what is tested."""
    monkeypatch.setenv("BAYES_SCALING_COMPILE_IN_CHILD", "1")


SAMPLE = {"draws": 60, "tune": 60, "chains": 2, "seed": 5, "cores": 1, "progress_bar": False,
          "adaptation": "low_rank", "save_warmup": False}


def _model(seed: int, groups: int = 0, pooling: str = "shared", n_sizes: int = 6):
    runs, _ = simulate("chinchilla", seed=seed, groups=max(groups, 1), sizes=np.geomspace(3e7, 1e10, n_sizes))
    names = tuple(runs.groups) if groups else ()
    spec = model_spec(runs, get_law("chinchilla"), get_likelihood("student-t"), priors=None,
                      prior_set="default", pooling=pooling, groups=names)
    return spec, runs


def _posterior(tree):
    post = tree["posterior"].to_dataset()
    return {name: post[name].values for name in post.data_vars}


def test_cached_compile_draws_equal_nutpies_own():
    """Same log density, same starts: a seed gives bit-identical draws, also after with_data.

    Partially pooled groups: float and integer shared arrays, vector parameters.
    """
    groups, pooling = 3, "partial"
    spec, runs = _model(31, groups, pooling)
    model = build_model(spec, runs)
    ours = _posterior(nutpie.sample(compile_cached(model), **SAMPLE))
    theirs = _posterior(nutpie.sample(nutpie.compile_pymc_model(model), **SAMPLE))
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])

    other_spec, other_runs = _model(32, groups, pooling, n_sizes=4)  # fewer runs: other shapes
    compiled = compile_cached(model)
    used = {var.name for var in compiled.shared_var_keys}
    swapped = compiled.with_data(**{k: v for k, v in model_data(other_spec, other_runs).items() if k in used})
    fresh = compile_cached(build_model(other_spec, other_runs))  # compiled with that data in the graph
    a, b = _posterior(nutpie.sample(swapped, **SAMPLE)), _posterior(nutpie.sample(fresh, **SAMPLE))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def _same_draws(a, b):
    a, b = _posterior(a), _posterior(b)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_kept_rewritten_graphs_give_the_same_draws_without_rewriting(tmp_path, monkeypatch):
    """A later compile rebuilds its functions from the kept graphs, with its own data: draws bit for
    bit those of nutpie's own compile; a damaged graph file is rewritten."""
    import nutpie.compile_pymc as nutpie_compile

    import bayes_scaling.sampling.compiled as compiled_module

    monkeypatch.setattr(compiled_module, "graph_folder", lambda: tmp_path)
    spec, runs = _model(36, 3, "partial")
    first = nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE)
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    kept_values = [v.get_value() for graph in pickle.loads(next(tmp_path.glob("*.pkl")).read_bytes())["graphs"]
                   for v in graph[0] if hasattr(v, "get_value")]
    assert kept_values and all(value.size == 0 for value in kept_values)  # no runs copied to the compile dir

    rewrite = nutpie_compile._make_functions

    def refuse(*args, **kwargs):
        raise AssertionError("the graphs were rewritten again")

    monkeypatch.setattr(nutpie_compile, "_make_functions", refuse)
    _same_draws(first, nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE))
    other_spec, other_runs = _model(37, 3, "partial", n_sizes=4)  # other data, other shapes: the same graphs
    other = build_model(other_spec, other_runs)
    assert graph_key(other) == graph_key(build_model(spec, runs))
    rebuilt = nutpie.sample(compile_cached(other), **SAMPLE)
    monkeypatch.setattr(nutpie_compile, "_make_functions", rewrite)
    # against rewriting anew (itself checked against nutpie's own compile above)
    monkeypatch.setattr(compiled_module, "graph_folder", lambda: tmp_path / "elsewhere")
    _same_draws(rebuilt, nutpie.sample(compile_cached(build_model(other_spec, other_runs)), **SAMPLE))
    monkeypatch.setattr(compiled_module, "graph_folder", lambda: tmp_path)

    kept = next(tmp_path.glob("*.pkl"))
    kept.write_bytes(b"not a pickle")
    _same_draws(first, nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE))
    assert kept.read_bytes() != b"not a pickle"  # written anew


def test_the_graph_key_is_the_model_not_its_data():
    spec, runs = _model(38)
    model = build_model(spec, runs)
    assert graph_key(model) == graph_key(build_model(*_model(39, n_sizes=4)))
    normal = model_spec(runs, get_law("chinchilla"), get_likelihood("normal"))
    assert graph_key(build_model(normal, runs)) != graph_key(model)
    other_prior = model_spec(runs, get_law("chinchilla"), get_likelihood("student-t"),
                             priors={"nu": "Gamma(alpha=2.0, beta=0.2)"})  # another scale: data, not graph
    assert graph_key(build_model(other_prior, runs)) == graph_key(model)
    fixed_nu = model_spec(runs, get_law("chinchilla"), get_likelihood("student-t"),
                          priors={"nu": "Gamma(alpha=3.0, beta=0.1)"})  # another shape: another graph
    assert graph_key(build_model(fixed_nu, runs)) != graph_key(model)


def test_the_graph_key_reads_every_value_of_a_constant():
    """A law may hold arrays as constants; PyTensor prints long ones abbreviated, the key may not."""
    import pymc as pm

    def model_with(constant):
        with pm.Model() as model:
            x = pm.Normal("x", 0.0, 1.0)
            pm.Normal("y", mu=x + constant, sigma=1.0, observed=np.zeros(constant.size))
        return model

    values = np.arange(300.0)
    changed = values.copy()
    changed[150] += 1.0  # in the part a print leaves out
    assert graph_key(model_with(values)) == graph_key(model_with(values.copy()))
    assert graph_key(model_with(values)) != graph_key(model_with(changed))


def test_unpack_lines_read_each_array_from_its_words():
    """Addresses, then sizes, then every shape: the words of array i are where nutpie's record puts them."""
    lines, words = _unpack_lines([1, 2, 0], [(0, "float64"), (1, "float64"), (2, "int64")])
    assert words == 2 * 3 + 1 + 2 + 0
    assert "words[0]), (np.intp(words[6]),)" in lines[0]
    assert "words[1]), (np.intp(words[7]), np.intp(words[8]))" in lines[1]
    assert "words[2]), (), np.int64)" in lines[2]


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from test_compiled import _model
from bayes_scaling.sampling.compiled import compile_cached
from bayes_scaling.model.pymc_model import build_model
import nutpie.compile_pymc
def refuse(*args, **kwargs):
    raise AssertionError("the graphs were rewritten again")
nutpie.compile_pymc._make_functions = refuse  # the parent kept them
spec, runs = _model(33)
compiled = compile_cached(build_model(spec, runs))
print(json.dumps([compiled.compiled_logp_func._cache_hits, compiled.compiled_expand_func._cache_hits]))
"""


def test_a_new_process_loads_the_callbacks_from_disk():
    """What makes a command-line fit cheap: the C callbacks come from the compile cache, not numba,
    and the functions they call are rebuilt from the kept rewritten graphs."""
    spec, runs = _model(33)
    compile_cached(build_model(spec, runs))  # fills the cache (or finds it filled)
    child = subprocess.run([sys.executable, "-c", _CHILD.format(tests=os.path.dirname(__file__))],
                           capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(child.stdout.strip().splitlines()[-1]) == [1, 1]


def test_a_callback_reading_the_wrong_data_is_refused():
    """The self-check at compile time: a callback that disagrees with PyTensor is never used."""
    from bayes_scaling.sampling.compiled import CacheUnavailable, _check_callback

    spec, runs = _model(34)
    compiled = compile_cached(build_model(spec, runs))
    logp_fn = compiled.logp_func
    shared = [compiled.shared_data[compiled.shared_var_keys[v]] for v in logp_fn.get_shared()]
    point = compiled.initial_point_func(0)
    _check_callback(compiled.compiled_logp_func, logp_fn, point, compiled.user_data, shared)
    other = _model(35, n_sizes=4)  # the callback reads other runs than PyTensor is given
    swapped = compiled.with_data(**{k: v for k, v in model_data(*other).items()
                                    if k in {var.name for var in compiled.shared_var_keys}})
    with pytest.raises(CacheUnavailable, match="disagrees"):
        _check_callback(compiled.compiled_logp_func, logp_fn, point, swapped.user_data, shared)


_DRAWS = """
import hashlib
import bayes_scaling as bs
fit = bs.fit(bs.load_dataset("chinchilla"), law="chinchilla", likelihood="student-t", discrepancy="none",
             draws=200, tune=300, chains=2, seed=0)
posterior = fit.idata["posterior"].to_dataset()
print(hashlib.sha256(b"".join(posterior[name].values.tobytes() for name in sorted(posterior.data_vars))).hexdigest())
"""


@pytest.mark.slow
def test_the_first_process_draws_what_later_ones_do(tmp_path):
    """Numba's fresh code and the same code loaded from its cache differed in the last bit of a
    gradient, so a first process (cold compile directory) drew other draws than every later one.
    Its numba code is now compiled by a child process and loaded from the cache, as later ones do.
    (Measured on this fit: the first process's draws differed before; a simulated partially pooled
    fit's did not, so the case is the real one.)"""
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
             if f.strip() and not f.strip().startswith("base_compiledir=")]
    env = os.environ | {"PYTENSOR_FLAGS": ",".join([*flags, f"base_compiledir={tmp_path}"]),
                        "BAYES_SCALING_COMPILE_IN_CHILD": "1"}
    cold, warm = (subprocess.run([sys.executable, "-c", _DRAWS], capture_output=True, text=True, timeout=600,
                                 check=True, env=env).stdout.strip().splitlines()[-1] for _ in range(2))
    assert cold == warm


def test_a_child_that_cannot_start_leaves_a_working_compile_and_a_warning(tmp_path, monkeypatch, caplog):
    """No child process (here: no Python at sys.executable): the model compiles in this process,
    with the same draws, and the user is told that a later process may draw otherwise."""
    import bayes_scaling.sampling.compiled as compiled_module

    spec, runs = _model(41)
    expected = nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE)
    monkeypatch.setattr(compiled_module, "graph_folder", lambda: tmp_path)  # cold: no kept graphs
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    with caplog.at_level("WARNING", logger="bayes_scaling.sampling.compiled"):
        compiled = compile_cached(build_model(spec, runs))
    assert "compiling in a child process failed (FileNotFoundError" in caplog.text
    assert len(list(tmp_path.glob("*.pkl"))) == 1  # the graphs were kept all the same
    _same_draws(expected, nutpie.sample(compiled, **SAMPLE))


def test_kept_graphs_are_unpickled_only_when_private_and_unchanged(tmp_path, monkeypatch, caplog):
    """A pickle runs code: a kept graph file whose bytes changed since it was written (one float
    constant of the probe's) is not loaded but rewritten, draws as before; in a folder others can
    write, nothing is loaded or kept (as ssh and pip treat their files)."""
    import logging
    import os

    import bayes_scaling.sampling.compiled as compiled_module

    folder = tmp_path / "graphs"
    monkeypatch.setattr(compiled_module, "graph_folder", lambda: folder)
    spec, runs = _model(38)
    first = nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE)
    kept = next(folder.glob("*.pkl"))
    assert compiled_module.untrusted(kept, kept.read_bytes()) is None
    stored = pickle.loads(kept.read_bytes())
    stored["n_dim"] = stored["n_dim"]  # a well-formed pickle, other bytes
    kept.write_bytes(pickle.dumps(stored, protocol=2))
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.sampling.compiled"):
        again = nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE)
    assert "bytes are not the ones written here" in caplog.text
    _same_draws(first, again)
    assert compiled_module.untrusted(kept, kept.read_bytes()) is None  # written anew, with its digest

    os.chmod(folder, 0o777)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bayes_scaling.sampling.compiled"):
        again = nutpie.sample(compile_cached(build_model(spec, runs)), **SAMPLE)
    assert "not private to this user" in caplog.text and "chmod go-w" in caplog.text
    _same_draws(first, again)
