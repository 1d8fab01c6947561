"""Specification of the `sperr` codec plugin: SPERR's stream without its header, coded on the declared threads.

What it shares with `sz3` and `zfp` (every pixel within the tolerance, the CRC-32 framing, the streams SPERR itself
could crash on) is specified once for the three in tests/test_error_bounded_codecs.py."""

from __future__ import annotations

import pytest
from harness_codecs._imagecodecs import library
from harness_codecs.sperr import Sperr

from tests.codec_helpers import noise_tile

pytestmark = pytest.mark.skipif(bool(Sperr.unavailable), reason=str(Sperr.unavailable))


def test_after_the_checksum_comes_sperrs_stream_without_its_header():
    tile = noise_tile((17, 31))

    stream = Sperr(tolerance=0.01).encode(tile)

    assert stream[4:] == bytes(library().sperr_encode(tile, 0.01, "pwe", header=False, numthreads=1))


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
