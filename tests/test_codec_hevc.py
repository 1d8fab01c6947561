"""Specification of the `hevc` codec plugin (HEVC intra by x265 through libheif/pillow-heif, 10/12-bit monochrome)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from harness_codecs import hevc
from harness_codecs.hevc import Hevc

from harness.testing import unavailable_without
from tests.codec_helpers import noise_tile, rates, round_trip, speckled_tile

needs_pillow_heif = pytest.mark.skipif(bool(Hevc.unavailable), reason=str(Hevc.unavailable))


def hvcc(stream: bytes) -> bytes:
    """The HEVC decoder configuration record (the hvcC box's payload)."""
    start = stream.index(b"hvcC") + 4
    return stream[start : start + 23]


@needs_pillow_heif
@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("options", [{"quality": 40}, {"lossless": True}])
def test_the_stream_is_monochrome_hevc_of_the_chosen_depth_in_a_bare_heif_file(options, bits):
    codec = Hevc(**options, bits=bits)
    stream = codec.encode(speckled_tile(size=64))

    record = hvcc(stream)
    assert stream[4:8] == b"ftyp" and stream[8:12] in (b"heic", b"heix")
    assert record[1] & 0x1F == 4  # general_profile_idc: format range extensions (Monochrome 10/12)
    assert record[16] & 0b11 == 0  # chroma_format_idc 0: 4:0:0, one plane
    assert (record[17] & 0b111) + 8 == bits and codec.precision == f"uint{bits}"
    assert not any(box in stream for box in (b"colr", b"Exif", b"mime", b"thmb"))


@needs_pillow_heif
def test_lossless_at_10_bits_reconstructs_the_10_bit_samples_exactly():
    """At the default 12 bits the conformance suite checks it."""
    tile = speckled_tile(size=64)

    decoded = round_trip(Hevc(lossless=True, bits=10), tile)

    assert np.array_equal(np.round(decoded.astype(np.float64) * 1023), np.round(tile.astype(np.float64) * 1023))


def test_quality_100_is_not_lossless():
    assert not Hevc(quality=100).lossless


@needs_pillow_heif
def test_qualities_0_to_100_span_the_rates_from_under_0_3_to_over_4_bpp():
    lowest, highest = rates(Hevc, "quality", [0, 100], speckled_tile())

    assert lowest < 0.3 and highest > 4


@needs_pillow_heif
def test_the_decoder_reads_the_bit_depth_from_the_stream():
    tile = speckled_tile(size=64)
    stream = Hevc(lossless=True, bits=10).encode(tile)

    assert np.array_equal(Hevc(quality=50, bits=12).decode(stream, tile.shape),
                          Hevc(lossless=True, bits=10).decode(stream, tile.shape))


@needs_pillow_heif
def test_pillow_heif_alone_decodes_the_stream_to_the_same_samples():
    tile = speckled_tile(size=64)
    stream = Hevc(quality=60).encode(tile)

    independent = np.asarray(hevc.pillow_heif.open_heif(io.BytesIO(stream), convert_hdr_to_8bit=False,
                                                        hdr_to_16bit=False))

    assert np.array_equal((independent / 4095).astype(np.float32), Hevc(quality=60).decode(stream, tile.shape))


@needs_pillow_heif
def test_the_decoder_codes_on_one_thread_and_restores_pillow_heifs_setting(monkeypatch):
    before = hevc.pillow_heif.options.DECODE_THREADS
    codec = Hevc(quality=50)
    stream = codec.encode(noise_tile((17, 31)))
    seen = []
    original = hevc.pillow_heif.open_heif

    def recording(*args, **kwargs):
        seen.append(hevc.pillow_heif.options.DECODE_THREADS)
        return original(*args, **kwargs)

    monkeypatch.setattr(hevc.pillow_heif, "open_heif", recording)
    codec.decode(stream, (17, 31))

    assert seen == [1] and codec.threads == 1
    assert hevc.pillow_heif.options.DECODE_THREADS == before


@needs_pillow_heif
def test_x265_codes_on_one_worker_thread_tuned_for_psnr(monkeypatch):
    asked = []
    original = hevc.pillow_heif.encode

    def recording(*args, **options):
        asked.append(options["enc_params"])
        return original(*args, **options)

    monkeypatch.setattr(hevc.pillow_heif, "encode", recording)
    Hevc(quality=50).encode(noise_tile((16, 16)))

    assert asked == [{"preset": "slow", "tune": "psnr", "x265:psy-rd": "0", "x265:psy-rdoq": "0", "x265:aq-mode": "0",
                      "x265:pools": "1", "x265:frame-threads": "1"}]


@needs_pillow_heif
def test_a_file_claiming_a_huge_image_is_refused_before_decoding():
    stream = Hevc(quality=50).encode(noise_tile((64, 64)))
    extents = stream.find(b"ispe") + 8
    bomb = stream[:extents] + (16384).to_bytes(4, "big") * 2 + stream[extents + 8 :]

    with pytest.raises(ValueError, match="claims a 16384x16384 coded image"):
        Hevc(quality=50).decode(bomb, (64, 64))


@needs_pillow_heif
def test_a_file_that_is_not_monochrome_hevc_is_refused():
    stream = bytearray(Hevc(quality=50).encode(noise_tile((64, 64))))
    stream[stream.index(b"hvcC") + 4 + 16] |= 1  # chroma_format_idc 1: 4:2:0

    with pytest.raises(ValueError, match="not 10- or 12-bit monochrome"):
        Hevc(quality=50).decode(bytes(stream), (64, 64))


def test_quality_and_lossless_together_raise():
    with pytest.raises(ValueError, match="either quality or lossless"):
        Hevc(quality=50, lossless=True)


def test_without_pillow_heif_the_codec_still_registers_with_the_install_command():
    assert unavailable_without("harness_codecs.hevc", "pillow_heif") == {
        "hevc": "pillow-heif is not installed: pip install pillow-heif"}
