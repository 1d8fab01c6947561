"""Specification of the `lerc` codec plugin (LERC's absolute error bound, ``max_error``, as the rate knob)."""

from __future__ import annotations

import numpy as np
import pytest
from harness_codecs.lerc import Lerc

from tests.codec_helpers import noise_tile, round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(Lerc.unavailable), reason=str(Lerc.unavailable))

FLOAT32_EPS = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("max_error", [0.001, 0.01, 0.05, 0.2])
def test_every_pixel_is_within_max_error(max_error):
    tile = speckled_tile()

    error = np.abs(round_trip(Lerc(max_error=max_error), tile).astype(np.float64) - tile)

    assert error.max() <= max_error + FLOAT32_EPS


def test_a_flat_tile_costs_almost_nothing():
    tile = np.full((256, 256), 0.5, dtype=np.float32)

    assert 8 * len(Lerc(max_error=0.01).encode(tile)) / tile.size < 0.02


@pytest.mark.parametrize("field, value", [(14, 1_000_000), (22, 65_536)], ids=["rows", "depth"])
def test_a_header_claiming_a_huge_raster_is_refused_before_decoding(field, value):
    """Damaged LERC headers asked for 16 GiB to 407 TiB: rows at byte 14, depth at byte 22 of a version 4 blob."""
    stream = Lerc(max_error=0.01).encode(noise_tile((8, 8)))
    bomb = stream[:field] + value.to_bytes(4, "little") + stream[field + 4:]
    with pytest.raises(ValueError, match="the blob claims"):
        Lerc(max_error=0.01).decode(bomb, (8, 8))
