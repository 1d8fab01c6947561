"""Specification of the `quantize` and `quantize_zlib` codec plugins."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pluggy
import pytest
from harness_codecs import quantize
from harness_codecs.quantize import UniformQuantizer, ZlibQuantizer

from harness import hookspecs
from harness.api import PROJECT_NAME
from tests.codec_helpers import noise_tile, psnr, round_trip, speckled_tile

CODECS = [UniformQuantizer, ZlibQuantizer]
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("bits", [1, 3, 8, 13, 16])
@pytest.mark.parametrize("shape", [(17, 31), (1, 1), (3, 5)])
def test_packed_stream_is_one_header_byte_plus_bits_per_pixel_rounded_up(bits, shape):
    stream = UniformQuantizer(bits=bits).encode(noise_tile(shape))

    assert len(stream) == 1 + math.ceil(bits * shape[0] * shape[1] / 8)


@pytest.mark.parametrize("codec_class", CODECS)
@pytest.mark.parametrize("bits", [1, 2, 5, 8, 12, 16])
def test_every_pixel_is_reconstructed_within_half_a_step(codec_class, bits):
    tile = noise_tile((17, 31))
    step = 1.0 / (2**bits - 1)

    error = np.abs(round_trip(codec_class(bits=bits), tile).astype(np.float64) - tile)

    assert error.max() <= step / 2 + FLOAT32_EPS


@pytest.mark.parametrize("codec_class", CODECS)
@pytest.mark.parametrize("bits", [1, 7, 16])
def test_range_limits_zero_and_one_are_reconstructed_exactly(codec_class, bits):
    tile = np.array([[0.0, 1.0]], dtype=np.float32)

    assert np.array_equal(round_trip(codec_class(bits=bits), tile), tile)


def test_8_bit_psnr_is_within_half_a_db_of_uniform_quantization_theory():
    tile = speckled_tile()
    step = 1.0 / 255
    theory_db = 10.0 * math.log10(12.0 / step**2)

    measured_db = psnr(tile, round_trip(UniformQuantizer(bits=8), tile))

    assert measured_db == pytest.approx(theory_db, abs=0.5)


@pytest.mark.parametrize("bits", [3, 8, 12])
def test_zlib_variant_reconstructs_the_same_tile_as_the_packed_variant(bits):
    tile = speckled_tile()

    packed = round_trip(UniformQuantizer(bits=bits), tile)
    deflated = round_trip(ZlibQuantizer(bits=bits), tile)

    assert np.array_equal(deflated, packed)


def test_zlib_variant_uses_fewer_bytes_on_a_tile_with_large_uniform_areas():
    tile = speckled_tile()
    tile[:, : tile.shape[1] // 2] = 0.0

    packed = UniformQuantizer(bits=8).encode(tile)
    deflated = ZlibQuantizer(bits=8).encode(tile)

    assert len(deflated) < len(packed)


@pytest.mark.parametrize(("bits", "dtype"), [(8, np.uint8), (9, np.dtype(">u2"))])
def test_zlib_payload_is_level_9_deflate_of_bytes_up_to_8_bits_and_big_endian_uint16_above(bits, dtype):
    tile = noise_tile((17, 31))
    symbols = np.round(tile.astype(np.float64) * (2**bits - 1)).astype(dtype)

    stream = ZlibQuantizer(bits=bits).encode(tile)

    assert stream == bytes([bits]) + zlib.compress(symbols.tobytes(), 9)


@pytest.mark.parametrize("codec_class", CODECS)
def test_header_bits_disagreeing_with_the_payload_size_raise(codec_class):
    tile = noise_tile((17, 31))
    stream = codec_class(bits=8).encode(tile)

    with pytest.raises(ValueError, match="9-bit"):
        codec_class(bits=8).decode(bytes([9]) + stream[1:], tile.shape)


@pytest.mark.parametrize("codec_class", CODECS)
def test_stream_with_trailing_bytes_raises(codec_class):
    tile = noise_tile((17, 31))
    stream = codec_class(bits=8).encode(tile)

    with pytest.raises(ValueError):
        codec_class(bits=8).decode(stream + b"\x00", tile.shape)


def test_zlib_payload_with_symbols_wider_than_the_header_bits_raises():
    tile = np.ones((17, 31), dtype=np.float32)
    stream = ZlibQuantizer(bits=8).encode(tile)

    with pytest.raises(ValueError, match="wider"):
        ZlibQuantizer(bits=8).decode(bytes([7]) + stream[1:], tile.shape)


@pytest.mark.parametrize("codec_class", CODECS)
@pytest.mark.parametrize("header_bits", [0, 17, 255])
def test_header_bits_outside_1_to_16_raise(codec_class, header_bits):
    tile = noise_tile((17, 31))
    stream = codec_class(bits=8).encode(tile)

    with pytest.raises(ValueError, match="bit depth from 1 to 16"):
        codec_class(bits=8).decode(bytes([header_bits]) + stream[1:], tile.shape)


def test_plugin_registers_both_codecs_under_their_names():
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(quantize)

    registered = {codec.name: codec for batch in manager.hook.harness_codecs() for codec in batch}

    assert registered == {"quantize": UniformQuantizer, "quantize_zlib": ZlibQuantizer}


def test_a_zlib_bomb_is_refused_without_inflating_what_it_claims():
    """100 MB of zeros deflate to 100 kB; the decoder must stop one byte past the tile's 527 symbols."""
    import tracemalloc

    deflater, megabyte = zlib.compressobj(9), bytes(1_000_000)
    bomb = bytes([8]) + b"".join(deflater.compress(megabyte) for _ in range(100)) + deflater.flush()
    tracemalloc.start()
    with pytest.raises(ValueError, match="more than the 527 bytes"):
        ZlibQuantizer(bits=8).decode(bomb, (17, 31))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10_000_000
