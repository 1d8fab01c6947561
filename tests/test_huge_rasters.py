"""Window selection on rasters far larger than a scene: a sparse 200,000 x 200,000 mosaic is searched in seconds,
with bounded memory, and the blocks it does not store never change which tiles are chosen."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from harness import UserError
from harness_datasets import _tiling, geotiff
from harness_datasets.geotiff import GeoTiffDataset
from tests.conftest import dataset_settings, speckled_db

GIANT = 200_000
GENEROUS_SECONDS = 30.0
"""The issue's bound; selection takes about a second here (it scanned every window for minutes before)."""


def sparse_geotiff(path: Path, size: int, block: int, patches: list[tuple[int, int, int]] = (),
                   dtype: str = "float32", nodata: float | None = float("nan")) -> Path:
    """A tiled, compressed, sparse two-band GeoTIFF of ``size`` x ``size`` pixels: only the blocks under the
    ``(row, col, side)`` patches of speckled dB are written, so the file stays small whatever its size."""
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 2, "dtype": dtype, "crs": "EPSG:32631",
               "transform": from_origin(500_000, 5_000_000, 10, 10), "nodata": nodata, "tiled": True,
               "blockxsize": block, "blockysize": block, "compress": "deflate", "sparse_ok": True, "BIGTIFF": "YES"}
    rng = np.random.default_rng(5)
    with rasterio.open(path, "w", **profile) as raster:
        for row, col, side in patches:
            bands = np.stack([speckled_db(rng, (side, side), -11.0), speckled_db(rng, (side, side), -18.0)])
            raster.write(bands.astype(dtype), window=Window(col, row, side, side))
    return path


def giant_settings(tmp_path: Path, **overrides):
    return dataset_settings(tmp_path, **{"tile_size": 256, "max_tiles": 8, **overrides})


def test_an_empty_sparse_giant_raster_is_refused_in_seconds_naming_the_file(tmp_path):
    sparse_geotiff(tmp_path / "giant.tif", GIANT, block=1024)
    assert (tmp_path / "giant.tif").stat().st_size < 4_000_000

    start = time.monotonic()
    with pytest.raises(UserError, match=r"^dataset: no 256px window in .*giant\.tif has at least 50% valid pixels"):
        list(GeoTiffDataset(giant_settings(tmp_path), paths="giant.tif").tiles())

    assert time.monotonic() - start < GENEROUS_SECONDS


def test_the_few_windows_with_data_in_a_sparse_giant_raster_are_found_in_seconds(tmp_path):
    patches = [(1024, 150_016, 1024), (180_224, 4096, 512)]
    sparse_geotiff(tmp_path / "giant.tif", GIANT, block=512, patches=patches)

    start = time.monotonic()
    tiles = list(GeoTiffDataset(giant_settings(tmp_path, max_tiles=None), paths="giant.tif").tiles())

    assert time.monotonic() - start < GENEROUS_SECONDS
    windows = {(tile.row, tile.col) for tile in tiles}
    expected = {(row + 256 * i, col + 256 * j) for row, col, side in patches
                for i in range(side // 256) for j in range(side // 256)}
    assert windows == expected and all(tile.mask.all() for tile in tiles)


def test_selecting_in_a_giant_raster_holds_no_list_of_its_windows(tmp_path):
    """The 610,000 windows of 256 px were a list of objects (150 MB); now an index order and a bound per window."""
    sparse_geotiff(tmp_path / "giant.tif", GIANT, block=1024, patches=[(0, 0, 512)])
    dataset = GeoTiffDataset(giant_settings(tmp_path, tile_size=256), paths="giant.tif")

    tracemalloc.start()
    try:
        tiles = list(dataset.tiles())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(tiles) == 2 * 4
    assert peak < 40_000_000


def test_skipping_unstored_blocks_chooses_the_same_tiles_as_reading_every_window(tmp_path, monkeypatch):
    # Patches that cover blocks partly, so that windows straddle stored and left-out blocks.
    sparse_geotiff(tmp_path / "mosaic.tif", 2048, block=128,
                   patches=[(0, 0, 300), (700, 900, 500), (1500, 100, 200), (1900, 1800, 148)])
    settings = dataset_settings(tmp_path, tile_size=64, max_tiles=None, min_valid_fraction=0.3)
    skipping = [tile.tile_id for tile in GeoTiffDataset(settings, paths="mosaic.tif", stride=48).tiles()]

    monkeypatch.setattr(geotiff, "stored_blocks", lambda raster, band: None)
    reading = [tile.tile_id for tile in GeoTiffDataset(settings, paths="mosaic.tif", stride=48).tiles()]

    assert skipping == reading and len(skipping) > 50


def test_unstored_blocks_of_an_untagged_float_raster_are_read_because_they_hold_0_db(tmp_path):
    """GDAL reads a left-out block as 0 without a no-data value, and 0 dB is a valid value in a float raster (which
    the dataset reads as such, warning that a 0 fill may be no-data)."""
    sparse_geotiff(tmp_path / "zeros.tif", 256, block=128, nodata=None)
    with pytest.warns(UserWarning, match=r"zeros\.tif band 1: 100% of a window's pixels are exactly 0 dB"):
        tiles = list(GeoTiffDataset(dataset_settings(tmp_path, max_tiles=1), paths="zeros.tif").tiles())
    assert tiles and all(tile.mask.all() and np.all(tile.original_db == 0.0) for tile in tiles)


def test_unstored_blocks_of_an_untagged_uint16_raster_are_no_data_as_dn_0_is(tmp_path):
    sparse_geotiff(tmp_path / "dn.tif", GIANT, block=1024, dtype="uint16", nodata=None)
    start = time.monotonic()
    with pytest.raises(UserError, match=r"no 256px window in .*dn\.tif has at least 50% valid pixels"):
        list(GeoTiffDataset(giant_settings(tmp_path), paths="dn.tif", units="dn").tiles())
    assert time.monotonic() - start < GENEROUS_SECONDS


def test_a_slow_scan_says_what_it_is_doing_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(_tiling, "SLOW_SCAN_SECONDS", 0.0)
    sparse_geotiff(tmp_path / "mosaic.tif", 512, block=128, patches=[(0, 0, 512)])
    with pytest.warns(UserWarning, match=r"windows of mosaic\.tif read in .* crop it to its data, tag its no-data"):
        list(GeoTiffDataset(dataset_settings(tmp_path), paths="mosaic.tif").tiles())
