"""Specification of the `avif` codec plugin (10/12-bit monochrome AVIF, libavif quality as the rate knob)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from harness_codecs.avif import Avif

from tests.codec_helpers import (
    noise_tile,
    psnr,
    rates,
    round_trip,
    speckled_tile,
)

pytestmark = pytest.mark.skipif(bool(Avif.unavailable), reason=str(Avif.unavailable))


def av1_config(stream: bytes) -> int:
    """The av1C flags byte: high_bitdepth (0x40), twelve_bit (0x20), monochrome (0x10), subsampling ..."""
    return stream[stream.index(b"av1C") + 6]


@pytest.mark.parametrize("bits", [10, 12])
def test_quality_100_is_lossless_up_to_the_sample_quantization(bits):
    tile = speckled_tile(size=64)

    error = np.abs(round_trip(Avif(quality=100, bits=bits), tile).astype(np.float64) - tile)

    assert error.max() <= 0.5 / (2**bits - 1) + 1e-6


@pytest.mark.parametrize(("bits", "depth_flags"), [(10, 0x40), (12, 0x60)])
@pytest.mark.parametrize("quality", [60, 100])
def test_the_stream_is_a_monochrome_avif_file_of_the_chosen_depth(quality, bits, depth_flags):
    stream = Avif(quality=quality, bits=bits).encode(speckled_tile(size=64))

    assert stream[4:12] == b"ftypavif"
    assert av1_config(stream) & 0x70 == depth_flags | 0x10
    assert b"Exif" not in stream[:400] and b"mime" not in stream[:400]


@pytest.mark.parametrize("bits", [10, 12])
def test_qualities_20_to_95_span_the_rates_from_under_0_25_to_over_4_bpp(bits):
    tile = speckled_tile()

    lowest, highest = rates(lambda quality: Avif(quality=quality, bits=bits), "quality", [20, 95], tile)

    assert lowest < 0.25 and highest > 4


def test_12_bits_are_finer_than_10_bits_when_lossless():
    tile = speckled_tile(size=64)

    assert psnr(tile, round_trip(Avif(quality=100, bits=12), tile)) > psnr(
        tile, round_trip(Avif(quality=100, bits=10), tile)) + 10


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("quality", [60, 100])
def test_pillow_decodes_the_stream_to_the_same_image(quality, bits):
    image_module = pytest.importorskip("PIL.Image")
    if "AVIF" not in image_module.registered_extensions().values():
        pytest.skip("this Pillow has no AVIF plugin")
    tile = speckled_tile(size=64)
    stream = Avif(quality=quality, bits=bits).encode(tile)

    with image_module.open(io.BytesIO(stream)) as image:
        independent = np.asarray(image.convert("L"), dtype=np.float64) / 255  # Pillow decodes to 8 bits

    assert np.abs(independent - Avif(quality=quality, bits=bits).decode(stream, tile.shape)).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("bits", [10, 12])
def test_the_decoder_reads_the_bit_depth_from_the_stream(bits):
    tile = speckled_tile(size=64)
    stream = Avif(quality=100, bits=bits).encode(tile)

    other = Avif(quality=100, bits=22 - bits)

    assert np.array_equal(other.decode(stream, tile.shape), Avif(quality=100, bits=bits).decode(stream, tile.shape))


def test_a_heif_file_of_another_brand_is_refused():
    stream = Avif(quality=60).encode(speckled_tile(size=64))

    with pytest.raises(ValueError, match="not an AVIF file"):
        Avif(quality=60).decode(stream.replace(b"ftypavif", b"ftypheic", 1), (64, 64))


def test_a_file_claiming_a_huge_image_is_refused_before_decoding():
    """A 7 kB file claiming 16384 x 16384 cost 981 MB in libavif; its ispe box says so before any decoding."""
    stream = Avif(quality=60).encode(noise_tile((17, 31)))
    extents = stream.find(b"ispe") + 8
    bomb = stream[:extents] + (16384).to_bytes(4, "big") * 2 + stream[extents + 8:]
    with pytest.raises(ValueError, match="claims a 16384x16384 image"):
        Avif(quality=60).decode(bomb, (17, 31))
