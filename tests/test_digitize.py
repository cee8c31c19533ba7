"""The Chinchilla digitizer and the SVG-reading helpers it is built from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bayes_scaling import InputError
from bayes_scaling.data.datasets import load_dataset

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "datasets" / "build"))  # the digitizer's SVG reader lives beside it
from svgplot import AxisScale, Colorbar, SvgFigure, is_power_of_ten, parse_label_value  # noqa: E402


def _digitizer():
    spec = importlib.util.spec_from_file_location("chinchilla_fig4", REPO / "datasets/build/chinchilla_fig4.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digitized(shared_data):
    return _digitizer().digitize(shared_data / "chinchilla_figure_4.svg")


@pytest.fixture(scope="module")
def matched(digitized, shared_data):
    """Our runs next to the other team's extraction, matched by marker position."""
    runs, _ = digitized
    theirs = pd.read_csv(shared_data / "remote/epoch-research/analyzing-chinchilla/9225883/svg_extracted_data.csv")
    d2 = (runs["svg_x"].to_numpy()[:, None] - theirs["x"].to_numpy()) ** 2 + \
         (runs["svg_y"].to_numpy()[:, None] - theirs["y"].to_numpy()) ** 2
    nearest = d2.argmin(axis=1)
    assert np.sqrt(d2.min(axis=1)).max() < 1e-3
    assert len(set(nearest)) == len(theirs), "every run of the other extraction is matched once"
    return runs, theirs.iloc[nearest].reset_index(drop=True)


def test_every_run_is_recovered(digitized):
    runs, diagnostics = digitized
    assert len(runs) == 245
    assert diagnostics["x_axis"]["anchors"] == 6 and diagnostics["y_axis"]["anchors"] == 4
    # Calibration fits to numerical precision, and the x axis from tick labels agrees with the
    # nine isoFLOP lines valued through the legend.
    assert diagnostics["x_axis"]["residual_svg_units"] < 1e-3
    assert diagnostics["y_axis"]["residual_svg_units"] < 1e-3
    assert diagnostics["x_axis"]["isoflop_lines"] == 9
    assert diagnostics["x_axis"]["max_isoflop_deviation_svg_units"] < 1e-3
    assert diagnostics["colorbar"]["scale"] == "log"
    assert diagnostics["max_colour_distance"] < 1e-6  # every fill is a colour of the bar
    # "40B" is not a round value: it marks ~39.6B, the optimum for the Gopher budget.
    assert diagnostics["y_axis"]["non_decade_labels"]["40B"] == pytest.approx(39.55e9, rel=2e-3)


def test_agrees_with_independent_extraction(matched):
    ours, theirs = matched
    rel = {
        "N": np.abs(ours["N"] / theirs["Model Size"] - 1),
        "C": np.abs(ours["C"] / theirs["Training FLOP"] - 1),
        "loss": np.abs(ours["loss"] / theirs["loss"] - 1),
    }
    assert np.median(rel["N"]) < 1e-4 and np.median(rel["C"]) < 1e-4
    assert rel["N"].max() < 1e-3 and rel["C"].max() < 1e-3
    assert np.median(rel["loss"]) <= 0.005
    assert rel["loss"].max() <= 0.02


def test_committed_dataset_is_the_digitizer_output(digitized):
    runs, _ = digitized
    shipped = load_dataset("chinchilla").data
    np.testing.assert_allclose(shipped["N"], runs["N"], rtol=1e-9)
    np.testing.assert_allclose(shipped["C"], runs["C"], rtol=1e-9)
    np.testing.assert_allclose(shipped["loss"], runs["loss"], rtol=1e-9)


def test_script_refuses_to_overwrite_a_different_file(shared_data, tmp_path):
    module = _digitizer()
    out = tmp_path / "runs.csv"
    out.write_text("something else\n")
    assert module.main([str(shared_data / "chinchilla_figure_4.svg"), "-o", str(out)]) == 2
    assert out.read_text() == "something else\n"


def test_missing_svg_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        SvgFigure.read(tmp_path / "nope.svg")
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg><unclosed></svg>")
    with pytest.raises(InputError, match="not a well-formed SVG"):
        SvgFigure.read(bad)


# --------------------------------------------------------------------------- helpers, known truth
def test_parse_label_value():
    assert parse_label_value("100M") == 1e8
    assert parse_label_value("40B") == 4e10
    assert parse_label_value("3e+19") == 3e19
    assert parse_label_value("2.00") == 2.0
    assert parse_label_value("\u22121") == -1.0
    assert parse_label_value("Loss") is None
    assert is_power_of_ten(1e9) and not is_power_of_ten(4e10)


def test_axis_scale_recovers_a_known_log_axis():
    values = np.array([1e18, 1e19, 1e20, 3e21])
    positions = 83.856 + 70.2 * np.log10(values / 1e18)
    scale = AxisScale.fit(positions, values, log=True)
    assert scale.residual < 1e-9
    assert scale.value(83.856 + 70.2 * 2.5) == pytest.approx(10**20.5)
    assert AxisScale.best(positions, values).log
    assert not AxisScale.best([0.0, 10.0, 20.0], [1.0, 2.0, 3.0]).log


def test_markers_and_colour_bar_of_a_matplotlib_svg(tmp_path):
    """Draw known points with a log colour bar, then read them back from the SVG."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 10, 30), rng.uniform(0, 10, 30)
    c = np.exp(rng.uniform(np.log(2.0), np.log(5.0), 30))
    fig, ax = plt.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    norm = matplotlib.colors.LogNorm(2.0, 5.0)
    sc = ax.scatter(x, y, c=c, norm=norm, cmap="magma")
    fig.colorbar(sc)
    path = tmp_path / "figure.svg"
    fig.savefig(path)
    plt.close(fig)
    svg = SvgFigure.read(path)
    filled = [m for m in svg.markers if m.fill]
    assert len(filled) == 30
    assert len(svg.images) == 1
    (image,) = svg.images.values()
    rows = image.row_positions()
    assert rows is not None and rows[0] > rows[-1]  # matplotlib stores the bar bottom row first
    # The bar spans [2, 5] on a log scale, bottom to top of the image's extent.
    edge = (rows[-1] - rows[0]) / (len(rows) - 1) / 2
    scale = AxisScale.fit([rows[0] - edge, rows[-1] + edge], [2.0, 5.0], log=True)
    bar = Colorbar.from_image(image, scale=scale)
    cmap = matplotlib.colormaps["magma"]
    truth = {matplotlib.colors.to_hex(cmap(norm(v))): v for v in c}
    errors = [abs(bar.lookup(m.fill)[0] / truth[m.fill] - 1) for m in filled]
    # A 256-colour map over a factor 2.5 quantizes values to ~0.36%; the bin centre halves that.
    assert max(errors) < 0.004
