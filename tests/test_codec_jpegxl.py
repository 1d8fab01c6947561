"""Specification of the `jpegxl` codec plugin (16-bit samples, Butteraugli distance as the rate knob)."""

from __future__ import annotations

import numpy as np
import pytest
from harness_codecs.jpegxl import JpegXl

from tests.codec_helpers import round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(JpegXl.unavailable), reason=str(JpegXl.unavailable))

HALF_16_BIT_STEP = 0.5 / 65535 + float(np.finfo(np.float32).eps)


def test_distance_0_is_lossless_up_to_the_16_bit_quantization():
    tile = speckled_tile(size=64)

    error = np.abs(round_trip(JpegXl(distance=0), tile).astype(np.float64) - tile)

    assert error.max() <= HALF_16_BIT_STEP


def test_lossy_stream_is_a_bare_codestream():
    assert JpegXl(distance=1).encode(speckled_tile(size=64)).startswith(b"\xff\x0a")
