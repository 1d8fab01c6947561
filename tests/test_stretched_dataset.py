"""Specification of the ``stretched`` dataset plugin: 8-bit images stretched from dB, mapped back to dB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from harness import UserError
from harness.sar import normalize_db
from harness_datasets.stretched import StretchedDataset
from tests.conftest import NORMALIZATION, dataset_settings

SHARED_OMBRIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "s1_patches" / "ombria_vv_8bit"
DATA = Path(__file__).resolve().parents[1] / "data"


def write_png(path: Path, grey: np.ndarray) -> Path:
    Image.fromarray(grey.astype(np.uint8)).save(path)
    return path


def grey_ramp(size: int = 64) -> np.ndarray:
    return np.tile(np.arange(size, dtype=np.uint8) * 4, (size, 1))


def stretched_tiles(tmp_path: Path, **options):
    settings = dataset_settings(tmp_path, polarisations=("VV",), tile_size=32, max_tiles=100, min_valid_fraction=1.0)
    return list(StretchedDataset(settings, **options).tiles())


def test_grey_levels_map_linearly_to_db_around_the_images_median(tmp_path):
    grey = grey_ramp()
    write_png(tmp_path / "patch.png", grey)

    tiles = stretched_tiles(tmp_path, paths=["patch.png"], db_per_level=0.2, median_db=-11.0)

    median = float(np.median(grey))
    for tile in tiles:
        expected = -11.0 + 0.2 * (grey[tile.row:tile.row + 32, tile.col:tile.col + 32] - median)
        assert np.allclose(tile.original_db, expected, atol=1e-5)
        assert np.allclose(tile.data, normalize_db(expected, NORMALIZATION["VV"]), atol=1e-6)


def test_every_window_of_an_image_is_mapped_with_the_whole_images_median(tmp_path):
    write_png(tmp_path / "patch.png", grey_ramp())

    tiles = stretched_tiles(tmp_path, paths=["patch.png"], db_per_level=0.1, median_db=-10.0)

    left = [tile for tile in tiles if tile.col == 0][0]
    right = [tile for tile in tiles if tile.col == 32][0]
    assert np.allclose(right.original_db - left.original_db, 0.1 * 4 * 32)  # the ramp's step, not re-centred


def test_a_folder_of_images_is_read_image_by_image(tmp_path):
    (tmp_path / "patches").mkdir()
    for index in range(3):
        write_png(tmp_path / "patches" / f"p{index}.png", grey_ramp(32) // (index + 1))

    tiles = stretched_tiles(tmp_path, paths=["patches"])

    assert sorted(tile.scene for tile in tiles) == ["p0", "p1", "p2"]


@pytest.mark.parametrize(("options", "message"), [
    ({"db_per_level": 0}, "dataset.db_per_level: 0 dB per grey level; expected a positive number"),
    ({"median_db": "low"}, "dataset.median_db: expected a number, got 'low'"),
])
def test_bad_mapping_options_are_one_line_errors(tmp_path, options, message):
    write_png(tmp_path / "patch.png", grey_ramp())
    with pytest.raises(UserError, match=message):
        stretched_tiles(tmp_path, paths=["patch.png"], **options)


def test_an_image_holds_one_polarisation(tmp_path):
    write_png(tmp_path / "patch.png", grey_ramp())
    with pytest.raises(UserError, match="a stretched image holds one polarisation"):
        StretchedDataset(dataset_settings(tmp_path), paths=["patch.png"])


@pytest.mark.skipif(not SHARED_OMBRIA.is_dir(), reason="the shared data folder's OMBRIA patches are not here")
def test_the_ombria_patches_map_to_the_spread_of_the_calibrated_training_chips(tmp_path):
    """The default dB per grey level puts the OMBRIA patches' median 2nd-98th percentile span among the spans
    of the calibrated VV training chips in data/train."""
    paths = sorted(SHARED_OMBRIA.glob("*.png"))[::20]
    settings = dataset_settings(tmp_path, polarisations=("VV",), tile_size=256, max_tiles=100, min_valid_fraction=1.0)
    tiles = list(StretchedDataset(settings, paths=[str(path) for path in paths]).tiles())
    spans = [np.percentile(tile.original_db, 98) - np.percentile(tile.original_db, 2) for tile in tiles]
    calibrated = [span(path) for path in [*sorted((DATA / "train" / "sen1floods11").glob("*.tif")),
                                          *sorted((DATA / "train" / "s1_patches" / "ssl4eo_s12").glob("*_VV.tif"))]]

    assert len(tiles) == len(paths) and len(calibrated) == 4
    assert min(calibrated) <= float(np.median(spans)) <= max(calibrated)


def span(path: Path) -> float:
    """The 2nd-to-98th percentile span of a raster's first band (VV), in dB."""
    with rasterio.open(path) as raster:
        db = raster.read(1)
    db = db[np.isfinite(db)]
    return float(np.percentile(db, 98) - np.percentile(db, 2))
