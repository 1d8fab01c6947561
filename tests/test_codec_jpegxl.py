"""Specification of the `jpegxl` codec plugin (16-bit samples, Butteraugli distance as the rate knob)."""

from __future__ import annotations

import numpy as np
import pytest
from harness_codecs.jpegxl import JpegXl

from tests.codec_helpers import (
    noise_tile,
    psnr,
    rates,
    round_trip,
    speckled_tile,
)

pytestmark = pytest.mark.skipif(bool(JpegXl.unavailable), reason=str(JpegXl.unavailable))

HALF_16_BIT_STEP = 0.5 / 65535 + float(np.finfo(np.float32).eps)


def test_distance_0_is_lossless_up_to_the_16_bit_quantization():
    tile = speckled_tile(size=64)

    error = np.abs(round_trip(JpegXl(distance=0), tile).astype(np.float64) - tile)

    assert error.max() <= HALF_16_BIT_STEP


@pytest.mark.parametrize("distance", [0, 1.0, 4])
def test_decoded_tile_is_float32_of_the_tile_shape(distance):
    decoded = round_trip(JpegXl(distance=distance), noise_tile((17, 31)))

    assert decoded.dtype == np.float32
    assert decoded.shape == (17, 31)


def test_lossy_stream_is_a_bare_codestream():
    assert JpegXl(distance=1).encode(speckled_tile(size=64)).startswith(b"\xff\x0a")


def test_rate_falls_and_psnr_falls_as_the_distance_grows():
    tile = speckled_tile()
    distances = [0, 0.5, 1, 2, 4, 8]

    achieved = rates(JpegXl, "distance", distances, tile)
    quality = [psnr(tile, round_trip(JpegXl(distance=d), tile)) for d in distances[1:]]

    assert achieved == sorted(achieved, reverse=True) and len(set(achieved)) == len(achieved)
    assert quality == sorted(quality, reverse=True)


@pytest.mark.parametrize(("data", "shape"), [(b"\xff\x0a garbage", (17, 31)), (b"not jxl", (17, 31))])
def test_corrupt_stream_raises_value_error(data, shape):
    with pytest.raises(ValueError, match="jpegxl"):
        JpegXl(distance=1).decode(data, shape)


def test_stream_of_another_shape_raises_value_error():
    stream = JpegXl(distance=1).encode(noise_tile((17, 31)))

    with pytest.raises(ValueError, match="the tile needs uint16"):
        JpegXl(distance=1).decode(stream, (31, 17))


@pytest.mark.parametrize("distance", [-0.1, 25.5, True, "1", None])
def test_distance_outside_0_to_25_raises_naming_the_option(distance):
    with pytest.raises(ValueError, match=r"distance=.*accepted"):
        JpegXl(distance=distance)
