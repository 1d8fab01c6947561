"""Specification of the `zfp` codec plugin: fixed-accuracy ZFP with a tolerance that is not rounded to a power of two.

What it shares with `sz3` and `sperr` (every pixel within the tolerance, the CRC-32 framing, the streams ZFP itself
would read past) is specified once for the three in tests/test_error_bounded_codecs.py."""

from __future__ import annotations

import numpy as np
import pytest
from harness_codecs._imagecodecs import library
from harness_codecs.zfp import Zfp

from tests.codec_helpers import noise_tile, psnr, rates, round_trip, speckled_tile

pytestmark = pytest.mark.skipif(bool(Zfp.unavailable), reason=str(Zfp.unavailable))


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
