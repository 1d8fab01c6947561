"""Specification of training packs (`train autoencoder --write-pack FILE`, then `--pack FILE`): a training-data
file's tiles, read and checked where the raster readers are, trained from where they are not."""

from __future__ import annotations

import sys
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.model.autoencoder import STRIDE
from harness_codecs._autoencoder.runtime.checkpoint import load_checkpoint
from harness_codecs._autoencoder.training.data import (
    DataTiles,
    TileOrigin,
    TrainingTile,
    build_data_split,
    load_training_data,
    split_of,
)
from harness_codecs._autoencoder.training.overlap import TestSet
from harness_codecs._autoencoder.training.pack import (
    TrainingPack,
    decode_raster,
    encode_raster,
    file_sha256,
    read_pack,
    scene_rasters,
    write_pack,
)

from harness import BenchmarkContext, UserError

from tests.training_helpers import FAST, REAL_BENCHMARK, TRAINING_DATA, train, write

VV_RANGE = (-25.0, 5.0)
PACKED_DATA = TRAINING_DATA.replace("    tile_size: 112\nvalidation:",
                                    "    tile_size: 112\n    stride: 8\nvalidation:")
"""The training data with overlapping windows: 2 x 2 of 112 px in each 120 px patch."""

SPLIT = {"seed": 0, "patch_size": 64, "validation_patches": 4, "multiple": STRIDE}
FAST_TRAINING = [*FAST, "--steps", "2"]


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """A folder with a training-data file, a benchmark and the pack written from the first against the second."""
    folder = tmp_path_factory.mktemp("pack")
    write(folder, "training.yaml", PACKED_DATA)
    write(folder, "bench.yaml", REAL_BENCHMARK)
    train("--data", str(folder / "training.yaml"), "--config", str(folder / "bench.yaml"), "--patch-size", "64",
          "--write-pack", str(folder / "training.pack"))
    return folder


def tile(db: np.ndarray, row: int = 0, col: int = 0, scene: str = "scene") -> TrainingTile:
    return TrainingTile(db.astype(np.float32), VV_RANGE, TileOrigin(scene, "VV", row, col))


def test_a_pack_holds_the_split_that_its_data_file_gives(packed):
    context = BenchmarkContext.load(packed / "bench.yaml")
    data = load_training_data(packed / "training.yaml", context)
    read = build_data_split(data, context, SPLIT["seed"], SPLIT["patch_size"], SPLIT["validation_patches"], STRIDE)
    from_pack = split_of(read_pack(packed / "training.pack").tiles, "pack", *SPLIT.values())

    assert len(from_pack.train_tiles) == len(read.train_tiles) > 0
    for ours, theirs in zip(from_pack.train_tiles, read.train_tiles):
        assert ours.db_range == theirs.db_range
        np.testing.assert_allclose(ours.db, theirs.db, rtol=2**-11, atol=0)  # float16 rounding, NaN where NaN
    assert torch.equal(from_pack.validation_patches, read.validation_patches)
    assert (from_pack.checksums, from_pack.scenes, from_pack.validation_sources) == \
        (read.checksums, read.scenes, read.validation_sources)


def test_overlapping_windows_of_a_scene_are_stored_once():
    scene = np.random.default_rng(0).normal(-12, 3, (40, 60))
    tiles = [tile(scene[0:32, 0:32]), tile(scene[8:40, 20:52], row=8, col=20), tile(scene[0:32, 28:60], col=28)]

    rasters, windows = scene_rasters(tiles)

    assert len(rasters) == 1 and rasters[0][0].shape == (40, 60)
    for (raster, row, col, height, width), original in zip(windows, tiles):
        np.testing.assert_array_equal(rasters[raster][0][row:row + height, col:col + width], original.db)


def test_windows_whose_pixels_disagree_are_stored_apart():
    scene = np.zeros((32, 48))
    tiles = [tile(scene[:, :32]), tile(scene[:, 16:] + 1.0, col=16)]

    rasters, windows = scene_rasters(tiles)

    assert len(rasters) == 2
    for (raster, row, col, height, width), original in zip(windows, tiles):
        np.testing.assert_array_equal(rasters[raster][0][row:row + height, col:col + width], original.db)


def test_an_image_of_256_grey_levels_is_stored_exactly_with_its_no_data():
    grey = np.random.default_rng(1).integers(0, 255, (64, 64))
    db = (-10.2 + 0.15 * (grey - 120.0)).astype(np.float32)
    db[:5, :7] = np.nan

    encoding, arrays = encode_raster(db)

    assert encoding == "palette"
    np.testing.assert_array_equal(decode_raster(encoding, arrays, ""), db)


def test_a_raster_of_more_values_is_stored_within_float16_rounding():
    db = np.random.default_rng(2).normal(-15, 5, (64, 64)).astype(np.float32)

    encoding, arrays = encode_raster(db)

    assert encoding == "float16"
    np.testing.assert_allclose(decode_raster(encoding, arrays, ""), db, rtol=2**-11, atol=0)


def test_a_checkpoint_trained_from_a_pack_records_the_data_file_of_the_pack(packed):
    output = packed / "model.pt"

    train("--pack", str(packed / "training.pack"), "--config", str(packed / "bench.yaml"), "--output", str(output),
          *FAST_TRAINING)

    record = torch.load(output, weights_only=True)["training"]
    assert record["pack"] == str(packed / "training.pack")
    assert record["pack_provenance"]["data"] == str(packed / "training.yaml")


def test_a_pack_is_refused_for_a_benchmark_it_was_not_checked_against(packed, tmp_path):
    other = tmp_path / "bench.yaml"
    other.write_text(textwrap.dedent(REAL_BENCHMARK).replace("max_tiles: 2", "max_tiles: 3"))

    with pytest.raises(UserError, match="checked against another version of .*bench.yaml"):
        train("--pack", str(packed / "training.pack"), "--config", str(other), *FAST_TRAINING)


def test_training_from_a_pack_refuses_a_tile_of_the_test_set_it_carries(packed, tmp_path):
    pack = read_pack(packed / "training.pack")
    a_training_tile = sorted(pack.tiles.checksums)[0]
    poisoned = replace(pack, test_set=replace(pack.test_set, tiles=(("a test tile", a_training_tile),)))
    write_pack(tmp_path / "poisoned.pack", poisoned)

    with pytest.raises(UserError, match="1 benchmark tile.*a test tile"):
        train("--pack", str(tmp_path / "poisoned.pack"), "--config", str(packed / "bench.yaml"), *FAST_TRAINING)


def test_a_damaged_pack_is_a_one_line_error(packed, tmp_path):
    damaged = tmp_path / "damaged.pack"
    damaged.write_bytes((packed / "training.pack").read_bytes()[:5000])

    with pytest.raises(UserError, match="not a readable training pack") as error:
        read_pack(damaged)
    assert "\n" not in str(error.value)


def test_a_numpy_file_that_is_not_a_pack_is_refused(tmp_path):
    foreign = tmp_path / "tiles.npz"
    with zipfile.ZipFile(foreign, "w") as archive, archive.open("meta.npy", "w") as member:
        np.lib.format.write_array(member, np.array('{"format": "something else"}'))

    with pytest.raises(UserError, match="not a readable training pack"):
        read_pack(foreign)


def test_a_single_numpy_array_is_refused_as_a_pack(tmp_path):
    array = tmp_path / "tiles.npy"
    np.save(array, np.zeros((2, 8, 8), np.float32))

    with pytest.raises(UserError, match="not a readable training pack"):
        read_pack(array)


def test_a_missing_pack_names_the_command_that_writes_one(tmp_path):
    with pytest.raises(UserError, match="--write-pack"):
        read_pack(tmp_path / "missing.pack")


def test_a_pack_and_a_data_file_together_are_refused(packed):
    with pytest.raises(UserError, match="--pack: it holds the training data already"):
        train("--pack", str(packed / "training.pack"), "--data", str(packed / "training.yaml"), *FAST_TRAINING)


def test_a_pack_that_cannot_be_written_is_a_one_line_error(packed, tmp_path):
    (tmp_path / "a file").write_text("")

    with pytest.raises(UserError, match="--write-pack .*a file"):
        train("--data", str(packed / "training.yaml"), "--config", str(packed / "bench.yaml"), "--patch-size", "64",
              "--write-pack", str(tmp_path / "a file" / "training.pack"))


def test_writing_a_pack_needs_a_data_file(tmp_path):
    with pytest.raises(UserError, match="--write-pack: give the training data"):
        train("--write-pack", str(tmp_path / "training.pack"), *FAST_TRAINING)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])])
def test_a_pack_trains_the_light_model_in_bf16_where_no_raster_can_be_read(tmp_path, monkeypatch, device):
    """What the GPU recipe does on a machine without rasterio: the pack is made here from arrays alone, and any
    raster opened while training from it fails the test."""
    if "rasterio" in sys.modules:
        monkeypatch.setattr(sys.modules["rasterio"], "open", lambda *args, **kwargs: pytest.fail("a raster was read"))
    config = write(tmp_path, "bench.yaml", REAL_BENCHMARK)
    rng = np.random.default_rng(0)
    tiles = DataTiles([tile(rng.normal(-12, 3, (128, 128)), scene=f"scene {index}") for index in range(3)],
                      [rng.random((64, 64), dtype=np.float32) for _ in range(2)], ("held out",) * 2,
                      frozenset({"a checksum"}), frozenset({"scene 0", "scene 1", "scene 2"}))
    test_set = TestSet(str(config), frozenset(), frozenset(), ())
    write_pack(tmp_path / "training.pack", TrainingPack(tiles, {"VV": VV_RANGE, "VH": (-32.0, -2.0)}, test_set,
                                                        file_sha256(config), {"data": "arrays"}))

    train("--pack", str(tmp_path / "training.pack"), "--config", str(config), "--output", str(tmp_path / "m.pt"),
          *FAST_TRAINING, "--preset", "gdn-dct-light", "--device", device, "--amp", "bf16")  # the last flag counts

    assert load_checkpoint(tmp_path / "m.pt").step == 2
