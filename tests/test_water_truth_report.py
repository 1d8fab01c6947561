"""The score against ground truth in a run and its report: a column on every labelled row, empty without labels
(the summary says so), and its own RD figure with the original tiles' level."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.reporting.figures import codec_colors, rd_figure
from harness.reporting.summaries import summarize
from harness.task_metrics import water_truth
from tests.conftest import MINIMAL_CONFIG, run_rows

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

WATER_IOU_TRUTH, WATER_IOU_TRUTH_ORIGINAL, WATER_IOU_TRUTH_CHANGE = water_truth.columns
LABELS_OPTION = "  labels: {folder: labels, rename: {scene: scene_labels}}\n"


def labelled_config(write_config, dual_pol_geotiff) -> str:
    """MINIMAL_CONFIG on the dual-pol scene, with hand labels of water on its darkest quarter of pixels."""
    with rasterio.open(dual_pol_geotiff) as raster:
        vv = raster.read(1)
    labels = np.where(np.isnan(vv), -1, vv < np.nanpercentile(vv, 25)).astype(np.int16)
    folder = dual_pol_geotiff.parent / "labels"
    folder.mkdir()
    profile = {"driver": "GTiff", "height": 128, "width": 128, "count": 1, "dtype": "int16", "crs": "EPSG:32631",
               "transform": from_origin(500_000, 5_000_000, 10, 10)}
    with rasterio.open(folder / "scene_labels.tif", "w", **profile) as raster:
        raster.write(labels, 1)
    return write_config(MINIMAL_CONFIG.replace("  tile_size: 32\n", "  tile_size: 32\n" + LABELS_OPTION))


def test_every_row_of_a_labelled_tile_has_both_scores_and_one_original_score_per_tile(
        tmp_path, write_config, dual_pol_geotiff):
    rows = pd.DataFrame(run_rows(labelled_config(write_config, dual_pol_geotiff), tmp_path / "run"))
    scores = rows[[WATER_IOU_TRUTH.name, WATER_IOU_TRUTH_ORIGINAL.name]].astype(float)
    assert scores.notna().all().all()
    assert (rows.assign(original=scores[WATER_IOU_TRUTH_ORIGINAL.name])
            .groupby("tile_id")["original"].nunique() == 1).all()


def test_the_labelled_run_draws_the_rd_figures_of_the_score_and_its_change(tmp_path, write_config, dual_pol_geotiff):
    run_rows(labelled_config(write_config, dual_pol_geotiff), tmp_path / "run")
    for column in (WATER_IOU_TRUTH, WATER_IOU_TRUTH_CHANGE):
        assert (tmp_path / "run" / f"rd_{column.name}.png").stat().st_size > 5_000


def test_a_run_without_labels_leaves_the_columns_empty_and_the_summary_says_so(tmp_path, write_config,
                                                                               dual_pol_geotiff):
    rows = run_rows(write_config(MINIMAL_CONFIG), tmp_path / "run")
    assert all(math.isnan(float(row[column.name])) for row in rows for column in water_truth.columns)
    notes = (tmp_path / "run" / "summary.md").read_text().split("## Notes")[1]
    assert "no tile of this run has a value: " in notes and WATER_IOU_TRUTH.label in notes


def test_the_rd_figure_draws_the_original_tiles_score_as_a_dotted_line():
    results = pd.DataFrame({
        "codec": ["a"] * 4, "point": ["p1", "p1", "p2", "p2"], "tile_id": ["t0", "t1"] * 2, "pol": ["VV"] * 4,
        "bpp": [0.5, 0.5, 2.0, 2.0], WATER_IOU_TRUTH.name: [0.2, 0.4, 0.5, 0.6],
        WATER_IOU_TRUTH_ORIGINAL.name: [0.6, 0.7, 0.6, 0.7], "error": [""] * 4,
    })
    summary = summarize(results)
    figure = rd_figure(summary, WATER_IOU_TRUTH, codec_colors(summary["codec"]), "unit")
    dotted = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert [line.get_label() for line in dotted] == ["original tiles (0.65)"]
    assert math.isclose(dotted[0].get_ydata()[0], 0.65)
