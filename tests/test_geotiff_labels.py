"""The geotiff dataset's ``labels`` option: each tile carries the ground truth of its own pixels, or None."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from harness import UserError
from harness_datasets.geotiff import GeoTiffDataset
from tests.conftest import SHIPPED_DATA, dataset_settings, speckled_db, write_geotiff

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

SIZE = 96
TILE = 32
TEST_CHIPS = SHIPPED_DATA / "test" / "sen1floods11"
SHIPPED_LABELS = {"folder": str(TEST_CHIPS / "labels"), "rename": {"S1Hand": "LabelHand"}}


def position_labels() -> np.ndarray:
    """Labels that differ from window to window and inside each: stripes of water, land and unlabelled pixels whose
    phase changes with the row and column, so a window read anywhere else would not match."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    return ((rows // 3 + 2 * (cols // 5)) % 3 - 1).astype(np.int16)


def write_scene(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    return write_geotiff(tmp_path / "scene_S1.tif", [speckled_db(rng, (SIZE, SIZE), -11.0),
                                                     speckled_db(rng, (SIZE, SIZE), -18.0)])


def write_labels(path: Path, labels: np.ndarray, transform=None, nodata: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = labels.shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 1, "dtype": labels.dtype.name,
               "crs": "EPSG:32631", "transform": transform or from_origin(500_000, 5_000_000, 10, 10),
               "nodata": nodata}
    with rasterio.open(path, "w", **profile) as raster:
        raster.write(labels, 1)
    return path


def tiles_of(tmp_path: Path, **options) -> list:
    settings = dataset_settings(tmp_path, tile_size=TILE, max_tiles=None, min_valid_fraction=0.0)
    return list(GeoTiffDataset(settings, paths=["scene_S1.tif"], **options).tiles())


def test_the_label_window_follows_the_tile_window(tmp_path):
    write_scene(tmp_path)
    labels = position_labels()
    write_labels(tmp_path / "labels" / "scene_truth.tif", labels)
    tiles = tiles_of(tmp_path, labels={"folder": "labels", "rename": {"S1": "truth"}})
    assert len(tiles) == 2 * (SIZE // TILE) ** 2
    for tile in tiles:
        assert tile.labels.dtype == np.int16
        np.testing.assert_array_equal(tile.labels, labels[tile.row:tile.row + TILE, tile.col:tile.col + TILE])


def test_a_folder_alone_looks_for_the_scenes_own_file_name(tmp_path):
    write_scene(tmp_path)
    write_labels(tmp_path / "labels" / "scene_S1.tif", position_labels())
    assert all(tile.labels is not None for tile in tiles_of(tmp_path, labels="labels"))


def test_tiles_without_the_option_carry_no_labels(tmp_path):
    write_scene(tmp_path)
    assert all(tile.labels is None for tile in tiles_of(tmp_path))


def test_a_label_raster_of_another_size_is_refused_with_one_line(tmp_path):
    write_scene(tmp_path)
    write_labels(tmp_path / "labels" / "scene_S1.tif", np.zeros((SIZE, SIZE + 1), dtype=np.int16))
    with pytest.raises(UserError, match=r"dataset\.labels: scene_S1\.tif \(96x97.*not on the grid of scene_S1\.tif "
                                        r"\(96x96") as raised:
        tiles_of(tmp_path, labels="labels")
    assert "\n" not in str(raised.value)


def test_a_label_raster_shifted_by_one_pixel_is_refused_with_one_line(tmp_path):
    write_scene(tmp_path)
    write_labels(tmp_path / "labels" / "scene_S1.tif", position_labels(),
                 transform=from_origin(500_010, 5_000_000, 10, 10))
    with pytest.raises(UserError, match=r"not on the grid .*corners 1 px apart") as raised:
        tiles_of(tmp_path, labels="labels")
    assert "\n" not in str(raised.value)


def test_the_files_no_data_value_reads_as_not_labelled(tmp_path):
    write_scene(tmp_path)
    raw = np.ones((SIZE, SIZE), dtype=np.uint8)
    raw[:, :10] = 255
    write_labels(tmp_path / "labels" / "scene_S1.tif", raw, nodata=255)
    tile = next(tile for tile in tiles_of(tmp_path, labels="labels") if tile.col == 0)
    assert (tile.labels[:, :10] == -1).all() and (tile.labels[:, 10:] == 1).all()


def test_a_scene_without_a_label_file_carries_none_and_is_named_in_a_note(tmp_path):
    write_scene(tmp_path)
    rng = np.random.default_rng(4)
    write_geotiff(tmp_path / "other_S1.tif", [speckled_db(rng, (SIZE, SIZE), -11.0),
                                              speckled_db(rng, (SIZE, SIZE), -18.0)])
    write_labels(tmp_path / "labels" / "scene_S1.tif", position_labels())
    settings = dataset_settings(tmp_path, tile_size=TILE, max_tiles=None, min_valid_fraction=0.0)
    with pytest.warns(UserWarning, match="no label file for other_S1"):
        tiles = list(GeoTiffDataset(settings, paths=["scene_S1.tif", "other_S1.tif"], labels="labels").tiles())
    assert {tile.scene: tile.labels is not None for tile in tiles} == {"scene_S1": True, "other_S1": False}


def test_no_label_file_for_any_scene_is_one_line_saying_where_it_looked(tmp_path):
    write_scene(tmp_path)
    (tmp_path / "labels").mkdir()
    with pytest.raises(UserError, match=r"no label file for any scene \(looked for .*labels/scene_LabelHand\.tif\)"):
        tiles_of(tmp_path, labels={"folder": "labels", "rename": {"S1": "LabelHand"}})


@pytest.mark.parametrize("option", [["labels"], {"path": "labels"}, {"folder": "labels", "rename": ["S1"]}])
def test_a_malformed_labels_option_is_one_line_with_an_example(tmp_path, option):
    write_scene(tmp_path)
    (tmp_path / "labels").mkdir()
    with pytest.raises(UserError, match=r"dataset\.labels.*e\.g\. labels: \{folder: labels, rename:"):
        tiles_of(tmp_path, labels=option)


def test_a_missing_labels_folder_is_one_line(tmp_path):
    write_scene(tmp_path)
    with pytest.raises(UserError, match=r"dataset\.labels: folder .*nowhere not found"):
        tiles_of(tmp_path, labels="nowhere")


def test_the_shipped_labels_are_those_of_the_test_chips_and_no_training_chip():
    chips = {path.name.replace("S1Hand", "LabelHand") for path in TEST_CHIPS.glob("*.tif")}
    shipped = {path.name for path in (TEST_CHIPS / "labels").iterdir()}
    assert shipped == chips
    training = {path.name.replace("S1Hand", "LabelHand")
                for path in (SHIPPED_DATA / "train").rglob("*.tif")}
    assert not shipped & training


def test_every_default_test_tile_carries_its_hand_labels(tmp_path):
    settings = dataset_settings(tmp_path, tile_size=256, max_tiles=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiles = list(GeoTiffDataset(settings, paths=[str(TEST_CHIPS)], bands={"VV": 1, "VH": 2},
                                    labels=SHIPPED_LABELS).tiles())
    assert len(tiles) == 24 and all(tile.labels is not None and tile.labels.shape == (256, 256) for tile in tiles)
    with rasterio.open(TEST_CHIPS / "labels" / "India_900498_LabelHand.tif") as raster:
        india = raster.read(1)
    tile = next(tile for tile in tiles if tile.tile_id == "India_900498_S1Hand:VH:r256:c0:256")
    np.testing.assert_array_equal(tile.labels, india[256:, :256])


def test_one_file_per_polarisation_takes_the_label_named_after_the_scene(tmp_path):
    rng = np.random.default_rng(5)
    for pol, mean_db in (("VV", -11.0), ("VH", -18.0)):
        write_geotiff(tmp_path / f"patch_{pol}.tif", [speckled_db(rng, (SIZE, SIZE), mean_db)])
    labels = position_labels()
    write_labels(tmp_path / "labels" / "patch.tif", labels)
    settings = dataset_settings(tmp_path, tile_size=TILE, max_tiles=None, min_valid_fraction=0.0)
    tiles = list(GeoTiffDataset(settings, paths=["patch_VV.tif", "patch_VH.tif"], per_polarisation=True,
                                labels="labels").tiles())
    assert tiles and all(np.array_equal(tile.labels, labels[tile.row:tile.row + TILE, tile.col:tile.col + TILE])
                         for tile in tiles)
