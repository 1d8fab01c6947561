"""Specification of the `baq` codec plugin (block-adaptive quantization with Gaussian Lloyd-Max levels)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.plugins import build_registry
from harness_codecs.baq import LLOYD_MAX, BlockAdaptiveQuantizer
from tests.codec_helpers import noise_tile, psnr, round_trip, speckled_tile


def expected_bytes(shape: tuple[int, int], bits: int, block: int) -> int:
    """3 stream bytes, then per block a 4-byte header and its codes padded to a byte."""
    block_sides = [[min(block, side - start) for start in range(0, side, block)] for side in shape]
    return 3 + sum(4 + math.ceil(bits * h * w / 8) for h in block_sides[0] for w in block_sides[1])


def test_2_bit_levels_are_max_s_gaussian_lloyd_max_values():
    levels, thresholds = LLOYD_MAX[2]

    assert levels == pytest.approx([-1.510, -0.4528, 0.4528, 1.510], abs=1e-3)
    assert thresholds == pytest.approx([-0.9816, 0.0, 0.9816], abs=1e-3)


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_levels_are_symmetric_increasing_and_thresholds_are_their_midpoints(bits):
    levels, thresholds = LLOYD_MAX[bits]

    assert len(levels) == 2**bits
    assert np.allclose(levels, -levels[::-1], atol=1e-9)
    assert np.all(np.diff(levels) > 0)
    assert np.allclose(thresholds, (levels[:-1] + levels[1:]) / 2)


@pytest.mark.parametrize("bits", [2, 3, 5])
@pytest.mark.parametrize(("shape", "block"), [((256, 256), 32), ((17, 31), 8), ((40, 33), 16), ((5, 7), 32)])
def test_stream_size_is_exactly_the_header_plus_block_headers_plus_packed_codes(bits, shape, block):
    stream = BlockAdaptiveQuantizer(bits=bits, block=block).encode(noise_tile(shape))

    assert len(stream) == expected_bytes(shape, bits, block)


def test_every_further_bit_gains_over_3_db():
    tile = speckled_tile()

    quality = [psnr(tile, round_trip(BlockAdaptiveQuantizer(bits=bits), tile)) for bits in (2, 3, 4, 5)]

    assert min(np.diff(quality)) > 3.0


def test_a_gaussian_block_is_quantized_with_about_the_lloyd_max_error():
    """Max (1960): the 2-bit Gaussian Lloyd-Max quantizer has MSE 0.1175 of the variance."""
    samples = np.random.default_rng(0).normal(0.5, 0.05, size=(256, 256)).astype(np.float32)

    decoded = round_trip(BlockAdaptiveQuantizer(bits=2, block=256), samples)

    assert np.mean((decoded - samples.astype(np.float64)) ** 2) / 0.05**2 == pytest.approx(0.1175, rel=0.03)


def test_a_flat_block_is_reconstructed_at_its_float16_mean():
    tile = np.full((32, 32), 0.3, dtype=np.float32)

    decoded = round_trip(BlockAdaptiveQuantizer(bits=2), tile)

    assert np.all(decoded == np.float32(np.float16(0.3)))


def test_block_headers_hold_the_float16_mean_and_std_big_endian():
    tile = speckled_tile(size=32)

    stream = BlockAdaptiveQuantizer(bits=4, block=32).encode(tile)

    assert stream[:3] == bytes([4, 0, 32])
    assert np.frombuffer(stream[3:7], dtype=">f2").tolist() == [np.float16(tile.astype(np.float64).mean()),
                                                                np.float16(tile.astype(np.float64).std())]


@pytest.mark.parametrize("damage", ["trailing", "bad_bits"])
def test_a_stream_with_trailing_bytes_or_a_bit_count_no_encoder_writes_raises_value_error(damage):
    stream = BlockAdaptiveQuantizer(bits=3, block=8).encode(noise_tile((17, 31)))
    data = {"trailing": stream + b"\0", "bad_bits": b"\x07" + stream[1:]}[damage]

    with pytest.raises(ValueError, match="baq"):
        BlockAdaptiveQuantizer(bits=3, block=8).decode(data, (17, 31))


@pytest.mark.parametrize(("field", "value"), [("mean", np.nan), ("mean", np.inf), ("std", np.nan), ("std", -np.inf),
                                             ("std", -0.25)])
def test_a_damaged_block_header_is_refused_instead_of_decoding_to_nan_or_a_bound(field, value):
    """A flipped exponent bit can make a float16 NaN or infinite: its block decoded to NaN (1024 pixels) or to 0/1."""
    stream = bytearray(BlockAdaptiveQuantizer(bits=3, block=32).encode(speckled_tile(size=64)))
    second_block = 3 + 4 + 3 * 32 * 32 // 8
    offset = second_block + (0 if field == "mean" else 2)
    stream[offset:offset + 2] = np.array([value], dtype=">f2").tobytes()

    with pytest.raises(ValueError, match=rf"^baq: the header of the block at row 0, column 32 holds .*{field}="
                                         r".*which no encoder writes; the stream is damaged$"):
        BlockAdaptiveQuantizer(bits=3, block=32).decode(bytes(stream), (64, 64))


def test_harness_registry_lists_baq():
    assert build_registry().codecs["baq"].obj is BlockAdaptiveQuantizer
