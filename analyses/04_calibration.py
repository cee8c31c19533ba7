"""Calibration of forecasts beyond the data: coverage against nominal level and against distance.

    BAYES_SCALING_DATA_DIR=../shared/data/remote python analyses/04_calibration.py [--out DIR] [--force]

Leave one dataset out (chinchilla, epoch-chinchilla, misfitting-final, gadre-c4, gadre-rpj,
gadre-rw, gemstones): the structural-error population is learned from the other datasets'
back-tests, then the Chinchilla law (Student-t) is fitted below rolling compute cuts and its
forecasts of the runs above are scored: the law alone (``none``), the default (``shared``: fitted
near the frontier, the population's shared drift, its sizes rescaled by back-tests inside the
training runs) and the default before it (``scaled``: every run, the drift's sign mirrored).
``--scores`` draws from the per-run scores ``benchmarks/bench_calibration.py`` wrote instead of
computing them again.
Writes the per-run scores, the coverage
tables (CSV, Markdown, LaTeX) and three figures: coverage against nominal level per dataset,
and coverage of the 90% interval against decades beyond the data, pooled and per dataset.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from _common import output_folder  # noqa: E402

from bayes_scaling import load_dataset
from bayes_scaling.calibration.candidates import DEFAULT, LAW_ONLY, PREVIOUS_DEFAULT, score_candidates, with_modes
from bayes_scaling.calibration.evaluate import by_distance, coverage_table
from bayes_scaling.io.tables import write_table
from bayes_scaling.plots.calibration import (
    plot_coverage,
    plot_coverage_by_distance,
    plot_coverage_by_distance_per_dataset,
)
from bayes_scaling.plots.style import save_figure, style

DATASETS = ("chinchilla", "epoch-chinchilla", "misfitting-final", "gadre-c4", "gadre-rpj", "gadre-rw", "gemstones")

out, args = output_folder("04_calibration", __doc__.splitlines()[0], extra=lambda p: p.add_argument(
    "--scores", help="per-run scores written by benchmarks/bench_calibration.py (its real datasets are drawn)"))
if args.scores:
    scored = pd.read_csv(args.scores)
    scored = scored[scored["kind"] == "real"] if "kind" in scored.columns else scored
    scored = with_modes(scored if "candidate" in scored.columns else scored.rename(columns={"mode": "candidate"}))
else:
    settings = {"draws": min(args.draws, 500), "tune": 1000, "chains": 4, "seed": 0}
    scored = with_modes(score_candidates({name: load_dataset(name) for name in DATASETS},
                                         candidates=(LAW_ONLY, PREVIOUS_DEFAULT, DEFAULT), settings=settings,
                                         copies={"epoch-chinchilla": "chinchilla"}, progress=print))
scored.to_csv(out / "scores.csv", index=False)
write_table(coverage_table(scored).reset_index(), out / "coverage_by_dataset", index=False,
            caption="Coverage of forecasts of held-out runs, leave one dataset out")
write_table(coverage_table(scored, by=("mode",)).reset_index(), out / "coverage_pooled", index=False,
            caption="Coverage pooled over datasets")
write_table(by_distance(scored).reset_index(), out / "coverage_by_distance", index=False,
            caption="Coverage by decades beyond the training data")
with style():
    for name, make in (("coverage", plot_coverage), ("coverage_by_distance", plot_coverage_by_distance),
                       ("coverage_by_distance_per_dataset", plot_coverage_by_distance_per_dataset)):
        fig = make(scored)
        save_figure(fig, out / name)
        plt.close(fig)
print(coverage_table(scored).round(3).to_string())
print(f"wrote {out}")
