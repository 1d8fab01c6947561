"""Uniform scalar quantization of the normalized tile: the floor every codec must beat.

``q = round(x * (2**bits - 1))`` puts 0 and 1 (the clip limits of the dB
range) exactly on the grid, and the reconstruction is ``q / (2**bits - 1)``.
Two ways to store the symbols share that quantizer: ``quantize`` packs them at
exactly ``bits`` bits each, ``quantize_zlib`` lets zlib remove their
redundancy. Both streams open with one byte holding ``bits``, so a stream
decodes on its own given the tile shape.
"""

from __future__ import annotations

import zlib
from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl

MIN_BITS = 1
MAX_BITS = 16
"""Symbols are held in uint16 whatever ``bits`` is."""
HEADER_BYTES = 1
ZLIB_LEVEL = 9


class UniformQuantizer(Codec):
    """Uniform quantizer to ``bits`` bits, symbols bit-packed: rate is ``bits`` bpp plus one header byte."""

    name: ClassVar[str] = "quantize"
    description: ClassVar[str] = "uniform scalar quantization of normalized dB, bit-packed"
    threads = 1  # numpy (and zlib) code on one thread
    rate_knob = RateKnob("bits", low=MIN_BITS, high=MAX_BITS, more_bits_when_higher=True, step=1)
    options = (CodecOption("bits", int, minimum=MIN_BITS, maximum=MAX_BITS, required=True,
                           description="bits per sample"),)
    example_point = {"bits": 4}

    def __init__(self, bits: int):
        self.bits = bits
        self.precision = f"uint{self.bits}"

    def encode(self, tile: np.ndarray) -> bytes:
        symbols = quantize(tile, self.bits)
        return bytes([self.bits]) + self._symbols_to_payload(symbols, self.bits)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        bits = _bits_from_header(data)
        pixel_count = int(np.prod(shape))
        symbols = self._payload_to_symbols(data[HEADER_BYTES:], bits, pixel_count)
        return dequantize(symbols.reshape(shape), bits)

    def _symbols_to_payload(self, symbols: np.ndarray, bits: int) -> bytes:
        return _pack_symbols(symbols, bits)

    def _payload_to_symbols(self, payload: bytes, bits: int, pixel_count: int) -> np.ndarray:
        return _unpack_symbols(payload, bits, pixel_count)


class ZlibQuantizer(UniformQuantizer):
    """The same quantizer with its symbols deflated: shows what plain lossless coding adds on top."""

    name: ClassVar[str] = "quantize_zlib"
    description: ClassVar[str] = "uniform scalar quantization of normalized dB, symbols deflated with zlib"

    def _symbols_to_payload(self, symbols: np.ndarray, bits: int) -> bytes:
        return zlib.compress(symbols.astype(_symbol_dtype(bits)).tobytes(), ZLIB_LEVEL)

    def _payload_to_symbols(self, payload: bytes, bits: int, pixel_count: int) -> np.ndarray:
        dtype = _symbol_dtype(bits)
        raw = _inflate_whole(payload, pixel_count * dtype.itemsize)
        if len(raw) != pixel_count * dtype.itemsize:
            raise ValueError(
                f"quantize_zlib: {bits}-bit symbols for {pixel_count} pixels need "
                f"{pixel_count * dtype.itemsize} bytes, the payload inflates to {len(raw)}"
            )
        symbols = np.frombuffer(raw, dtype=dtype)
        if symbols.max(initial=0) > _levels(bits):
            raise ValueError(f"quantize_zlib: the payload holds symbols wider than the header's {bits} bits")
        return symbols


def quantize(tile: np.ndarray, bits: int) -> np.ndarray:
    """Symbols in ``0 .. 2**bits - 1``, computed in float64 so that rounding is exact for every ``bits``."""
    scaled = np.clip(np.asarray(tile, dtype=np.float64), 0.0, 1.0) * _levels(bits)
    return np.round(scaled).astype(np.uint16)


def dequantize(symbols: np.ndarray, bits: int) -> np.ndarray:
    return (symbols / _levels(bits)).astype(np.float32)


def _pack_symbols(symbols: np.ndarray, bits: int) -> bytes:
    """Most significant bit first, symbols back to back, the last byte zero-padded.

    Each symbol is spread to its 16 bits and the top ``16 - bits`` (always
    zero) are dropped, which keeps every step a flat, vectorized numpy call.
    """
    bit_matrix = np.unpackbits(symbols.astype(">u2").view(np.uint8)).reshape(-1, MAX_BITS)
    return np.packbits(bit_matrix[:, MAX_BITS - bits :]).tobytes()


def _unpack_symbols(payload: bytes, bits: int, pixel_count: int) -> np.ndarray:
    expected = _packed_size(bits, pixel_count)
    if len(payload) != expected:
        raise ValueError(
            f"quantize: {bits}-bit symbols for {pixel_count} pixels need {expected} payload bytes, got {len(payload)}"
        )
    flat_bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=bits * pixel_count)
    bit_matrix = np.zeros((pixel_count, MAX_BITS), dtype=np.uint8)
    bit_matrix[:, MAX_BITS - bits :] = flat_bits.reshape(pixel_count, bits)
    return np.packbits(bit_matrix).view(">u2").astype(np.uint16)


def _packed_size(bits: int, pixel_count: int) -> int:
    return -(-bits * pixel_count // 8)


def _levels(bits: int) -> int:
    return 2**bits - 1


def _symbol_dtype(bits: int) -> np.dtype:
    """Bytes when they suffice, else big-endian 16-bit, so the stream reads the same on any machine."""
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2")


def _inflate_whole(payload: bytes, expected_size: int) -> bytes:
    """Every byte must belong to the zlib stream: the rate counts them all, so the decoder reads them all.

    Inflating stops one byte past what the tile's symbols take, so a stream that claims more (a
    decompression bomb: 3 MB can inflate to 3 GB) costs that much memory, not what it claims.
    """
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload, expected_size + 1)
    except zlib.error as error:
        raise ValueError(f"quantize_zlib: the payload does not inflate: {error}") from error
    if len(raw) > expected_size:
        raise ValueError(f"quantize_zlib: the payload inflates to more than the {expected_size} bytes of the "
                         "tile's symbols")
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise ValueError("quantize_zlib: the payload is truncated or followed by stray bytes")
    return raw


def _bits_from_header(data: bytes) -> int:
    if len(data) < HEADER_BYTES or not MIN_BITS <= data[0] <= MAX_BITS:
        raise ValueError(f"quantize: the stream header must hold a bit depth from {MIN_BITS} to {MAX_BITS}")
    return data[0]


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [UniformQuantizer, ZlibQuantizer]
