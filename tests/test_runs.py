"""Run tables: reading, column mapping, units, derivation and every kind of bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import DataWarning, InputError, RunTableError, read_runs
from bayes_scaling.data.runs import parse_scale

DATA = Path(__file__).parent / "data"
SMALL = DATA / "runs_small.csv"


def write(tmp_path: Path, text: str, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "N,D,loss\n1e8,2e9,3.5\n4e8,8e9,3.0\n1.6e9,3.2e10,2.6\n"


# --------------------------------------------------------------------------- reading
def test_reads_user_units_and_derives_compute():
    runs = read_runs(SMALL, columns={"N": "params_M", "D": "tokens_B"}, scale={"N": "M", "D": 1e9})
    assert len(runs) == 12
    assert runs.N[0] == pytest.approx(70e6)
    assert runs.D[0] == pytest.approx(0.35e9)
    # C derived exactly as 6·N·D, and the derivation recorded.
    np.testing.assert_allclose(runs.C, 6 * runs.N * runs.D, rtol=1e-15)
    assert runs.derived == {"C": "6*N*D"}
    assert runs.column_map["loss"] == "final loss"
    assert list(runs.data.columns[:4]) == ["N", "D", "C", "loss"]
    assert "model" in runs.data.columns  # metadata kept


def test_derives_tokens_from_compute():
    frame = pd.DataFrame({"Model Size": [1e8, 1e9], "Training FLOP": [6e18, 1.2e20], "loss": [3.2, 2.8]})
    runs = read_runs(frame)
    np.testing.assert_allclose(runs.D, [1e10, 2e10])
    assert runs.derived == {"D": "C/(6*N)"}
    assert runs.column_map == {"N": "Model Size", "D": "D", "C": "Training FLOP", "loss": "loss"}


def test_dataframe_input_is_not_modified():
    frame = pd.DataFrame({"params": [1e8, 1e9], "tokens": [2e9, 2e10], "loss": [3.2, 2.8], "tag": ["a", "b"]})
    before = frame.copy(deep=True)
    runs = read_runs(frame, scale={"N": 1.0})
    pd.testing.assert_frame_equal(frame, before)
    runs.data.loc[0, "N"] = -1.0  # the table holds its own copy
    pd.testing.assert_frame_equal(frame, before)


def test_file_is_not_modified(tmp_path):
    path = write(tmp_path, GOOD)
    before = path.read_bytes()
    read_runs(path)
    assert path.read_bytes() == before


def test_groups_and_fingerprint():
    frame = pd.DataFrame({"N": [1e8, 1e9, 1e8], "D": [2e9, 2e10, 2e9], "loss": [3.2, 2.8, 3.3],
                          "group": ["a", "a", "b"]})
    runs = read_runs(frame)
    assert runs.groups == ["a", "b"]
    assert runs.describe()["groups"] == {"a": 2, "b": 1}
    same = read_runs(frame.assign(note="metadata does not change the fingerprint"))
    assert same.fingerprint() == runs.fingerprint()
    other = read_runs(frame.assign(loss=[3.2, 2.8, 3.31]))
    assert other.fingerprint() != runs.fingerprint()


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10], "loss": [3.2, 2.8]})
    path = tmp_path / "runs.parquet"
    frame.to_parquet(path)
    assert read_runs(path).fingerprint() == read_runs(frame).fingerprint()


def test_tsv_and_explicit_separator(tmp_path):
    tsv = write(tmp_path, GOOD.replace(",", "\t"), "runs.tsv")
    semi = write(tmp_path, GOOD.replace(",", ";"), "runs_semi.csv")
    assert read_runs(tsv).fingerprint() == read_runs(semi, sep=";").fingerprint()


def test_blank_lines_are_ignored_but_line_numbers_kept(tmp_path):
    path = write(tmp_path, "N,D,loss\n1e8,2e9,3.5\n\n4e8,oops,3.0\n\n")
    with pytest.raises(RunTableError, match=r"line 4, column 'D': 'oops' is not a number"):
        read_runs(path)


def test_duplicates_drop_keeps_first(tmp_path):
    path = write(tmp_path, GOOD + "1e8,2e9,3.5\n")
    assert len(read_runs(path, duplicates="drop")) == 3
    assert len(read_runs(path, duplicates="keep")) == 4


def test_replicates_with_different_losses_are_not_duplicates():
    frame = pd.DataFrame({"N": [1e8, 1e8], "D": [2e9, 2e9], "loss": [3.2, 3.21]})
    assert len(read_runs(frame)) == 2


def test_parse_scale():
    assert parse_scale("M") == 1e6
    assert parse_scale("1e9") == 1e9
    assert parse_scale(1000) == 1000.0
    with pytest.raises(InputError, match="neither a number nor one of"):
        parse_scale("mega")
    with pytest.raises(InputError, match="positive finite"):
        parse_scale("-1")


# --------------------------------------------------------------------------- bad input
# Each case: file contents (or None for a missing file), read_runs options, and a regex
# that the error message must match.  The messages name the file, line and column.
BAD_FILES = {
    "missing file": (None, {}, r"nope\.csv: file not found"),
    "empty file": ("", {}, r"runs\.csv: the file is empty"),
    "header only": ("N,D,loss\n", {}, r"runs\.csv: no runs \(the table has a header but no data rows\)"),
    "wrong delimiter": (GOOD.replace(",", ";"), {},
                        r"single column 'N;D;loss'.*looks ';'-separated.*Pass sep=';'"),
    "missing loss": ("N,D\n1e8,2e9\n", {}, r"missing required column\(s\) loss \(found 'N', 'D'\)"),
    "only one of N, D, C": ("N,loss\n1e8,3.0\n", {}, r"missing required column\(s\) D, C"),
    "non-numeric text": ("N,D,loss\n1e8,2e9,3.5\n4e8,8e9,abc\n", {},
                         r"line 3, column 'loss': 'abc' is not a number"),
    "thousands separators": ('N,D,loss\n"100,000,000",2e9,3.5\n', {},
                             r"line 2, column 'N': '100,000,000' is not a number"),
    "empty cell": ("N,D,loss\n1e8,,3.5\n", {}, r"line 2, column 'D': missing value"),
    "NaN": ("N,D,loss\n1e8,2e9,NaN\n", {}, r"line 2, column 'loss': missing value \(empty or NaN\)"),
    "inf": ("N,D,loss\ninf,2e9,3.5\n", {}, r"line 2, column 'N': 'inf' is infinite"),
    "zero N": ("N,D,loss\n0,2e9,3.5\n", {}, r"line 2, column 'N': 0 is not positive"),
    "negative loss": ("N,D,loss\n1e8,2e9,-3.5\n", {}, r"line 2, column 'loss': -3.5 is not positive"),
    "negative compute": ("N,C,loss\n1e8,-6e18,3.5\n", {}, r"line 2, column 'C': -6e\+18 is not positive"),
    "duplicated run": (GOOD + "1e8,2e9,3.5\n", {},
                       r"line 5: duplicates the run on line 2 \(same N, D, C, loss\)"),
    "too few runs": (GOOD, {"min_runs": 5}, r"only 3 runs; at least 5 are needed"),
    "extra field": ("N,D,loss\n1e8,2e9,3.5,7\n", {}, r"rows do not match the header \(line 2 has 4 fields, the header has 3\)"),
    "missing field": ("N,D,loss\n1e8,2e9,3.5\n1e9,2e10\n", {}, r"line 3 has 2 fields, the header has 3"),
    "unknown file type": (GOOD, {"_name": "runs.xlsx"}, r"runs\.xlsx: unknown file type '\.xlsx'"),
    "mapping to absent column": (GOOD, {"columns": {"N": "params"}},
                                 r"the column mapping names 'params' for N, but the table has no such column"),
    "ambiguous columns": ("params,n_params,D,loss\n1e8,1e8,2e9,3.5\n", {},
                          r"several columns could be N: 'params', 'n_params'.*--map N=NAME"),
    "unknown mapping key": (GOOD, {"columns": {"tokens": "D"}}, r"unknown canonical column 'tokens'"),
    "missing group label": ("N,D,loss,group\n1e8,2e9,3.5,a\n4e8,8e9,3.0,\n", {},
                            r"line 3, column 'group': missing group label"),
    "unique tokens above D": ("N,D,loss,unique_tokens\n1e8,2e9,3.5,4e9\n", {},
                              r"line 2, column 'unique_tokens': unique tokens 4e\+09 exceed training tokens"),
    "bad scale": (GOOD, {"scale": {"N": "lots"}}, r"unit scale 'lots' is neither a number"),
    "scale on unknown column": (GOOD, {"scale": {"flops": 2}}, r"unit scale given for 'flops'"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_is_a_clear_error(tmp_path, case):
    text, options, pattern = BAD_FILES[case]
    options = dict(options)
    name = options.pop("_name", "runs.csv")
    path = tmp_path / "nope.csv" if text is None else write(tmp_path, text, name)
    with pytest.raises(InputError) as info:
        read_runs(path, **options)
    message = str(info.value)
    assert re.search(pattern, message, flags=re.S), message
    assert str(path.name) in message or "unit scale" in message or "unknown canonical" in message


def test_every_problem_is_listed_at_once(tmp_path):
    path = write(tmp_path, "N,D,loss\nx,2e9,3.5\n4e8,-1,3.0\n1e9,1e10,\n")
    with pytest.raises(RunTableError) as info:
        read_runs(path)
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value)
    rows = sorted(p.row for p in info.value.problems)
    assert rows == [0, 1, 2]


def test_long_problem_lists_are_cut(tmp_path):
    path = write(tmp_path, "N,D,loss\n" + "x,2e9,3.5\n" * 30)
    with pytest.raises(RunTableError, match=r"(?s)30 problems.*\.\.\. and 10 more"):
        read_runs(path)


def test_dataframe_errors_name_positions_not_lines():
    frame = pd.DataFrame({"N": [1e8, -1.0], "D": [2e9, 2e9], "loss": [3.0, 3.0]}, index=[10, 20])
    with pytest.raises(RunTableError, match=r"DataFrame: 1 problem:\n  row 1, column 'N'"):
        read_runs(frame)


def test_loss_that_looks_like_perplexity_warns(tmp_path):
    path = write(tmp_path, "N,D,loss\n1e8,2e9,33.1\n4e8,8e9,3.0\n")
    with pytest.warns(DataWarning, match=r"do not look like a loss.*line 2.*perplexity"):
        read_runs(path)


def test_compute_inconsistent_with_6nd_warns(tmp_path):
    # C given in PF-days-like units: far from 6·N·D.
    path = write(tmp_path, "N,D,C,loss\n1e8,2e9,1.2e15,3.5\n")
    with pytest.warns(DataWarning, match=r"C differs from 6·N·D.*line 2"):
        read_runs(path)


def test_good_table_gives_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_runs(write(tmp_path, GOOD))


def test_real_duplicates_in_published_data_are_caught(shared_data):
    """The (Mis)Fitting final-checkpoint file repeats 21 runs bit for bit under other learning rates."""
    path = shared_data / "remote/hadasah/scaling_laws/1f3708c/scaling_results_last_ckpt_only.csv"
    with pytest.raises(RunTableError, match=r"21 problems"):
        read_runs(path)
    assert len(read_runs(path, duplicates="drop")) == 261 - 21
