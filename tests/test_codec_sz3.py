"""Specification of the `sz3` codec plugin: error-bounded, and safe against streams SZ3 itself would crash on."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from harness_codecs.sz3 import Sz3

from tests.codec_helpers import noise_tile, round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(Sz3.unavailable), reason=str(Sz3.unavailable))


@pytest.mark.parametrize("tolerance", [0.001, 0.01, 0.05, 0.3])
def test_every_pixel_is_within_the_tolerance(tolerance):
    tile = speckled_tile()

    error = np.abs(round_trip(Sz3(tolerance=tolerance), tile).astype(np.float64) - tile)

    assert error.max() <= tolerance


def test_stream_opens_with_a_crc32_of_the_shape_and_the_sz3_payload():
    tile = noise_tile((17, 31))

    stream = Sz3(tolerance=0.01).encode(tile)

    expected = zlib.crc32(stream[4:], zlib.crc32((17).to_bytes(4, "big") + (31).to_bytes(4, "big")))
    assert int.from_bytes(stream[:4], "big") == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_shape"])
def test_a_stream_sz3_would_crash_on_raises_value_error_instead(damage):
    stream = Sz3(tolerance=0.01).encode(noise_tile((8, 8)))
    data, shape = {
        "garbage": (b"\x00" * 4 + b"not an SZ3 stream", (8, 8)),
        "truncated": (stream[:-3], (8, 8)),
        "empty": (b"", (8, 8)),
        "other_shape": (stream, (16, 16)),
    }[damage]

    with pytest.raises(ValueError, match="CRC-32"):
        Sz3(tolerance=0.01).decode(data, shape)
