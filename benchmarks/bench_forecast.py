"""Benchmark: evaluating the Chinchilla law at 10,000 (N, D) points × 4,000 posterior draws.

    python benchmarks/bench_forecast.py [--repeats 7]

Uses ``Forecaster.loss`` (the law's terms summed in numpy, in blocks over threads) on
posterior draws from a real fit, and prints the median wall time over repeats, the peak
memory the evaluation allocates (tracemalloc), and, as a baseline measured in the same
run, the straightforward evaluation: exp of the law's log loss over the full
(draws × points) arrays in one single-threaded numpy expression.  Target: ≤ 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np

POINTS, DRAWS = 10_000, 4_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    from bayes_scaling.fitting import fit
    from bayes_scaling.forecast.forecaster import Forecaster
    from bayes_scaling.laws.ops import NUMPY

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit("chinchilla", law="chinchilla", likelihood="student-t", draws=1000, tune=1000, chains=4, seed=0)
    fc = Forecaster(result)
    assert fc.n_draws == DRAWS, fc.n_draws
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(8, 12, POINTS)
    d = 10 ** rng.uniform(9, 14, POINTS)

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        loss = fc.loss(N=n, D=d)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fc.loss(N=n, D=d)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    def unblocked():
        x = {"N": np.log(n)[None, :], "D": np.log(d)[None, :]}
        return np.exp(fc.law.log_loss(NUMPY, x, {k: v[:, None] for k, v in fc.params.items()}))

    base_times = []
    for _ in range(max(3, args.repeats // 2)):
        start = time.perf_counter()
        ref = unblocked()
        base_times.append(time.perf_counter() - start)
    tracemalloc.start()
    unblocked()
    _, base_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_allclose(ref, loss, rtol=1e-12)  # exp(log-sum-exp) vs sum of exp: same terms

    med, base = statistics.median(times), statistics.median(base_times)
    print(f"{POINTS:,} points x {DRAWS:,} draws = {POINTS * DRAWS:.1e} law evaluations")
    print(f"Forecaster.loss: median {med:.3f} s over {args.repeats} runs (min {min(times):.3f}, max {max(times):.3f}); "
          f"peak memory {peak / 2**20:.0f} MiB (the {loss.nbytes / 2**20:.0f} MiB result included)")
    print(f"baseline (one unblocked single-threaded numpy expression): median {base:.3f} s; "
          f"peak memory {base_peak / 2**20:.0f} MiB")
    print(f"speed-up {base / med:.2f}x; target <= 1 s: {'met' if med <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
