"""Specification of the `lerc` codec plugin, and of how every imagecodecs plugin behaves without the library."""

from __future__ import annotations

import numpy as np
import pytest
from harness_codecs.lerc import Lerc

from tests.codec_helpers import (
    noise_tile,
    psnr,
    rates,
    round_trip,
    speckled_tile,
)

pytestmark = pytest.mark.skipif(bool(Lerc.unavailable), reason=str(Lerc.unavailable))

FLOAT32_EPS = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("max_error", [0.001, 0.01, 0.05, 0.2])
def test_every_pixel_is_within_max_error(max_error):
    tile = speckled_tile()

    error = np.abs(round_trip(Lerc(max_error=max_error), tile).astype(np.float64) - tile)

    assert error.max() <= max_error + FLOAT32_EPS


def test_rate_falls_and_psnr_falls_as_max_error_grows():
    tile = speckled_tile()
    errors = [0.002, 0.01, 0.05, 0.2]

    achieved = rates(Lerc, "max_error", errors, tile)
    quality = [psnr(tile, round_trip(Lerc(max_error=e), tile)) for e in errors]

    assert achieved == sorted(achieved, reverse=True) and len(set(achieved)) == len(achieved)
    assert quality == sorted(quality, reverse=True)


def test_a_flat_tile_costs_almost_nothing():
    tile = np.full((256, 256), 0.5, dtype=np.float32)

    assert 8 * len(Lerc(max_error=0.01).encode(tile)) / tile.size < 0.02


def test_corrupt_blob_raises_value_error():
    with pytest.raises(ValueError, match="lerc"):
        Lerc(max_error=0.01).decode(b"not a lerc blob", (4, 4))


def test_blob_of_another_shape_raises_value_error():
    stream = Lerc(max_error=0.01).encode(noise_tile((8, 8)))

    with pytest.raises(ValueError, match="claims 8x8 pixels of depth 1, the tile is 4x16"):
        Lerc(max_error=0.01).decode(stream, (4, 16))


@pytest.mark.parametrize("field, value", [(14, 1_000_000), (22, 65_536)], ids=["rows", "depth"])
def test_a_header_claiming_a_huge_raster_is_refused_before_decoding(field, value):
    """Damaged LERC headers asked for 16 GiB to 407 TiB: rows at byte 14, depth at byte 22 of a version 4 blob."""
    stream = Lerc(max_error=0.01).encode(noise_tile((8, 8)))
    bomb = stream[:field] + value.to_bytes(4, "little") + stream[field + 4:]
    with pytest.raises(ValueError, match="the blob claims"):
        Lerc(max_error=0.01).decode(bomb, (8, 8))


@pytest.mark.parametrize("max_error", [0, -0.1, 1.5, True, "0.01", None])
def test_max_error_outside_0_to_1_raises_naming_the_option(max_error):
    with pytest.raises(ValueError, match=r"max_error=.*accepted"):
        Lerc(max_error=max_error)
