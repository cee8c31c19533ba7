"""Install bayes_scaling into a virtual environment made with a Python it supports (3.12 or 3.13).

    python3 install.py [VENV] [EXTRAS]

VENV defaults to ``.venv``; EXTRAS (e.g. ``test`` or ``test,docs``) are optional dependency
groups of pyproject.toml.  Any ``python3`` can run this file: when it is not 3.12 or 3.13 itself,
the script looks for one on PATH (``python3.13``, ``python3.12``) and under pyenv
(``$PYENV_ROOT/versions`` or ``~/.pyenv/versions``), makes the environment with it, and installs
the project there with that environment's pip.  Where there is none it says so in one sentence
and stops, before anything is written.
"""

import glob
import os
import shutil
import subprocess
import sys

SUPPORTED = ((3, 12), (3, 13))
#: Preferred first: the version CI tests (draws are reproducible bit for bit within one interpreter).
PREFERRED = (3, 12)
HERE = os.path.dirname(os.path.abspath(__file__))


def version_of(python):
    """(major, minor) of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def candidates():
    """Interpreters to try: this one, then on PATH, then pyenv's (newest patch release first)."""
    yield sys.executable
    for name in ("python3.12", "python3.13"):
        found = shutil.which(name)
        if found:
            yield found
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    found = glob.glob(os.path.join(root, "versions", "3.1[23]*", "bin", "python3"))

    def key(path):
        parts = os.path.basename(os.path.dirname(os.path.dirname(path))).split(".")
        return [int(p) if p.isdigit() else -1 for p in parts]

    yield from sorted(found, key=key, reverse=True)


def find_python():
    """A supported interpreter, the preferred version where there is one."""
    found = [(python, version_of(python)) for python in candidates()]
    supported = [(python, v) for python, v in found if v in SUPPORTED]
    supported.sort(key=lambda pv: pv[1] != PREFERRED)  # stable: keeps the order of candidates() otherwise
    return supported[0][0] if supported else None


def main(argv):
    venv = argv[1] if len(argv) > 1 else ".venv"
    extras = argv[2] if len(argv) > 2 else ""
    python = find_python()
    if python is None:
        here = "%d.%d" % sys.version_info[:2]
        sys.stderr.write("bayes_scaling needs Python 3.12 or 3.13 (this python3 is %s and none was found on PATH "
                         "or under pyenv): install one, e.g. `pyenv install 3.12`, and run this command again.\n"
                         % here)
        return 1
    print("install.py: making %s with %s (Python %d.%d)" % ((venv, python) + version_of(python)), flush=True)
    subprocess.run([python, "-m", "venv", venv], check=True)
    pip = os.path.join(venv, "bin", "pip")
    target = HERE + ("[%s]" % extras if extras else "")
    subprocess.run([pip, "install", target], check=True)
    print("install.py: done; run %s --help" % os.path.join(venv, "bin", "bayes-scaling"), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except subprocess.CalledProcessError as exc:
        sys.stderr.write("install.py: %s failed with exit code %d\n" % (" ".join(exc.cmd), exc.returncode))
        sys.exit(exc.returncode or 1)
