"""The shipped test set's no-data tile: the Mekong chip is no-data exactly where its hand label has no data, and
``benchmarks/impose_label_footprint.py``, which wrote it, changes nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import BenchmarkContext
from tests.conftest import SHIPPED_DATA, speckled_db, write_geotiff

rasterio = pytest.importorskip("rasterio")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "impose_label_footprint.py"
TEST_CHIPS = SHIPPED_DATA / "test" / "sen1floods11"
MEKONG = TEST_CHIPS / "Mekong_333434_S1Hand.tif"
MEKONG_LABEL = TEST_CHIPS / "labels" / "Mekong_333434_LabelHand.tif"


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as raster:
        return raster.read()


def test_the_mekong_test_chip_is_no_data_exactly_where_its_hand_label_is():
    chip, label = read(MEKONG), read(MEKONG_LABEL)[0]
    for band in chip:
        np.testing.assert_array_equal(np.isnan(band), label == -1)
    assert 0.2 < (label == -1).mean() < 0.25


def test_the_default_benchmark_has_tiles_with_no_data_beside_valid_pixels():
    context = BenchmarkContext.load(ROOT / "benchmarks.yaml")
    partly_valid = [tile.tile_id for tile in context.test_tiles() if 0 < tile.valid_pixels < tile.mask.size]
    assert len(partly_valid) == 8 and all(tile_id.startswith("Mekong") for tile_id in partly_valid)


def test_the_script_makes_the_label_footprint_nan_and_keeps_every_other_pixel(tmp_path):
    rng = np.random.default_rng(5)
    bands = [speckled_db(rng, (40, 48), -11.0), speckled_db(rng, (40, 48), -18.0)]
    chip = write_geotiff(tmp_path / "site_S1Hand.tif", bands)
    labels = rng.integers(-1, 2, size=(40, 48)).astype(np.int16)
    label = write_geotiff(tmp_path / "site_LabelHand.tif", [labels])
    output = tmp_path / "out.tif"

    subprocess.run([sys.executable, str(SCRIPT), str(chip), str(label), str(output)], check=True,
                   capture_output=True)

    written = read(output)
    for band, original in zip(written, bands):
        np.testing.assert_array_equal(np.isnan(band), labels == -1)
        np.testing.assert_array_equal(band[labels != -1], original[labels != -1])
    with rasterio.open(chip) as source, rasterio.open(output) as target:
        assert (target.crs, target.transform, target.count) == (source.crs, source.transform, source.count)
        assert np.isnan(target.nodata)


def test_the_script_refuses_a_label_of_another_size_in_one_line(tmp_path):
    rng = np.random.default_rng(6)
    chip = write_geotiff(tmp_path / "site_S1Hand.tif", [speckled_db(rng, (40, 48), -11.0)])
    label = write_geotiff(tmp_path / "other_LabelHand.tif", [np.zeros((32, 32), np.int16)])

    finished = subprocess.run([sys.executable, str(SCRIPT), str(chip), str(label), str(tmp_path / "out.tif")],
                              capture_output=True, text=True)

    assert finished.returncode != 0 and "Traceback" not in finished.stderr
    assert finished.stderr.strip().count("\n") == 0 and "not the chip's 40x48" in finished.stderr
