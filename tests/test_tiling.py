"""Tile grid and window selection shared by the geotiff and safe datasets: stride, balance across scenes, seeds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness import UserError
from harness_datasets._tiling import Candidate, Grid, grid_candidates, scene_grids, select_windows
from harness_datasets.geotiff import GeoTiffDataset
from harness_datasets.safe import SafeDataset
from tests.conftest import NORMALIZATION, dataset_settings, speckled_db, write_geotiff
from tests.safe_fixtures import build_safe_product

VALID = {"VV": np.zeros((4, 4)), "VH": np.zeros((4, 4))}
EMPTY = {"VV": np.full((4, 4), np.nan), "VH": np.full((4, 4), np.nan)}


def scenes_grid(*sizes: int) -> list[Grid]:
    """The grids of square scenes of the given sizes, 32 px windows on a 32 px grid."""
    return scene_grids([(size, size) for size in sizes], 32)


def select(grids, max_tiles: int, seed: int = 0, max_tiles_per_scene=None, read=lambda candidate: VALID, **options):
    settings = dataset_settings(Path("."), max_tiles=max_tiles, seed=seed)
    return select_windows(grids, read, settings, max_tiles_per_scene, **options)


def per_scene(selected: list[Candidate]) -> Counter:
    return Counter(candidate.file_index for candidate in selected)


def test_the_default_grid_is_non_overlapping_full_windows():
    assert [(c.row, c.col) for c in grid_candidates([(70, 90)], 32)] == [(0, 0), (0, 32), (32, 0), (32, 32)]


def test_a_stride_smaller_than_the_tile_gives_overlapping_windows():
    positions = [(c.row, c.col) for c in grid_candidates([(64, 64)], 32, stride=16)]
    assert positions == [(row, col) for row in (0, 16, 32) for col in (0, 16, 32)]


def test_a_stride_larger_than_the_tile_leaves_gaps():
    assert [(c.row, c.col) for c in grid_candidates([(100, 100)], 32, stride=64)] == [(0, 0), (0, 64), (64, 0), (64, 64)]


def test_windows_are_spread_evenly_over_scenes_of_different_sizes():
    selected = select(scenes_grid(320, 96, 128), max_tiles=6)
    assert per_scene(selected) == {0: 2, 1: 2, 2: 2}


def test_the_cap_per_scene_is_honoured_even_when_max_tiles_is_not_reached():
    selected = select(scenes_grid(320, 320, 64), max_tiles=20, max_tiles_per_scene=5)
    assert per_scene(selected) == {0: 5, 1: 5, 2: 4}


def test_a_scene_with_few_windows_leaves_its_share_to_the_others():
    assert per_scene(select(scenes_grid(320, 320, 32), max_tiles=9)) == {0: 4, 1: 4, 2: 1}


def test_a_scene_without_valid_windows_leaves_its_turns_to_the_others():
    read = lambda candidate: EMPTY if candidate.file_index == 0 else VALID
    assert per_scene(select(scenes_grid(320, 320), max_tiles=6, read=read)) == {1: 6}


def test_a_scene_without_valid_windows_is_named_in_a_note_when_the_others_give_the_tiles():
    read = lambda candidate: EMPTY if candidate.file_index == 0 else VALID
    with pytest.warns(UserWarning, match=r"^dataset: no 32px window of empty\.tif has at least 50% valid pixels; "
                                         r"the tiles come from the other files$"):
        select(scenes_grid(320, 320), max_tiles=6, read=read, names=["empty.tif", "full.tif"])


def test_a_window_without_a_valid_pixel_is_never_selected_even_when_no_valid_fraction_is_asked_for():
    one_valid = {pol: np.where(np.arange(16).reshape(4, 4) == 0, 0.0, np.nan) for pol in ("VV", "VH")}
    read = lambda candidate: one_valid if candidate.col == 0 else EMPTY
    settings = dataset_settings(Path("."), max_tiles=None, min_valid_fraction=0.0)
    selected = select_windows(scenes_grid(128), read, settings)
    assert [(c.row, c.col) for c in selected] == [(0, 0), (32, 0), (64, 0), (96, 0)]


def test_fewer_windows_than_asked_for_when_every_scene_is_exhausted():
    assert len(select(scenes_grid(64, 64), max_tiles=20)) == 8


def test_windows_are_read_lazily_only_until_enough_are_found():
    reads = []
    select(scenes_grid(3200, 3200), max_tiles=4, read=lambda candidate: reads.append(candidate) or VALID)
    assert len(reads) == 4


def test_selection_is_deterministic_for_a_seed_and_changes_with_it():
    candidates = scenes_grid(320, 320, 320)
    assert select(candidates, max_tiles=6, seed=3) == select(candidates, max_tiles=6, seed=3)
    assert select(candidates, max_tiles=6, seed=3) != select(candidates, max_tiles=6, seed=4)


def test_selected_windows_come_back_in_scene_row_column_order():
    selected = select(scenes_grid(320, 320), max_tiles=8)
    assert selected == sorted(selected, key=lambda c: (c.file_index, c.row, c.col))


@pytest.fixture
def three_geotiffs(tmp_path: Path) -> list[str]:
    """Three dual-pol dB scenes of different sizes, all valid."""
    rng = np.random.default_rng(11)
    names = []
    for name, size in (("big", 256), ("mid", 128), ("small", 96)):
        write_geotiff(tmp_path / f"{name}.tif", [speckled_db(rng, (size, size), -11.0), speckled_db(rng, (size, size), -18.0)])
        names.append(f"{name}.tif")
    return names


def geotiff_tiles(tmp_path: Path, paths, seed: int = 0, max_tiles: int = 6, **options):
    return list(GeoTiffDataset(dataset_settings(tmp_path, max_tiles=max_tiles, seed=seed), paths=paths, **options).tiles())


def test_three_geotiffs_and_six_tiles_give_two_windows_per_file_with_both_polarisations(tmp_path, three_geotiffs):
    tiles = geotiff_tiles(tmp_path, three_geotiffs)
    assert Counter(tile.scene for tile in tiles) == {"big": 4, "mid": 4, "small": 4}
    windows = Counter((tile.scene, tile.row, tile.col) for tile in tiles)
    assert set(windows.values()) == {2}  # one VV and one VH tile per window


def test_geotiff_max_tiles_per_scene_caps_each_file(tmp_path, three_geotiffs):
    tiles = geotiff_tiles(tmp_path, three_geotiffs, max_tiles=100, max_tiles_per_scene=3)
    assert Counter(tile.scene for tile in tiles if tile.pol == "VV") == {"big": 3, "mid": 3, "small": 3}


def test_geotiff_tiles_are_the_same_for_a_seed_and_differ_for_another(tmp_path, three_geotiffs):
    ids = lambda seed: [tile.tile_id for tile in geotiff_tiles(tmp_path, three_geotiffs, seed=seed)]
    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


def test_geotiff_stride_places_windows_on_the_finer_grid_with_unchanged_ids(tmp_path, three_geotiffs):
    tiles = geotiff_tiles(tmp_path, ["big.tif"], max_tiles=30, stride=16)
    assert any(tile.row % 32 == 16 or tile.col % 32 == 16 for tile in tiles)
    assert all(tile.tile_id == f"big:{tile.pol}:r{tile.row}:c{tile.col}:32" for tile in tiles)


def test_safe_stride_and_cap_are_honoured(tmp_path):
    product = build_safe_product(tmp_path, shape=(96, 128))
    settings = dataset_settings(tmp_path, max_tiles=50, normalization={"VV": (-60.0, 20.0), "VH": (-60.0, 20.0)})
    tiles = list(SafeDataset(settings, paths=product.path.name, stride=16, max_tiles_per_scene=7).tiles())
    assert len(tiles) == 7 * 2
    assert any(tile.row % 32 or tile.col % 32 for tile in tiles)


@pytest.mark.parametrize("dataset", [GeoTiffDataset, SafeDataset])
@pytest.mark.parametrize("option", ["stride", "max_tiles_per_scene"])
@pytest.mark.parametrize("value", [0, -32, 1.5, "16", True])
def test_a_bad_stride_or_cap_is_a_one_line_user_error_naming_the_option(tmp_path, dataset, option, value):
    with pytest.raises(UserError, match=rf"^dataset\.{option}: expected a positive integer, got {value!r}$".replace("(", r"\(")):
        dataset(dataset_settings(tmp_path), paths="anything", **{option: value})


def test_a_tile_records_the_share_of_its_valid_pixels_clipped_at_each_end_of_the_db_range(tmp_path):
    low, high = NORMALIZATION["VV"]
    vv = np.full((32, 32), (low + high) / 2, dtype=np.float32)
    vv[:, :8] = np.nan              # no-data: not counted
    vv[:6, 8:] = low - 10.0         # 6 x 24 of the 24 x 32 valid pixels below the range
    vv[6:9, 8:] = high + 1.0        # 3 x 24 above it
    write_geotiff(tmp_path / "clipped.tif", [vv, vv - 7.0], nodata=float("nan"))

    tile = next(t for t in geotiff_tiles(tmp_path, ["clipped.tif"], max_tiles=1) if t.pol == "VV")

    assert tile.clipped_fractions == pytest.approx((6 / 32, 3 / 32))
    assert np.nanmin(tile.original_db) == pytest.approx(low - 10.0) and tile.data[tile.mask].min() == 0.0


def test_a_synthetic_scene_too_large_to_generate_in_memory_is_refused_before_generating(tmp_path):
    from harness_datasets.synthetic import MAX_SCENE_SIZE, SyntheticDataset

    with pytest.raises(UserError, match=rf"dataset\.scene_size: {4 * MAX_SCENE_SIZE} is larger than"):
        SyntheticDataset(dataset_settings(tmp_path), scenes=1, scene_size=4 * MAX_SCENE_SIZE)
