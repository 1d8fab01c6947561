"""Specification of the `sz3` codec plugin: what follows the checksum is SZ3's own stream.

What it shares with `sperr` and `zfp` (every pixel within the tolerance, the CRC-32 framing, the streams SZ3 itself
would crash on) is specified once for the three in tests/test_error_bounded_codecs.py."""

from __future__ import annotations

import pytest
from harness_codecs._imagecodecs import library
from harness_codecs.sz3 import Sz3

from tests.codec_helpers import noise_tile

pytestmark = pytest.mark.skipif(bool(Sz3.unavailable), reason=str(Sz3.unavailable))


def test_after_the_checksum_comes_sz3s_own_stream():
    tile = noise_tile((17, 31))

    stream = Sz3(tolerance=0.01).encode(tile)

    assert stream[4:] == bytes(library().sz3_encode(tile, mode="abs", abs=0.01))
