"""Shared fixtures.

Tests that need the development data in ``../shared/data`` (present in CI, never
committed) use the ``shared_data`` fixture and are skipped where it is absent — except in
CI (``CI=true``), where its absence is a failure.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def _compile_directory_per_worker() -> None:
    """Under pytest-xdist, each worker compiles into a folder of its own: PyTensor's compile
    directory is not safe to share between processes compiling at once (pymc-devs/pymc#7819).
    Set before PyTensor is imported; test subprocesses inherit it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or "pytensor" in sys.modules:
        return
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f.strip()]
    given = [f.split("=", 1)[1] for f in flags if f.strip().startswith("base_compiledir=")]
    base = given[-1] if given else str(Path.home() / ".pytensor")  # PyTensor reads the last one
    flags = [f for f in flags if not f.strip().startswith("base_compiledir=")]
    os.environ["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={Path(base) / f'xdist-{worker}'}"])


_compile_directory_per_worker()
# Every test process starts with a cold compile directory, and a cold compile in a child process
# (what makes a user's first fit draw what later ones do) cost the suite about a minute on 2 cores.
# Tests compile in their own process, except tests/test_compiled.py, which tests the child compile.
os.environ.setdefault("BAYES_SCALING_COMPILE_IN_CHILD", "0")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BAYES_SCALING_SHARED", REPO.parent / "shared")) / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must have the development data at {SHARED_DATA}")
        pytest.skip(f"development data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _fit_cache_in_a_temporary_folder(tmp_path_factory):
    """Reports cache fits in the user cache directory; tests keep theirs to themselves."""
    os.environ["BAYES_SCALING_FIT_CACHE"] = str(tmp_path_factory.mktemp("fit-cache"))
