"""Benchmark: compile once, fit many (issue 12's figures), against the centred PyMC reference in the same run.

    python benchmarks/bench_speed.py [--repeats 3] [--skip-backtest] [--test-suite]

Prints, as medians over ``--repeats``:

1. ``bayes-scaling fit chinchilla`` in a fresh process (what a command-line user pays), after a
   first run has filled the caches (compiled code; the back-tests' errors, in a fit cache of
   the benchmark's own): as a user types it (the default structural error, its back-tests
   loaded from the cache); with the back-tests refitted (``--no-cache``, as for new runs);
   with PNG figures; with ``--discrepancy none``; and with ``--no-backtests`` (the fit alone);
2. a second ``bs.fit`` of the chinchilla runs in one process (the compiled model reused),
   law alone and default, with its minimum bulk ESS over E, A, B, α, β;
3. ``bayes-scaling compare chinchilla --backtest`` (one run, with an empty fit cache of its own);
4. the references, as a PyMC user writes them: the same law in a script run in a fresh process
   (imports and compile included) with ``pm.sample()``'s defaults (nutpie, in PyMC 6) and with
   ``nuts_sampler="pymc"``, ``--repeats`` times each — and every ratio against both;
   the first row of 1. is a fit of runs not fitted before (a new seed each time);
5. with ``--test-suite``, the whole test suite as CI runs it, from an empty PyTensor compile
   directory (every model compiled anew), one run (4-7 minutes more).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_fit import min_ess  # noqa: E402

from bayes_scaling.posterior.structural import DISCREPANCIES

CLI = [sys.executable, "-m", "bayes_scaling.cli"]
DEFAULT = DISCREPANCIES[0]  # fit()'s default structural error


def timed_command(args: list[str], **env: str) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "MPLBACKEND": "Agg", **env})
    return time.perf_counter() - start


def cli_fit(discrepancy: str, folder: Path, *extra: str) -> float:
    out = folder / f"fit-{discrepancy}-{time.monotonic_ns()}"
    return timed_command([*CLI, "-q", "fit", "chinchilla", "--out", str(out), "--discrepancy", discrepancy, *extra],
                         BAYES_SCALING_FIT_CACHE=str(folder / "fit-cache"))


#: The Chinchilla law as a PyMC user writes it, run as a script: imports, model, ``pm.sample()`` with its
#: defaults (PyMC 6 hands it to nutpie where nutpie is installed; ``{sampler}`` adds ``nuts_sampler=``).
USER_SCRIPT = """
import numpy as np, pandas as pd, pymc as pm, pytensor.tensor as pt
runs = pd.read_csv({csv!r})
log_n, log_d, y = np.log(runs["N"]), np.log(runs["C"] / (6 * runs["N"])), np.log(runs["loss"])
with pm.Model():
    E = pm.LogNormal("E", mu=np.log(0.6 * runs["loss"].min()), sigma=0.5)
    A = pm.LogNormal("A", mu=np.log(100.0), sigma=3.0)
    B = pm.LogNormal("B", mu=np.log(100.0), sigma=3.0)
    alpha = pm.LogNormal("alpha", mu=np.log(0.3), sigma=1.0)
    beta = pm.LogNormal("beta", mu=np.log(0.3), sigma=1.0)
    mu = pt.logaddexp(pt.logaddexp(pt.log(E), pt.log(A) - alpha * log_n), pt.log(B) - beta * log_d)
    pm.StudentT("log_loss", nu=pm.Gamma("nu", 2.0, 0.1), mu=mu, sigma=pm.HalfNormal("sigma", 0.1), observed=y)
    idata = pm.sample(random_seed={seed}, progressbar=False{sampler})
"""


def user_reference(folder: Path, seed: int, sampler: str | None) -> float:
    """Wall time of :data:`USER_SCRIPT` in a fresh process (imports and compile included)."""
    from bayes_scaling._paths import data_dir

    script = folder / f"user_{sampler or 'default'}_{seed}.py"
    script.write_text(USER_SCRIPT.format(csv=str(data_dir() / "chinchilla.csv"), seed=seed,
                                         sampler="" if sampler is None else f", nuts_sampler={sampler!r}"))
    return timed_command([sys.executable, str(script)])


def test_suite(folder: Path) -> tuple[float, str]:
    """Wall time and pytest's summary line of the whole suite, compile directory and fit cache empty."""
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
             if f.strip() and not f.strip().startswith("base_compiledir=")]
    flags = ",".join([*flags, f"base_compiledir={folder / 'compiledir'}"])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=HERE.parent,
                          capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", "PYTENSOR_FLAGS": flags,
                               "BAYES_SCALING_FIT_CACHE": str(folder / "suite-fit-cache")})
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if " in " in line and ("passed" in line or "failed" in line)]
    return wall, (lines[-1].strip("= ") if lines else f"pytest exited {done.returncode}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--test-suite", action="store_true",
                        help="also time the whole test suite from an empty compile directory")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import bayes_scaling as bs

    folder = Path(tempfile.mkdtemp(prefix="bench_speed_"))
    try:
        cli_fit(DEFAULT, folder)  # the first-ever run: fills the on-disk caches (numba, PyTensor, back-tests)
        # runs not fitted before: a new seed each time (the back-tests refitted too, as for new data)
        rows = {"CLI fit chinchilla --seed K, a new seed each run (back-tests included)": [
            timed_command([*CLI, "-q", "fit", "chinchilla", "--seed", str(100 + k), "--out",
                           str(folder / f"new-seed-{k}")], BAYES_SCALING_FIT_CACHE=str(folder / "fit-cache"))
            for k in range(args.repeats)]}
        variants = {
            "CLI fit chinchilla, fresh process (default; back-tests from the cache)": (DEFAULT,),
            "CLI fit, back-tests refitted (--no-cache)": (DEFAULT, "--no-cache"),
            "CLI fit, with PNG figures (--figures png)": (DEFAULT, "--figures", "png"),
            "CLI fit, --discrepancy none": ("none",),
            "CLI fit, --no-backtests (the fit alone)": (DEFAULT, "--no-backtests"),
        }
        rows |= {label: [cli_fit(variant[0], folder, *variant[1:]) for _ in range(args.repeats)]
                 for label, variant in variants.items()}
        bs.fit("chinchilla", seed=0, discrepancy="none")  # compile in this process
        ess = []
        for mode in ("none", DEFAULT):
            walls = []
            for seed in range(1, args.repeats + 1):
                start = time.perf_counter()
                result = bs.fit("chinchilla", seed=seed, discrepancy=mode)
                walls.append(time.perf_counter() - start)
                ess.append(min_ess(result.idata))
            rows[f"second bs.fit in one process, discrepancy={mode}"] = walls
        if not args.skip_backtest:
            # An empty fit cache of its own: the user's cache may already hold these fits.
            rows["CLI compare chinchilla --backtest"] = [timed_command(
                [*CLI, "-q", "compare", "chinchilla", "--backtest", "--out", str(folder / "compare"),
                 "--cache", str(folder / "compare-fit-cache")])]
        references = {"pm.sample() defaults": [user_reference(folder, 10 + k, None) for k in range(args.repeats)],
                      'pm.sample(nuts_sampler="pymc")': [user_reference(folder, 20 + k, "pymc")
                                                         for k in range(args.repeats)]}
        for name, walls in references.items():
            print(f"reference, a user's script with {name} (fresh process, imports and compile included): median "
                  f"{statistics.median(walls):.1f} s over {len(walls)} ({', '.join(f'{w:.1f}' for w in walls)})")
        user = {name: statistics.median(walls) for name, walls in references.items()}
        for label, walls in rows.items():
            med = statistics.median(walls)
            print(f"{label}: median {med:.2f} s over {len(walls)} ({', '.join(f'{w:.2f}' for w in walls)}); "
                  + ", ".join(f"{name} / this = {ref / med:.1f}x" for name, ref in user.items()))
        print(f"min ESS_bulk of the in-process fits: {min(ess):.0f} (median {statistics.median(ess):.0f})")
        if args.test_suite:
            wall, summary = test_suite(folder)
            print(f"test suite, empty compile directory: {wall / 60:.1f} min ({summary})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
