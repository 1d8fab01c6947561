"""Block-adaptive quantization (BAQ): the quantizer family Sentinel-1 itself uses on board.

Per block of ``block`` x ``block`` pixels (edge blocks are smaller), the
encoder writes a block header with the block's mean and standard deviation
(float16 each), standardizes the block's samples with those two stored
values, and quantizes each standardized sample with the ``bits``-bit
Lloyd-Max quantizer for a unit Gaussian: the quantizer that minimizes the
mean squared error for that distribution, scaled to the block by its
standard deviation. The decoder maps each code to its Lloyd-Max level,
rescales, and clips to [0, 1] (which only ever moves a value closer to the
original, since every original lies in [0, 1]).

Stream: 1 byte ``bits``, 2 bytes ``block`` (big-endian), then for each block
in row-major order its 4-byte header and its codes, most significant bit
first, padded to a whole byte. So the size is exactly
``3 + sum over blocks of (4 + ceil(bits * block_pixels / 8))`` bytes, and the
rate is ``bits + 32 / block**2`` bpp plus the 3 stream bytes.

How this differs from the onboard FDBAQ (Flexible Dynamic BAQ) of
Sentinel-1: FDBAQ compresses the raw echo, the complex I and Q samples of
each range line before any focusing, whose distribution is close to a
zero-mean Gaussian, over blocks of 128 samples; it picks the bit rate per
block from a small set (with entropy-coded codes), driven by the block's
estimated signal-to-noise ratio, so bits go where the signal is. This codec
works instead on the focused, detected, multi-looked image in the normalized
dB domain, where samples are not zero-mean (hence the stored mean), log-speckle
is skewed rather than Gaussian, and every block gets the same ``bits`` with
fixed-length codes. It shows what the onboard family of quantizers does to
the product users see, not what the satellite does to its echoes.
"""

from __future__ import annotations

import math
import struct
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

from harness import Codec, CodecOption, RateKnob, hookimpl

BITS_CHOICES = (2, 3, 4, 5)
MIN_BLOCK, MAX_BLOCK = 2, 65535
STREAM_HEADER = struct.Struct(">BH")
BLOCK_HEADER = np.dtype([("mean", ">f2"), ("std", ">f2")])
LLOYD_MAX_TOLERANCE = 1e-12
LLOYD_MAX_ITERATIONS = 100_000


def lloyd_max_gaussian(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels and decision thresholds of the MSE-optimal ``bits``-bit quantizer for a unit Gaussian.

    Lloyd's iteration from evenly spaced levels: each threshold is the
    midpoint of its two levels, each level the centroid (conditional mean) of
    its cell. It is deterministic, so every machine derives the same tables
    and the stream need not carry them.
    """
    count = 2**bits
    levels = np.linspace(-2.0, 2.0, count)
    for _ in range(LLOYD_MAX_ITERATIONS):
        thresholds = (levels[:-1] + levels[1:]) / 2
        edges = np.concatenate(([-np.inf], thresholds, [np.inf]))
        density = np.exp(-(edges**2) / 2) / np.sqrt(2 * np.pi)
        centroids = (density[:-1] - density[1:]) / (ndtr(edges[1:]) - ndtr(edges[:-1]))
        converged = np.max(np.abs(centroids - levels)) < LLOYD_MAX_TOLERANCE
        levels = centroids
        if converged:
            break
    return levels, (levels[:-1] + levels[1:]) / 2


LLOYD_MAX = {bits: lloyd_max_gaussian(bits) for bits in BITS_CHOICES}


class BlockAdaptiveQuantizer(Codec):
    """BAQ with ``bits`` per sample over ``block`` x ``block`` blocks: rate ``bits + 32 / block**2`` bpp."""

    name: ClassVar[str] = "baq"
    description: ClassVar[str] = "block-adaptive quantization: float16 block mean/std + Gaussian Lloyd-Max codes"
    threads = 1  # numpy codes on one thread
    rate_knob = RateKnob("bits", low=min(BITS_CHOICES), high=max(BITS_CHOICES), more_bits_when_higher=True, step=1)
    options = (
        CodecOption("bits", int, choices=BITS_CHOICES, required=True, description="bits per sample"),
        CodecOption("block", int, minimum=MIN_BLOCK, maximum=MAX_BLOCK, description="side of the square blocks, px"),
    )
    example_point = {"bits": 3}

    def __init__(self, bits: int, block: int = 32):
        self.bits = bits
        self.block = block
        self.precision = f"uint{self.bits}"

    def encode(self, tile: np.ndarray) -> bytes:
        _, thresholds = LLOYD_MAX[self.bits]
        parts = [STREAM_HEADER.pack(self.bits, self.block)]
        for rows, cols in _blocks(tile.shape, self.block):
            samples = np.asarray(tile[rows, cols], dtype=np.float64)
            header = np.array([(samples.mean(), samples.std())], dtype=BLOCK_HEADER)
            mean, std = float(header["mean"][0]), float(header["std"][0])
            standardized = (samples - mean) / std if std > 0 else np.zeros_like(samples)
            codes = np.searchsorted(thresholds, standardized.ravel()).astype(np.uint8)
            parts += [header.tobytes(), _pack(codes, self.bits)]
        return b"".join(parts)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        bits, block = self._stream_header(data)
        levels, _ = LLOYD_MAX[bits]
        decoded = np.empty(shape, dtype=np.float32)
        offset = STREAM_HEADER.size
        for rows, cols in _blocks(shape, block):
            pixels = (rows.stop - rows.start) * (cols.stop - cols.start)
            end = offset + BLOCK_HEADER.itemsize + _packed_size(bits, pixels)
            if end > len(data):
                raise ValueError(f"baq: the stream ends inside a block ({len(data)} bytes)")
            mean, std = _block_header(data, offset, rows, cols)
            codes = _unpack(data[offset + BLOCK_HEADER.itemsize : end], bits, pixels)
            values = mean + std * levels[codes]
            decoded[rows, cols] = values.reshape(rows.stop - rows.start, cols.stop - cols.start)
            offset = end
        if offset != len(data):
            raise ValueError(f"baq: {len(data) - offset} stray bytes after the last block")
        return np.clip(decoded, 0.0, 1.0)

    @staticmethod
    def _stream_header(data: bytes) -> tuple[int, int]:
        if len(data) < STREAM_HEADER.size:
            raise ValueError("baq: the stream is shorter than its 3-byte header")
        bits, block = STREAM_HEADER.unpack_from(data)
        if bits not in BITS_CHOICES or block < MIN_BLOCK:
            raise ValueError(f"baq: the stream header holds bits={bits}, block={block}, which no encoder writes")
        return bits, block


def _block_header(data: bytes, offset: int, rows: slice, cols: slice) -> tuple[float, float]:
    """A block's stored mean and standard deviation; a damaged header (NaN, infinity, a negative deviation) is
    refused, since it would decode its whole block to NaN or to one bound instead of failing."""
    header = np.frombuffer(data, dtype=BLOCK_HEADER, count=1, offset=offset)
    mean, std = float(header["mean"][0]), float(header["std"][0])
    if not (math.isfinite(mean) and math.isfinite(std) and std >= 0.0):
        raise ValueError(f"baq: the header of the block at row {rows.start}, column {cols.start} holds mean={mean}, "
                         f"std={std}, which no encoder writes; the stream is damaged")
    return mean, std


def _blocks(shape: tuple[int, ...], block: int) -> list[tuple[slice, slice]]:
    """Row-major blocks; the last row and column of blocks are cut at the tile edge."""
    height, width = shape
    return [
        (slice(top, min(top + block, height)), slice(left, min(left + block, width)))
        for top in range(0, height, block)
        for left in range(0, width, block)
    ]


def _pack(codes: np.ndarray, bits: int) -> bytes:
    """Each code's low ``bits`` bits, most significant first, back to back, zero-padded to a byte."""
    return np.packbits(np.unpackbits(codes[:, None], axis=1)[:, 8 - bits :]).tobytes()


def _unpack(payload: bytes, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=bits * count).reshape(count, bits)
    return (flat.astype(np.uint8) << np.arange(bits - 1, -1, -1, dtype=np.uint8)).sum(axis=1)


def _packed_size(bits: int, count: int) -> int:
    return -(-bits * count // 8)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [BlockAdaptiveQuantizer]
