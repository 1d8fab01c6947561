"""A run reads its tiles as a stream and holds one chunk of them at a time, so a whole product fits in memory."""

from __future__ import annotations

import csv
import dataclasses
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio

import harness.run
import harness.tiles
from harness import DatasetSettings, Tile
from harness.config import load_config
from harness.results import TIMING_COLUMNS
from harness.run import RunOptions, run_benchmark
from harness.tiles import tile_chunks, tile_stream
from harness_datasets._tiling import GDAL_CACHE_MB
from harness_datasets.geotiff import GeoTiffDataset
from tests.conftest import IN_PROCESS, MINIMAL_CONFIG, NORMALIZATION, speckled_db, write_geotiff

TILE_PIXELS = 32 * 32
"""MINIMAL_CONFIG's tiles: 3 windows of 32x32, two polarisations each."""

COUNTING_CODEC = '''
import weakref

import numpy as np
from harness import Codec, hookimpl

ALIVE = []
MOST_ALIVE = [0]


class Counting(Codec):
    """8-bit bytes; records the most input tiles alive at once, over the whole run."""
    name = "counting"

    def encode(self, tile):
        if not any(ref() is tile for ref in ALIVE):
            ALIVE.append(weakref.ref(tile))
        MOST_ALIVE[0] = max(MOST_ALIVE[0], sum(ref() is not None for ref in ALIVE))
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape).astype(np.float32) / 255


@hookimpl
def harness_codecs():
    return [Counting]
'''


def tiles_numbered(count: int, pulled: list[int]):
    for index in range(count):
        pulled.append(index)
        yield Tile(f"t{index}", "scene", "VV", 0, 0, np.zeros((4, 4), np.float32), np.ones((4, 4), bool), (0.0, 1.0))


def test_chunks_are_consecutive_tiles_of_at_least_the_given_pixels_and_the_rest():
    chunks = list(tile_chunks(tiles_numbered(7, []), pixels=3 * 16))
    assert [[tile.tile_id for tile in chunk] for chunk in chunks] == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


def test_a_chunk_is_read_only_when_it_is_asked_for():
    pulled: list[int] = []
    chunks = tile_chunks(tiles_numbered(7, pulled), pixels=2 * 16)
    next(chunks)
    assert pulled == [0, 1]


def test_a_tile_without_a_valid_pixel_is_skipped_with_one_note(write_config, dual_pol_geotiff, monkeypatch):
    tiles = list(tiles_numbered(5, []))
    for index in (1, 3):
        tiles[index] = dataclasses.replace(tiles[index], mask=np.zeros((4, 4), bool))
    monkeypatch.setattr(harness.tiles, "dataset_tiles", lambda *arguments: iter(tiles))
    config, registry = load_config(write_config(MINIMAL_CONFIG))

    with pytest.warns(UserWarning, match="tile t1 has no valid pixel") as notes:
        kept = [tile.tile_id for tile in tile_stream(config, registry)]

    assert kept == ["t0", "t2", "t4"] and len(notes) == 1


@pytest.fixture
def chunked(tmp_path, dual_pol_geotiff, write_config, monkeypatch):
    """A config with the counting codec, and chunks of two tiles (one window's two polarisations)."""
    (tmp_path / "counting.py").write_text(COUNTING_CODEC)
    codecs = "  - name: counting\n    points: [{}]\n  - name: quantize\n    points: [{bits: 4}, {bits: 8}]\n"
    text = MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n" + codecs + "plugins: [counting.py]\n"
    config = write_config(text + f"timing: {{warmup: 0, repeats: 1, batch_size: 1, {IN_PROCESS}}}\n")
    monkeypatch.setattr(harness.run, "TILE_CHUNK_PIXELS", 2 * TILE_PIXELS)
    return config


def run_rows(config_path: Path, run_dir: Path, **options) -> list[dict[str, str]]:
    config, registry = load_config(config_path)
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False, report=False, **options))
    with (run_dir / "results.csv").open(newline="") as handle:
        return [{key: value for key, value in row.items() if key not in TIMING_COLUMNS}
                for row in csv.DictReader(handle)]


def most_tiles_alive(config_path: Path, run_dir: Path) -> int:
    """The most input tiles alive at once while the counting codec coded, over a whole run."""
    config, registry = load_config(config_path)
    plugin = sys.modules[registry.codec("counting").__module__]
    plugin.ALIVE.clear()
    plugin.MOST_ALIVE[0] = 0
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False, report=False, visual_tiles=0))
    return plugin.MOST_ALIVE[0]


def test_a_run_in_chunks_measures_every_point_on_one_chunk_before_reading_the_next(tmp_path, chunked):
    rows = run_rows(chunked, tmp_path / "run")
    windows = [row["tile_id"].split(":", 2)[2] for row in rows]
    assert len(rows) == 3 * 6
    assert windows == sorted(windows, key=windows.index) and len(set(windows[:6])) == 1


def test_a_run_in_chunks_gives_the_rows_of_a_run_in_one_chunk(tmp_path, chunked, monkeypatch):
    in_chunks = run_rows(chunked, tmp_path / "chunks")
    monkeypatch.setattr(harness.run, "TILE_CHUNK_PIXELS", 1 << 24)
    at_once = run_rows(chunked, tmp_path / "at_once")

    def key(row):
        return row["codec"], row["point"], row["tile_id"]

    assert sorted(in_chunks, key=key) == sorted(at_once, key=key)


def test_a_run_holds_one_chunk_of_tiles_at_a_time(tmp_path, chunked, monkeypatch):
    in_chunks = most_tiles_alive(chunked, tmp_path / "chunks")
    monkeypatch.setattr(harness.run, "TILE_CHUNK_PIXELS", 1 << 24)
    at_once = most_tiles_alive(chunked, tmp_path / "at_once")
    assert (in_chunks, at_once) == (2, 6)  # a chunk is one window's two polarisations


def test_the_manifest_of_a_run_in_chunks_lists_every_tile_in_order(tmp_path, chunked):
    rows = run_rows(chunked, tmp_path / "run")
    with (tmp_path / "run" / "tiles.csv").open(newline="") as handle:
        listed = [row["tile_id"] for row in csv.DictReader(handle)]
    assert listed == list(dict.fromkeys(row["tile_id"] for row in rows))


def test_a_manifest_restricts_a_run_in_chunks(tmp_path, chunked):
    first = run_rows(chunked, tmp_path / "first")
    again = run_rows(chunked, tmp_path / "again", manifest=tmp_path / "first" / "tiles.csv")
    assert again == first


def test_selecting_windows_from_a_geotiff_holds_no_more_than_a_few_of_them(tmp_path):
    """Every window of the scene qualifies, and 100 are selected: the selection must not keep their pixels."""
    rng = np.random.default_rng(0)
    path = write_geotiff(tmp_path / "wide.tif", [speckled_db(rng, (64, 3200), -11.0)], nodata=float("nan"))
    settings = DatasetSettings(tile_size=64, max_tiles=50, polarisations=("VV",), normalization=NORMALIZATION,
                               seed=0, min_valid_fraction=0.5, base_dir=tmp_path, cache_dir=tmp_path)
    window_bytes = 64 * 64 * 8
    tiles = GeoTiffDataset(settings, paths=[str(path)]).tiles()
    tracemalloc.start()
    try:
        first = next(tiles)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.shape == (64, 64)
    assert peak < 10 * window_bytes  # the 50 selected windows as float64 would be 50 window_bytes


def test_tiles_are_read_under_a_gdal_block_cache_that_does_not_grow_with_the_product(tmp_path):
    """GDAL's default cache is 5 % of the machine's memory, which a whole product's windows fill."""
    path = write_geotiff(tmp_path / "scene.tif", [speckled_db(np.random.default_rng(0), (64, 128), -11.0)])
    settings = DatasetSettings(tile_size=64, max_tiles=2, polarisations=("VV",), normalization=NORMALIZATION,
                               seed=0, min_valid_fraction=0.5, base_dir=tmp_path, cache_dir=tmp_path)
    tiles = GeoTiffDataset(settings, paths=[str(path)]).tiles()
    next(tiles)
    assert rasterio.env.getenv()["GDAL_CACHEMAX"] == GDAL_CACHE_MB
