"""Specification shared by the error-bounded codec plugins `sz3`, `sperr` and `zfp`: every pixel within the
tolerance, and a CRC-32 in front of each stream, so that a stream their libraries would crash on raises instead."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from harness_codecs.sperr import Sperr
from harness_codecs.sz3 import Sz3
from harness_codecs.zfp import Zfp

from tests.codec_helpers import noise_tile, round_trip, speckled_tile

CODECS = (Sz3, Sperr, Zfp)
TOLERANCES = {
    "sz3": [0.001, 0.01, 0.05, 0.3],
    "sperr": [0.0003, 0.01, 0.07, 0.3, 1.0],
    "zfp": [0.0003, 0.01, 0.07, 0.3, 1.0],
}
GARBAGE = {
    "sz3": b"\x00" * 4 + b"not an SZ3 stream",
    "sperr": b"\x00" * 4 + b"not a SPERR stream",
    "zfp": b"\x00" * 8 + b"not a ZFP stream",  # a zero where ZFP's stream keeps its tolerance, too
}


def each_codec(cases: dict[str, list] | None = None) -> list:
    """One case per codec (or per codec and each of its ``cases``), skipped where this imagecodecs build lacks the
    codec's library."""
    params = []
    for codec_class in CODECS:
        skip = pytest.mark.skipif(bool(codec_class.unavailable), reason=str(codec_class.unavailable))
        if cases is None:
            params.append(pytest.param(codec_class, id=codec_class.name, marks=skip))
        else:
            params += [pytest.param(codec_class, case, id=f"{codec_class.name}-{case}", marks=skip)
                       for case in cases[codec_class.name]]
    return params


@pytest.mark.parametrize("codec_class, tolerance", each_codec(TOLERANCES))
def test_every_pixel_is_within_the_tolerance(codec_class, tolerance):
    tile = speckled_tile()

    error = np.abs(round_trip(codec_class(tolerance=tolerance), tile).astype(np.float64) - tile)

    assert error.max() <= tolerance


@pytest.mark.parametrize("codec_class", each_codec())
def test_the_stream_opens_with_a_crc32_of_the_shape_and_the_rest(codec_class):
    stream = codec_class(tolerance=0.01).encode(noise_tile((17, 31)))

    expected = zlib.crc32(stream[4:], zlib.crc32((17).to_bytes(4, "big") + (31).to_bytes(4, "big")))
    assert int.from_bytes(stream[:4], "big") == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_shape"])
@pytest.mark.parametrize("codec_class", each_codec())
def test_a_stream_the_library_would_crash_on_or_read_past_raises_value_error_instead(codec_class, damage):
    stream = codec_class(tolerance=0.01).encode(noise_tile((8, 8)))
    data, shape = {
        "garbage": (GARBAGE[codec_class.name], (8, 8)),
        "truncated": (stream[:-3], (8, 8)),
        "empty": (b"", (8, 8)),
        "other_shape": (stream, (16, 16)),
    }[damage]

    with pytest.raises(ValueError, match="CRC-32"):
        codec_class(tolerance=0.01).decode(data, shape)
