"""Specification of the `sperr` codec plugin: error-bounded, and safe against streams SPERR itself could crash on."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from harness_codecs._imagecodecs import library
from harness_codecs.sperr import Sperr

from tests.codec_helpers import noise_tile, round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(Sperr.unavailable), reason=str(Sperr.unavailable))


@pytest.mark.parametrize("tolerance", [0.0003, 0.01, 0.07, 0.3, 1.0])
def test_every_pixel_is_within_the_tolerance(tolerance):
    tile = speckled_tile()

    error = np.abs(round_trip(Sperr(tolerance=tolerance), tile).astype(np.float64) - tile)

    assert error.max() <= tolerance


def test_the_stream_is_a_crc32_of_shape_and_payload_then_sperrs_stream_without_its_header():
    tile = noise_tile((17, 31))

    stream = Sperr(tolerance=0.01).encode(tile)

    expected = zlib.crc32(stream[4:], zlib.crc32((17).to_bytes(4, "big") + (31).to_bytes(4, "big")))
    assert int.from_bytes(stream[:4], "big") == expected
    assert stream[4:] == bytes(library().sperr_encode(tile, 0.01, "pwe", header=False, numthreads=1))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_shape"])
def test_a_stream_sperr_could_crash_on_raises_value_error_instead(damage):
    stream = Sperr(tolerance=0.01).encode(noise_tile((8, 8)))
    data, shape = {
        "garbage": (b"\x00" * 4 + b"not a SPERR stream", (8, 8)),
        "truncated": (stream[:-3], (8, 8)),
        "empty": (b"", (8, 8)),
        "other_shape": (stream, (16, 16)),
    }[damage]

    with pytest.raises(ValueError, match="CRC-32"):
        Sperr(tolerance=0.01).decode(data, shape)


def test_sperr_codes_with_the_threads_the_codec_declares(monkeypatch):
    asked = []
    for name in ("sperr_encode", "sperr_decode"):
        def recording(*args, _library_function=getattr(library(), name), **options):
            asked.append(options.get("numthreads"))
            return _library_function(*args, **options)
        monkeypatch.setattr(library(), name, recording)
    codec = Sperr(tolerance=0.05)

    codec.decode(codec.encode(noise_tile((16, 16))), (16, 16))

    assert asked == [codec.threads, codec.threads] == [1, 1]
