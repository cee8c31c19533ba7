"""Energy outlook: training energy of frontier-scale runs to 2030, with intervals.

    python analyses/02_energy_outlook.py [--out DIR] [--force]

Frontier training compute is taken to grow 4–5× per year (90% interval) from Llama 3.1
405B's 3.8e25 FLOP in 2024; each year's run is trained on new hardware of that year (the
fitted efficiency trend, with chip scatter), in BF16 and FP8.  Writes the yearly energy
and emissions (carbon intensity 0.4 ± 0.1 kg/kWh) and a figure.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import output_folder  # noqa: E402

from bayes_scaling.energy.training import JOULES_PER_MWH, Carbon, EnergyModel
from bayes_scaling.io.tables import write_table
from bayes_scaling.plots.style import COLORS, save_figure, style

out, args = output_folder("02_energy_outlook", __doc__.splitlines()[0])
model = EnergyModel.fit(draws=4000, seed=0)
rng = np.random.default_rng(0)
growth = np.exp(rng.normal(math.log(math.sqrt(20)), math.log(5 / 4) / (2 * 1.645), model.draws))
carbon = Carbon(0.4, 0.1)
rows = []
for year in range(2024, 2031):
    flop = 3.8e25 * growth ** (year - 2024)
    for precision in ("bf16", "fp8"):
        # The run's size (which sets its utilization) is drawn from its typical compute.
        per_flop = model.joules_per_flop(year=year, precision=precision, salt=year, flop=float(np.median(flop)))
        mwh = per_flop * flop / JOULES_PER_MWH
        tco2 = carbon.tonnes(mwh[:, None], rng)[:, 0]
        q = lambda x: np.quantile(x, [0.5, 0.05, 0.95])  # noqa: E731
        f, e, c = q(flop), q(mwh), q(tco2)
        rows.append({"year": year, "precision": precision, "flop": f[0], "flop_lower": f[1], "flop_upper": f[2],
                     "energy_mwh": e[0], "energy_mwh_lower": e[1], "energy_mwh_upper": e[2],
                     "tco2e": c[0], "tco2e_lower": c[1], "tco2e_upper": c[2]})
table = pd.DataFrame(rows)
write_table(table, out / "frontier_energy", index=False,
            caption="Training energy of a frontier run per year (medians, 90% intervals)")
with style():
    fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    for precision, color in (("bf16", COLORS["fit"]), ("fp8", COLORS["data"])):
        part = table[table["precision"] == precision]
        ax.fill_between(part["year"], part["energy_mwh_lower"], part["energy_mwh_upper"], color=color, alpha=0.2)
        ax.plot(part["year"], part["energy_mwh"], marker="o", color=color, label=f"{precision.upper()} (median, 90%)")
    ax.set_yscale("log")
    ax.set_xlabel("year of the training run")
    ax.set_ylabel("training energy (MWh, incl. PUE)")
    ax.set_title("Frontier training energy: compute ×4–5/yr on each year's new hardware")
    ax.legend(frameon=False)
    save_figure(fig, out / "frontier_energy")
print(table[["year", "precision", "flop", "energy_mwh", "energy_mwh_lower", "energy_mwh_upper"]].to_string(index=False))
print(f"wrote {out}")
