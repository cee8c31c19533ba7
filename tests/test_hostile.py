"""Hostile and careless use of the command line: every case asserts the message, the exit code and
what is on disk afterwards.  (Issue 14; the slow cases run real fits and reports.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import InputError, read_runs
from bayes_scaling.cli import json_safe, main

DATA = Path(__file__).parent / "data"
SMALL = DATA / "runs_small.csv"
SMALL_OPTIONS = ["--map", "N=params_M", "--map", "D=tokens_B", "--scale", "N=M", "--scale", "D=B"]


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- data lost
def test_force_never_overwrites_the_input_it_reads(tmp_path, capsys):
    folder = tmp_path / "mydata"
    folder.mkdir()
    data = folder / "summary.csv"
    data.write_bytes(SMALL.read_bytes())
    code, _, err = run(capsys, "fit", str(data), *SMALL_OPTIONS, "--out", str(folder), "--force")
    assert code == 2
    assert "holds this command's input" in err and "Traceback" not in err
    assert tree(folder) == {"summary.csv": SMALL.read_bytes()}


def test_force_never_deletes_a_users_other_files(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.md").write_text("my notes")
    code, _, err = run(capsys, "energy", "--flop", "1e24", "--draws", "200", "--out", str(folder), "--force")
    assert code == 2 and "did not write (notes.md)" in err
    assert tree(folder) == {"notes.md": b"my notes"}


def test_energy_force_replaces_its_own_results(tmp_path, capsys):
    out = tmp_path / "energy"
    assert run(capsys, "energy", "--flop", "1e24", "--params", "7e9", "--tokens-served", "1e12", "--inference-basis",
               "prior", "--draws", "200", "--out", str(out))[0] == 0
    assert (out / "energy_inference.csv").is_file()
    assert run(capsys, "energy", "--flop", "1e24", "--draws", "200", "--out", str(out))[0] == 2
    assert run(capsys, "energy", "--flop", "1e24", "--draws", "200", "--out", str(out), "--force")[0] == 0
    assert not (out / "energy_inference.csv").exists()  # nothing stale from the earlier run
    assert (out / "energy_budgets.csv").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_bad_report_config_leaves_no_folder(tmp_path, capsys):
    config = tmp_path / "r.toml"
    config.write_text('law = "chinchila"\n')
    out = tmp_path / "report"
    code, _, err = run(capsys, "report", "--config", str(config), "--out", str(out))
    assert code == 2 and "law = 'chinchila': expected one of" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.toml"]


def test_sigterm_during_a_command_exits_143_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import bayes_scaling.cli as cli

    def killed_midway(args):
        from bayes_scaling.io.outputs import output_folder

        with output_folder(args.out) as stage:
            (stage / "half.csv").write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            pytest.fail("SIGTERM should have stopped the command")

    parser = cli.build_parser()
    args = parser.parse_args(["energy", "--flop", "1e24", "--out", str(tmp_path / "out")])
    args.handler = killed_midway
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    code, _, err = run(capsys, "energy")
    assert code == 143 and "terminated: nothing was written" in err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_an_unexpected_error_is_reported_as_a_bug_without_a_traceback(tmp_path, capsys, monkeypatch):
    import bayes_scaling.cli as cli

    parser = cli.build_parser()
    args = parser.parse_args(["datasets"])
    args.handler = lambda a: 1 / 0
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    code, _, err = run(capsys, "datasets")
    assert code == 1 and "unexpected ZeroDivisionError" in err and "This is a bug" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- wrong input refused
def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,message", [
    ("N,D,loss\n1e300,1e300,2.5\n1e8,2e9,3.1\n", "C = inf derived as 6*N*D is outside the range of double-precision"),
    ("N,C,loss\n1e-320,1e20,2.5\n1e8,2e18,3.1\n", "D = inf derived as C/(6*N) is outside the range"),
    ("N,D,C,loss\n1e-310,1e9,1e18,2.5\n", "N = 1e-310 after unit scaling is outside the range"),
    ("N,D,loss,loss\n1e8,2e9,3.1,3.2\n", "'loss' appear more than once in the header"),
    ("N,params,D,loss\n1e8,2e8,2e9,3.1\n", "both 'N' and 'params' could be N, and their values differ"),
    ("N,D,perplexity\n1e8,2e9,18.2\n", "is a perplexity; the loss must be in nats per token"),
])
def test_bad_tables_are_refused_with_the_place_and_the_reason(tmp_path, capsys, text, message):
    path = write(tmp_path, "runs.csv", text)
    columns = ["--map", "loss=perplexity"] if "perplexity" in text else []
    code, out, err = run(capsys, "validate", str(path), *columns, "--json")
    assert code == 2, out
    assert message in err and "Traceback" not in err
    assert out == ""  # no half JSON (and never Infinity)


def test_a_boolean_column_is_not_a_number():
    frame = pd.DataFrame({"N": [True, False, True], "D": [1e9, 2e9, 3e9], "loss": [3.0, 2.9, 2.8]})
    with pytest.raises(InputError, match="column 'N': is a true/false column"):
        read_runs(frame)


def test_parquet_rows_are_called_rows(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "runs.parquet"
    pd.DataFrame({"N": [1e8, -1.0], "D": [2e9, 4e9], "loss": [3.1, 3.0]}).to_parquet(path)
    with pytest.raises(InputError, match=r"row 1, column 'N': -1 is not positive"):
        read_runs(path)


def test_json_output_never_holds_nan_or_infinity():
    payload = {"a": float("inf"), "b": [np.float64("nan"), 1.0], "c": {"d": np.float32(2.0)}}
    assert json.dumps(json_safe(payload), allow_nan=False) == '{"a": null, "b": [null, 1.0], "c": {"d": 2.0}}'


@pytest.mark.parametrize("argv,message", [
    (["fit", "chinchilla", "--prior", "alpha=LogNormal(mu=-1, mu=5, sigma=0.3)"], "parameter mu is given twice"),
    (["fit", "chinchilla", "--prior", "alpha=LogNormal(mu=-1, sigma=0.3)", "--prior",
      "alpha=LogNormal(mu=-2, sigma=0.3)"], "--prior alpha is given twice"),
    (["fit", "chinchilla", "--map", "N=a", "--map", "N=b"], "--map N is given twice"),
    (["fit", "chinchilla", "--draws", "0"], "expected a whole number ≥ 1, got '0'"),
    (["fit", "chinchilla", "--level", "95"], "strictly between 0 and 1"),
    (["batch", "chinchilla", "--dask", "tcp://host:x", "--out", "x"], "expected a Dask scheduler address"),
    (["batch", "chinchilla", "--dask", "tcp://bad address:8786", "--out", "x"], "expected a Dask scheduler address"),
    (["fit", "chinchilla", "--window", "wide"], "expected a number of decades > 0, 'frontier' or 'all', got 'wide'"),
    (["fit", "chinchilla", "--window", "-1"], "expected a number of decades > 0, 'frontier' or 'all'"),
    (["forecast", "somefit", "--compute=-1e24"], "expected a finite number > 0, got '-1e24'"),
    (["forecast", "somefit", "--compute", "nan"], "expected a finite number > 0, got 'nan'"),
    (["forecast", "somefit", "--compute", "0"], "expected a finite number > 0, got '0'"),
    (["forecast", "somefit", "--target-loss", "-2"], "expected a finite number > 0"),
    (["energy", "--flop", "1e24", "--draws", "0"], "expected a whole number ≥ 1"),
    (["energy", "--flop", "1e24", "--level", "1.5"], "strictly between 0 and 1"),
    (["energy", "--flop", "1e24", "--year", "nan"], "expected a finite number, got 'nan'"),
    (["energy", "--flop", "1e24", "--year", "1990"], "year 1990 is before the efficiency trend's data"),
    (["energy", "--flop", "1e24", "--year", "2100"], "not extrapolated more than 25 years"),
    (["energy", "--flop", "1e24", "--carbon-intensity", "nan"], "carbon intensity 'nan'"),
    (["energy", "--flop", "1e24", "--carbon-intensity", "0.4:inf"], "carbon intensity '0.4:inf'"),
    (["energy", "--flop", "inf"], "expected a finite number > 0, got 'inf'"),
    (["compare", "chinchilla", "--cut", "-1", "--out", "x"], "expected a finite number > 0"),
    (["fit", "chinchilla", "--cache", __file__], "is a file; the fit cache is a folder"),
    (["compare", "chinchilla", "--cache", __file__, "--out", "x"], "is a file; the fit cache is a folder"),
])
def test_bad_options_exit_2_before_any_work(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "fit":
        argv = [*argv, "--out", "out"]
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_year_far_past_the_newest_chip_warns(capsys):
    code, out, err = run(capsys, "energy", "--flop", "1e24", "--year", "2034", "--draws", "200")
    assert code == 0
    assert "warning: year 2034 extrapolates the efficiency trend 8 years beyond the newest chip" in err


def test_dataset_export_to_a_folder_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "datasets", "export", "chinchilla", "-o", str(tmp_path), "--force")
    assert code == 2 and "is a folder; give the CSV file to write" in err
    assert list(tmp_path.iterdir()) == []


def modified_fit(tmp_path, change):
    """A copy of a real fit file with its stored attributes changed by ``change(attrs)``."""
    import xarray as xr

    with xr.open_datatree(str(DATA / "fit_format1.nc")) as opened:
        tree = opened.load().copy(deep=True)
    change(tree["posterior"].attrs)
    path = tmp_path / "fit.nc"
    tree.to_netcdf(str(path))
    return path


def _drop_law(attrs):
    from bayes_scaling._provenance import config_hash

    config = json.loads(attrs["bayes_scaling_config"])
    del config["law"]
    attrs["bayes_scaling_config"] = json.dumps(config)
    attrs["bayes_scaling_config_hash"] = config_hash(config)


@pytest.mark.parametrize("change,message", [
    (lambda a: a.update(bayes_scaling_config="{not json"), "stored configuration is not valid JSON"),
    (lambda a: a.update(bayes_scaling_format="two"), "format attribute 'two' is not a format version"),
    (lambda a: a.update(bayes_scaling_config="[1, 2]"), "is not a table of settings"),
    (_drop_law, "its stored configuration lacks 'law'"),
])
def test_broken_fit_files_are_refused_cleanly(tmp_path, capsys, change, message):
    path = modified_fit(tmp_path, change)
    code, _, err = run(capsys, "forecast", str(path), "--compute", "1e22", "--out", str(tmp_path / "fc"))
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "fc").exists()


@pytest.mark.parametrize("text,message", [
    ('priors = { alpha = { mu = 1 } }\n', "needs its distribution"),
    ('budgets = ["big"]\n', "budgets = ['big']: expected a list of positive numbers"),
    ('budgets = [-1e24]\n', "expected a list of positive numbers"),
    ('level = 1.5\n', "level = 1.5: expected a credible level"),
    ('years = [1990]\n', "year 1990 is before the efficiency trend's data"),
    ('years = ["2025"]\n', "expected a list of years"),
    ('hardware = "Z80"\n', "unknown hardware 'Z80'"),
    ('compare_laws = ["chinchilla", 3]\n', "compare_laws = ['chinchilla', 3]: expected a list of laws"),
    ('columns = { N = 3 }\n', "columns = {'N': 3}: expected a table of text values"),
    ('chains = 0\n', "chains = 0: expected a whole number ≥ 1"),
    ('pooling = "some"\n', "pooling = 'some': expected one of shared, partial, separate"),
    ('carbon_intensity = "lots"\n', "carbon intensity 'lots'"),
    ('figure_formats = ["pdf"]\n', "figure_formats = ['pdf']: expected a list of formats among png, pdf, svg, "
                                   "with png"),
    ('figure_formats = ["png", "gif"]\n', "expected a list of formats among png, pdf, svg"),
])
def test_report_configuration_is_checked_before_any_fit(tmp_path, capsys, text, message):
    config = write(tmp_path, "r.toml", text)
    start = time.perf_counter()
    code, _, err = run(capsys, "report", "--config", str(config), "--out", str(tmp_path / "rep"))
    assert code == 2 and message in err and "Traceback" not in err
    assert time.perf_counter() - start < 30  # no sampling happened
    assert not (tmp_path / "rep").exists()


def test_report_with_groups_asks_which_group_before_fitting(tmp_path, capsys):
    grouped = tmp_path / "grouped.csv"
    lines = SMALL.read_text().splitlines()
    grouped.write_text("\n".join([lines[0] + ",group"] + [f"{line},g{i % 2}" for i, line in enumerate(lines[1:])]))
    config = write(tmp_path, "r.toml", f'data = "{grouped.as_posix()}"\ncolumns = {{ N = "params_M", D = "tokens_B" }}\n'
                                       f'scale = {{ N = "M", D = "B" }}\n')
    code, _, err = run(capsys, "report", "--config", str(config), "--out", str(tmp_path / "rep"))
    assert code == 2 and "has groups (g0, g1); set group" in err
    assert not (tmp_path / "rep").exists()


def test_a_file_in_the_dataset_cache_path_is_named(tmp_path):
    from bayes_scaling.data.remote import RemoteDataError, fetch

    (tmp_path / "owner").write_text("not a folder")
    with pytest.raises(RemoteDataError, match=r"owner is a file where a folder is needed"):
        fetch("https://example.invalid/x.csv", "0" * 64, "owner/repo/x.csv", cache=tmp_path)


def test_validation_is_vectorized_for_many_bad_cells():
    n = 200_000
    frame = pd.DataFrame({"N": np.full(n, -1.0), "D": np.full(n, 2e9), "loss": np.full(n, 3.0)})
    with pytest.raises(InputError) as info:
        read_runs(frame)
    assert len(info.value.problems) == 1001  # the first 1000 cells one by one, then a count
    assert f"{n - 1000} more cells that are not positive finite numbers" in info.value.problems[-1].message


# ----------------------------------------------------------------------------- concurrency (slow)
@pytest.mark.slow
def test_two_processes_into_one_folder_never_mix_results(tmp_path):
    """The issue's race: two fits into one folder.  One writes, the other is refused; nothing mixes."""
    out = tmp_path / "race"
    env = {**os.environ, "MPLBACKEND": "Agg"}

    def start(seed):
        return subprocess.Popen([sys.executable, "-m", "bayes_scaling.cli", "fit", str(SMALL), *SMALL_OPTIONS,
                                 "--likelihood", "normal", "--draws", "100", "--tune", "200", "--chains", "2",
                                 "--seed", str(seed), "--discrepancy", "none", "--out", str(out)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = start(2)
    lock = tmp_path / ".race.lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), first.communicate()
    second = start(3)
    err2 = second.communicate(timeout=300)[1]
    out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 2 and "is being written by another bayes-scaling run" in err2
    from bayes_scaling import load_fit

    result = load_fit(out / "fit.nc")
    assert result.config["sampler"]["seed"] == 2
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert summary.loc["alpha", "mean"] == pytest.approx(float(result.draws("alpha").mean()), rel=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race"]


@pytest.mark.slow
def test_sigterm_during_report_keeps_the_previous_report_and_the_next_run_works(tmp_path):
    config = write(tmp_path, "r.toml", f'''
data = "{SMALL.as_posix()}"
columns = {{ N = "params_M", D = "tokens_B" }}
scale = {{ N = "M", D = "B" }}
likelihood = "normal"
compare_laws = ["chinchilla"]
budgets = [1e21, 1e22]
years = [2025]
target_losses = []
sensitivity = false
draws = 100
tune = 200
chains = 2
figure_formats = ["png"]
''')
    out = tmp_path / "rep"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "bayes_scaling.cli", "-q", "energy", "--flop", "1e24", "--draws", "200",
               "--out", str(out)]
    subprocess.run(command, env=env, check=True, capture_output=True)  # an earlier result in the folder
    before = tree(out)
    report = [sys.executable, "-m", "bayes_scaling.cli", "report", "--config", str(config), "--out", str(out),
              "--force"]
    proc = subprocess.Popen(report, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / f".rep.staging-{proc.pid}"
    deadline = time.monotonic() + 120
    while not (staging / "tables").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated: nothing was written" in err
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.toml", "rep"]
    done = subprocess.run(report, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "index.html").is_file() and not (out / "energy_budgets.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["command"].endswith(f"--out {out}")


def test_a_warning_is_printed_once_when_it_happens(capsys, monkeypatch):
    import warnings

    import bayes_scaling.cli as cli

    def warns_twice(args):
        for _ in range(2):
            warnings.warn("sampling problems: R-hat 1.3", UserWarning, stacklevel=1)
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
        return {"ok": True}

    parser = cli.build_parser()
    args = parser.parse_args(["datasets", "--json"])
    args.handler = warns_twice
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    code, out, err = run(capsys, "datasets")
    assert code == 0
    assert err.count("warning: sampling problems: R-hat 1.3") == 1 and "old API" not in err
    assert json.loads(out)["warnings"] == ["sampling problems: R-hat 1.3"]


def test_a_quoted_field_over_two_lines_does_not_shift_the_reported_line(tmp_path, capsys):
    path = write(tmp_path, "runs.csv", 'N,D,loss,note\n1e8,2e9,3.1,"a note\nover two lines"\n2e8,4e9,abc,plain\n')
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2 and "line 4, column 'loss': 'abc' is not a number" in err


def test_a_strict_c_locale_prints_escapes_instead_of_failing(tmp_path):
    """Under LC_ALL=C without UTF-8 mode the streams are ASCII: non-ASCII text (en dashes, "—") is
    written as escapes, and the command succeeds."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": ""}
    done = subprocess.run([sys.executable, "-m", "bayes_scaling.cli", "datasets"], capture_output=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode("ascii", "replace")
    assert b"warmup\\u2013stable" in done.stdout and b"Traceback" not in done.stderr


@pytest.mark.parametrize("dangling", [True, False])
def test_a_symlink_as_the_output_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch, dangling):
    """A link as --out (dangling, or to a folder) is refused at once; the link and its target stay."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / ("nowhere/x" if dangling else "real")
    if not dangling:
        target.mkdir()
    (tmp_path / "out").symlink_to(target)
    code, out, err = run(capsys, "fit", "chinchilla", "--out", "out", "--force")
    assert code == 2 and "is a symbolic link" in err and "Traceback" not in err
    assert (tmp_path / "out").is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out"] + ([] if dangling else ["real"]))


def test_a_245_character_output_name_is_written_and_replaced(tmp_path, capsys):
    """A valid long folder name works: the hidden lock, staging and replaced names beside it are cut
    and hashed to fit in a file name, and nothing hidden is left behind."""
    out = tmp_path / ("r" * 245)
    assert run(capsys, "energy", "--flop", "1e24", "--draws", "200", "--out", str(out))[0] == 0
    assert run(capsys, "energy", "--flop", "1e24", "--draws", "200", "--out", str(out), "--force")[0] == 0
    assert (out / "energy_budgets.csv").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("flag", ["compiledir", "base_compiledir"])
def test_a_compile_directory_that_is_a_file_is_named_before_any_work(tmp_path, flag):
    """PyTensor's compile directory where a file lies (or under one): exit 2 naming the folder and the
    way out, before any fit, no traceback and no "this is a bug"."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    env = {**os.environ, "PYTENSOR_FLAGS": f"{flag}={blocker}"}
    out = tmp_path / "fit"
    done = subprocess.run([sys.executable, "-m", "bayes_scaling.cli", "fit", str(SMALL), *SMALL_OPTIONS, "--out",
                           str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "compile directory cannot be used" in done.stderr and "PYTENSOR_FLAGS=base_compiledir" in done.stderr
    assert "Traceback" not in done.stderr and "bug" not in done.stderr
    assert "fitting" not in done.stderr and not out.exists()


# ----------------------------------------------------------------------------- long runs say they work
def test_a_long_sampling_without_a_terminal_logs_its_progress(tmp_path, capsys, monkeypatch):
    """A fit of a thousand groups sampled 165 s in silence where stderr was not a terminal: now nutpie's
    progress callback logs a line every PROGRESS_EVERY_S seconds (here every call)."""
    import bayes_scaling.sampling.nuts as nuts

    monkeypatch.setattr(nuts, "PROGRESS_EVERY_S", 0.0)
    code, _, err = run(capsys, "fit", str(SMALL), *SMALL_OPTIONS, "--draws", "200", "--tune", "200", "--chains", "2",
                       "--no-backtests", "--out", str(tmp_path / "fit"))
    assert code == 0, err
    assert "sampling: " in err and "% of the draws after" in err and "chains tuning" in err


# ----------------------------------------------------------------------------- a full disk
def _fit_small(capsys, out: Path, *extra: str):
    return run(capsys, "fit", str(SMALL), *SMALL_OPTIONS, "--draws", "100", "--tune", "100", "--chains", "2",
               "--no-backtests", "--out", str(out), *extra)


def test_a_full_disk_while_writing_is_exit_2_and_keeps_the_earlier_result(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fit"
    assert _fit_small(capsys, out)[0] == 0
    before = tree(out)
    real = Path.write_bytes

    def full(self, data):
        if self.suffix == ".nc":
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    code, _, err = _fit_small(capsys, out, "--force")
    assert code == 2, err
    assert f"cannot write the results to {out}: no space left on device; nothing was written" in err
    assert "Traceback" not in err and "bug" not in err
    assert tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


ROOT_ON_LINUX = pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                                   reason="mounting a tmpfs needs root on Linux")


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted at ``folder`` for the body (skips the test where it cannot be mounted)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=False,
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


@ROOT_ON_LINUX
def test_a_really_full_disk_during_force_is_no_crash(tmp_path):
    """On a 3 MB tmpfs filled up, `fit --force` failed inside HDF5 and then crashed (exit 139)."""
    with tmpfs(tmp_path / "disk", "size=3M") as disk:
        cmd = [sys.executable, "-m", "bayes_scaling.cli", "fit", str(SMALL), *SMALL_OPTIONS, "--draws", "100",
               "--tune", "100", "--chains", "2", "--no-backtests", "--out", str(disk / "out")]
        assert subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300).returncode == 0
        before = tree(disk / "out")
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # room for the lock, not for the fit
        done = subprocess.run(cmd + ["--force"], check=False, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert "no space left on device" in done.stderr and "Traceback" not in done.stderr
        assert tree(disk / "out") == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "out"]  # no staging folder, no lock left


@ROOT_ON_LINUX
def test_a_read_only_compile_directory_is_refused_before_any_work(tmp_path):
    """Root can write anywhere but on a read-only mount: the one unwritable compile directory a root test has."""
    with tmpfs(tmp_path / "ro", "size=1M,ro") as disk:
        env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={disk}"}
        done = subprocess.run([sys.executable, "-m", "bayes_scaling.cli", "fit", str(SMALL), *SMALL_OPTIONS,
                               "--out", str(tmp_path / "fit")], check=False, capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "compile directory cannot be used" in done.stderr and "base_compiledir=" in done.stderr
        assert "bug" not in done.stderr and not (tmp_path / "fit").exists()
