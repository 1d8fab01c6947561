"""Specification of the `htj2k` codec plugin (quantization step as the rate knob, or lossless)."""

from __future__ import annotations

import glymur
import numpy as np
import pytest
from harness_codecs.htj2k import Htj2k

from tests.codec_helpers import speckled_tile

pytestmark = pytest.mark.skipif(bool(Htj2k.unavailable), reason=str(Htj2k.unavailable))


@pytest.mark.parametrize("options, tolerance", [({"lossless": True}, 0.0), ({"qstep": 0.02}, 2.5 / 65535)])
def test_openjpeg_decodes_our_stream_like_our_decoder(tmp_path, options, tolerance):
    # OpenJPEG (through glymur) is a second, independent HTJ2K decoder; irreversible
    # decoders may round the floating-point inverse wavelet differently by a 16-bit step or two.
    tile = speckled_tile(size=64)
    codec = Htj2k(**options)
    stream = codec.encode(tile)
    (tmp_path / "tile.j2k").write_bytes(stream)

    independent = glymur.Jp2k(tmp_path / "tile.j2k")[:] / np.float32(65535)

    np.testing.assert_allclose(independent.astype(np.float32), codec.decode(stream, tile.shape), rtol=0, atol=tolerance)


@pytest.mark.parametrize("options, message", [({}, "qstep=None"), ({"qstep": 0.1, "lossless": True}, "not both")])
def test_a_point_needs_either_a_qstep_or_lossless(options, message):
    with pytest.raises(ValueError, match=message):
        Htj2k(**options)


def test_a_header_claiming_a_huge_image_is_refused_before_decoding():
    """Fuzzing found a 65 kB stream claiming 30000 x 30000 pixels that cost 1.8 GB before the shape check."""
    tile = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    stream = Htj2k(qstep=0.1).encode(tile)
    bomb = stream[:8] + (30000).to_bytes(4, "big") * 2 + stream[16:]
    with pytest.raises(ValueError, match="claims a 30000x30000 image, the tile is 64x64"):
        Htj2k(qstep=0.1).decode(bomb, (64, 64))


@pytest.mark.parametrize("field, offset", [("tile width", 24), ("tile height", 28)])
def test_a_header_giving_tiles_of_size_zero_is_refused_before_decoding(field, offset):
    """The conformance fuzzing found OpenJPH dying of SIGFPE (a division by the tile size) on such a stream."""
    stream = Htj2k(qstep=0.1).encode(np.random.default_rng(0).random((64, 64), dtype=np.float32))
    damaged = stream[:offset] + bytes(4) + stream[offset + 4:]
    with pytest.raises(ValueError, match="tiling is impossible"):
        Htj2k(qstep=0.1).decode(damaged, (64, 64))


def test_a_stream_on_which_openjph_reports_an_error_is_refused_instead_of_decoded_degraded():
    """OpenJPH's errors in imagecodecs' callbacks are only printed ("Exception ignored in ..."), and the decode
    returned a degraded image: 30 of the conformance suite's 200 mutated streams did. Bit 5466 is in the
    code-block data of this tile's stream."""
    stream = bytearray(Htj2k(qstep=0.1).encode(speckled_tile(size=64)))
    stream[5466 // 8] ^= 1 << (5466 % 8)
    with pytest.raises(ValueError, match=r"OpenJPH reported 1 error\(s\) while decoding"):
        Htj2k(qstep=0.1).decode(bytes(stream), (64, 64))


def test_a_stream_that_is_not_a_codestream_is_refused():
    with pytest.raises(ValueError, match="not a raw JPEG 2000 codestream"):
        Htj2k(qstep=0.1).decode(b"garbage", (8, 8))
