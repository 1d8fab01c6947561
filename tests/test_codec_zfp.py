"""Specification of the `zfp` codec plugin: fixed-accuracy ZFP with a tolerance that is not rounded to a power of two."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from harness_codecs._imagecodecs import library
from harness_codecs.zfp import Zfp

from tests.codec_helpers import noise_tile, psnr, rates, round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(Zfp.unavailable), reason=str(Zfp.unavailable))


@pytest.mark.parametrize("tolerance", [0.0003, 0.01, 0.07, 0.3, 1.0])
def test_every_pixel_is_within_the_tolerance(tolerance):
    tile = speckled_tile()

    error = np.abs(round_trip(Zfp(tolerance=tolerance), tile).astype(np.float64) - tile)

    assert error.max() <= tolerance


def test_rate_falls_and_psnr_falls_as_the_tolerance_grows_between_powers_of_two_too():
    """ZFP's own tolerance moves in powers of two (0.26 and 0.3 would give one stream); the codec's does not."""
    tile = speckled_tile()
    tolerances = [0.01, 0.02, 0.05, 0.1, 0.18, 0.26, 0.3, 0.5, 0.7, 1.0]

    achieved = rates(Zfp, "tolerance", tolerances, tile)
    quality = [psnr(tile, round_trip(Zfp(tolerance=t), tile)) for t in tolerances]

    assert achieved == sorted(achieved, reverse=True) and len(set(achieved)) == len(achieved)
    assert quality == sorted(quality, reverse=True)


@pytest.mark.parametrize("tolerance", [0.5, 0.125, 2.0**-10])
def test_at_a_power_of_two_the_payload_is_zfps_own_stream(tolerance):
    """Dividing by a power of two only moves the exponents (the header's smallest coded exponent and each block's
    exponent), so ZFP codes the same bit planes: a stream of the same length that decodes to the same tile."""
    tile = speckled_tile()

    stream = Zfp(tolerance=tolerance).encode(tile)

    own = bytes(library().zfp_encode(tile, level=tolerance, mode="a", header=False, numthreads=1))
    assert np.frombuffer(stream[4:8], "<f4")[0] == tolerance
    assert len(stream) == 8 + len(own)
    assert np.array_equal(Zfp(tolerance=tolerance).decode(stream, tile.shape),
                          library().zfp_decode(own, shape=tile.shape, dtype=np.float32))


def test_stream_opens_with_a_crc32_of_the_shape_and_the_rest():
    stream = Zfp(tolerance=0.01).encode(noise_tile((17, 31)))

    expected = zlib.crc32(stream[4:], zlib.crc32((17).to_bytes(4, "big") + (31).to_bytes(4, "big")))
    assert int.from_bytes(stream[:4], "big") == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_shape"])
def test_a_stream_zfp_would_read_past_raises_value_error_instead(damage):
    stream = Zfp(tolerance=0.01).encode(noise_tile((8, 8)))
    data, shape = {
        "garbage": (b"\x00" * 8 + b"not a ZFP stream", (8, 8)),
        "truncated": (stream[:-3], (8, 8)),
        "empty": (b"", (8, 8)),
        "other_shape": (stream, (16, 16)),
    }[damage]

    with pytest.raises(ValueError, match="CRC-32"):
        Zfp(tolerance=0.01).decode(data, shape)


def test_zfp_codes_with_the_threads_the_codec_declares(monkeypatch):
    asked = []
    for name in ("zfp_encode", "zfp_decode"):
        def recording(*args, _library_function=getattr(library(), name), **options):
            asked.append(options.get("numthreads"))
            return _library_function(*args, **options)
        monkeypatch.setattr(library(), name, recording)
    codec = Zfp(tolerance=0.05)

    codec.decode(codec.encode(noise_tile((16, 16))), (16, 16))

    assert asked == [codec.threads, codec.threads] == [1, 1]
