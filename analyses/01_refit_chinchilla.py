"""Re-fit the Chinchilla runs and compare the posterior with Hoffmann et al.'s Approach 3.

    python analyses/01_refit_chinchilla.py [--out DIR] [--force]

Fits L = E + A/N^α + B/D^β to the digitized runs with the Student-t, Huber and normal
likelihoods and writes, per likelihood, the posterior median and 95% interval of each
parameter next to the published point estimate (tables/), and the marginal posteriors
with the published values marked (figures/).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import output_folder  # noqa: E402

import bayes_scaling as bs  # noqa: E402
from bayes_scaling.io.tables import write_table
from bayes_scaling.model.spec import literature_values
from bayes_scaling.plots.style import save_figure, style

out, args = output_folder("01_refit_chinchilla", __doc__.splitlines()[0])
published = literature_values(bs.get_law("chinchilla"))
rows, fits = [], {}
for likelihood in ("student-t", "huber", "normal"):
    fit = bs.fit("chinchilla", law="chinchilla", likelihood=likelihood, draws=args.draws, seed=0)
    fits[likelihood] = fit
    for name in ("E", "A", "B", "alpha", "beta"):
        d = fit.draws(name)
        lo, med, hi = np.quantile(d, [0.025, 0.5, 0.975])
        rows.append({"likelihood": likelihood, "parameter": name, "median": med, "q2.5": lo, "q97.5": hi,
                     "hoffmann_approach3": published[name], "published_inside_95": bool(lo <= published[name] <= hi)})
table = pd.DataFrame(rows)
write_table(table, out / "posterior_vs_hoffmann", index=False,
            caption="Posterior of the Chinchilla law on the digitized runs against Hoffmann et al. (2022), Approach 3")
with style():
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6), layout="constrained")
    for ax, name in zip(axes, ("E", "A", "B", "alpha", "beta"), strict=True):
        log_scale = name in ("A", "B")  # amplitudes span orders of magnitude across likelihoods
        for likelihood, fit in fits.items():
            values = np.log10(fit.draws(name)) if log_scale else fit.draws(name)
            ax.hist(values, bins=60, histtype="step", density=True, label=likelihood)
        ax.axvline(np.log10(published[name]) if log_scale else published[name], color="k", linestyle="--",
                   label="Hoffmann et al. (Approach 3)")
        ax.set_xlabel(f"log10 {name}" if log_scale else name)
        ax.set_yticks([])
    axes[0].set_ylabel("posterior density")
    axes[-1].legend(frameon=False, fontsize=7)
    fig.suptitle("Chinchilla law on the digitized runs: posterior vs the published point estimate")
    save_figure(fig, out / "posterior_vs_hoffmann")
print(table.to_string(index=False))
print(f"wrote {out}")
