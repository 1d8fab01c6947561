"""Specification of the shipped variable-rate checkpoint on the real test chips: what it was trained on,
that its rate does not depend on how the same pixels are tiled, and that quality buys bits."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import rasterio
from harness_codecs._autoencoder.runtime.checkpoint import load_checkpoint
from harness_codecs._autoencoder.runtime.entropy_stream import format_version
from harness_codecs._autoencoder.training.data import build_data_split, load_training_data
from harness_codecs._autoencoder.training.overlap import TestSet, check_no_overlap
from harness_codecs._autoencoder.model.autoencoder import STRIDE
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder

from harness import BenchmarkContext
from harness.sar import normalize_db
from tests.conftest import NORMALIZATION, SHIPPED_DATA

REPOSITORY = Path(__file__).resolve().parents[1]
CHECKPOINT = REPOSITORY / "checkpoints" / "autoencoder-gdn-dct-small-checkerboard.pt"
LIGHT_CHECKPOINT = REPOSITORY / "checkpoints" / "autoencoder-gdn-dct-light-checkerboard.pt"
SHARED_OMBRIA = REPOSITORY.parent / "shared" / "data" / "s1_patches" / "ombria_vv_8bit"
TEST_CHIP = SHIPPED_DATA / "test" / "sen1floods11" / "USA_905409_S1Hand.tif"


@pytest.fixture(scope="module")
def chip() -> np.ndarray:
    """The VV band of a real 512x512 test chip, normalized as the benchmark does."""
    with rasterio.open(TEST_CHIP) as raster:
        return normalize_db(raster.read(1).astype(np.float64), NORMALIZATION["VV"]).astype(np.float32)


def bpp_when_tiled(codec: CheckerboardAutoencoder, image: np.ndarray, size: int) -> float:
    tiles = [image[row:row + size, col:col + size] for row in range(0, image.shape[0], size)
             for col in range(0, image.shape[1], size)]
    return 8 * sum(len(stream) for stream in codec.encode_batch(tiles)) / image.size


@pytest.mark.parametrize("quality", [1, 6])
def test_the_same_pixels_cost_about_the_same_rate_whatever_the_tile_size(chip, quality):
    codec = CheckerboardAutoencoder(checkpoint=str(CHECKPOINT), quality=quality)

    rates = {size: bpp_when_tiled(codec, chip, size) for size in (128, 256, 512)}

    assert rates[512] <= rates[256] * 1.03 and rates[256] <= rates[128] * 1.03  # larger tiles never cost much more
    assert rates[128] <= rates[512] * 1.15                                   # and smaller ones not much more either


def test_a_variable_rate_codecs_stream_version_is_the_format_its_header_carries(chip):
    """The format with band shifts, or for a tile whose bands share one shift (a small one at a low rate) its
    one-shift form."""
    codec = CheckerboardAutoencoder(checkpoint=str(LIGHT_CHECKPOINT), quality=0)
    one_shift = format_version(variable_rate=True, tile_byte=True, refined=True, banded=False, integer_prior=True)
    assert codec.encode(chip[:64, :64])[0] in {codec.stream_version, one_shift}


@pytest.mark.parametrize("checkpoint", [CHECKPOINT, LIGHT_CHECKPOINT], ids=["small", "light"])
def test_a_higher_quality_spends_more_bits_on_real_pixels(chip, checkpoint):
    rates = [bpp_when_tiled(CheckerboardAutoencoder(checkpoint=str(checkpoint), quality=quality), chip[:256, :256], 256)
             for quality in (0, 2.5, 5, 8)]

    assert rates == sorted(rates) and rates[-1] > 4 * rates[0]


@pytest.fixture(scope="module")
def training_split():
    """The shipped model's training and validation data, rebuilt from the provenance its checkpoint records."""
    checkpoint = load_checkpoint(CHECKPOINT)
    context = BenchmarkContext.load(REPOSITORY / checkpoint.training["config"])
    data = load_training_data(REPOSITORY / checkpoint.training["data"], context)
    assert context.path.name == "benchmarks-real.yaml" and data.path.name == "training.yaml"
    return build_data_split(data, context, checkpoint.training["seed"], checkpoint.training["patch_size"],
                            checkpoint.training["validation_patches"], STRIDE)


@pytest.mark.parametrize("benchmark", ["benchmarks-real.yaml", "benchmarks.yaml"])
def test_the_shipped_model_was_trained_on_real_data_that_the_real_test_sets_do_not_hold(training_split, benchmark):
    context = BenchmarkContext.load(REPOSITORY / benchmark)
    tiles = context.test_tiles()
    check_no_overlap(training_split, TestSet.of(context, tiles))  # raises on a shared scene or tile
    assert not {tile.scene for tile in tiles} & training_split.scenes


SHIPPED_CHECKPOINTS = sorted(path for path in (REPOSITORY / "checkpoints").glob("*.pt")
                             if not path.name.endswith(".last.pt") and "-stage" not in path.name)
"""Training by-products (last states, stages) are never shipped (.gitignore)."""


@pytest.mark.parametrize("path", SHIPPED_CHECKPOINTS, ids=lambda path: path.name)
def test_every_shipped_checkpoint_file_is_8_mb_or_less(path):
    assert path.stat().st_size <= 8_000_000


def test_the_light_model_keeps_the_seeds_budget_in_a_file_under_8_mb():
    checkpoint = load_checkpoint(LIGHT_CHECKPOINT)
    complexity = CheckerboardAutoencoder(checkpoint=str(LIGHT_CHECKPOINT), quality=0).complexity()

    assert checkpoint.spec.preset == "gdn-dct-light" and checkpoint.weight_format == "int8"
    assert LIGHT_CHECKPOINT.stat().st_size <= 8_000_000
    assert complexity.parameters <= 5_000_000 and complexity.decode_macs_per_pixel <= 20_000


@pytest.mark.skipif(not SHARED_OMBRIA.is_dir(), reason="the light model's OMBRIA training patches are not here")
@pytest.mark.parametrize("benchmark", ["benchmarks-real.yaml", "benchmarks.yaml"])
def test_the_light_model_was_trained_on_data_that_the_real_test_sets_do_not_hold(benchmark):
    checkpoint = load_checkpoint(LIGHT_CHECKPOINT)
    context = BenchmarkContext.load(REPOSITORY / checkpoint.training["config"])
    data = load_training_data(REPOSITORY / checkpoint.training["data"], context)
    split = build_data_split(data, context, checkpoint.training["seed"], checkpoint.training["patch_size"],
                             checkpoint.training["validation_patches"], STRIDE)
    tested = BenchmarkContext.load(REPOSITORY / benchmark)
    tiles = tested.test_tiles()

    assert data.path.name == "training-ombria.yaml"
    check_no_overlap(split, TestSet.of(tested, tiles))  # raises on a shared scene or tile
    assert not {tile.scene for tile in tiles} & split.scenes


@pytest.mark.parametrize("benchmark", ["benchmarks-real.yaml", "benchmarks.yaml"])
def test_the_light_models_gain_tilts_were_chosen_on_chips_that_the_real_test_sets_do_not_hold(benchmark):
    """Stage 8 tilted the gains by what ``benchmarks/gain_tilt.py`` measured on these training chips."""
    records = [load_checkpoint(LIGHT_CHECKPOINT).training]
    while "started_from" in records[-1]:  # the stages after the tilts record the one they started from
        records.append(records[-1]["started_from"])
    tilts = next(record["gain_tilts"]["tilts"] for record in records if "gain_tilts" in record)
    chosen_on = {tile.scene for name in ("gain_tilt_spain.yaml", "gain_tilt_ssl4eo.yaml")
                 for tile in BenchmarkContext.load(REPOSITORY / "examples" / name).test_tiles()}
    tested = {tile.scene for tile in BenchmarkContext.load(REPOSITORY / benchmark).test_tiles()}

    assert len(tilts) == 9 and any(tilts)
    assert chosen_on and not chosen_on & tested


def test_the_scale_shift_saves_bytes_of_the_shipped_model_at_its_lowest_level_on_real_pixels(chip):
    codec = CheckerboardAutoencoder(checkpoint=str(LIGHT_CHECKPOINT), quality=0)
    unshifted = copy.copy(codec)
    unshifted.coder = codec.coder.without_scale_shift()  # the encoder as it was before the shift: format 6
    tiles = [chip[:256, :256], chip[256:, 256:]]

    with_shift, without = (sum(map(len, variant.encode_batch(tiles))) for variant in (codec, unshifted))

    assert with_shift < 0.95 * without  # its prior's scales are too wide there (-10.4 % on the 24 default tiles)


def test_the_post_filter_brings_the_shipped_models_highest_level_closer_on_real_pixels(chip):
    codec = CheckerboardAutoencoder(checkpoint=str(LIGHT_CHECKPOINT), quality=8)
    unfiltered = copy.copy(codec)
    unfiltered.coder = codec.coder.without_post_filter()
    tiles = [chip[:256, :256], chip[256:, 256:]]

    def squared_error(variant: CheckerboardAutoencoder) -> float:
        decoded = variant.decode_batch(variant.encode_batch(tiles), [tile.shape for tile in tiles])
        return sum(float(np.sum((tile.astype(np.float64) - out) ** 2)) for tile, out in zip(tiles, decoded))

    assert all(codec.coder.unpacked(stream)[1].post_filter for stream in codec.encode_batch(tiles))
    assert squared_error(codec) < 0.99 * squared_error(unfiltered)  # 1.4 % (0.06 dB) here, 0.08 dB on the default tiles
