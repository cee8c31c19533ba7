"""install.py, README command 1's first step: with no supported Python it stops at once with one
sentence, before anything is written; with one it is found wherever a new user has it."""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _old_python() -> str | None:
    """An interpreter older than 3.12 on this machine (what ``python3`` is on a fresh one), if any."""
    for candidate in ["/usr/bin/python3", *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[01]*/bin/python3")))]:
        if os.path.exists(candidate):
            out = subprocess.run([candidate, "-c", "import sys; print(sys.version_info < (3, 12))"],
                                 capture_output=True, text=True)
            if out.stdout.strip() == "True":
                return candidate
    return None


def test_without_a_supported_python_it_says_what_to_install_in_one_sentence(tmp_path):
    python = _old_python()
    if python is None:
        pytest.skip("no Python older than 3.12 on this machine to play a fresh machine's python3")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "no-pyenv")}
    done = subprocess.run([python, str(ROOT / "install.py"), str(tmp_path / "venv")], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Python 3.12 or 3.13" in lines[0] and "pyenv install 3.12" in lines[0]
    assert not (tmp_path / "venv").exists()


def test_it_finds_a_supported_python_under_pyenv(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("install_script", ROOT / "install.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fake = tmp_path / "pyenv" / "versions" / "3.12.9" / "bin"
    fake.mkdir(parents=True)
    (fake / "python3").symlink_to(sys.executable)  # a supported interpreter at pyenv's place
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(script.sys, "executable", "/nonexistent/python3")
    assert script.find_python() == str(fake / "python3")
