"""LERC (Esri's Limited Error Raster Compression, as in GeoTIFF/COG and GDAL) through imagecodecs.

The rate knob is ``max_error``, the largest absolute error LERC may make on
any pixel, in the normalized [0, 1] domain (1.0 is the whole dB range of the
polarisation, so ``max_error=0.01`` on a 30 dB range allows 0.3 dB). LERC
quantizes each of its blocks with step ``2 * max_error`` and codes the
integers with bit-stuffing or Huffman, so the bound holds on every pixel.
The LERC blob carries its own header (size, data type, error bound), so the
bytes alone decode; the tile is coded as float32, as the harness hands it.
"""

from __future__ import annotations

import struct

from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._imagecodecs import library, unavailable_reason


class Lerc(Codec):
    """LERC with the error bound ``max_error`` on every pixel of the normalized tile."""

    name: ClassVar[str] = "lerc"
    description: ClassVar[str] = "LERC (imagecodecs), float32 samples, max_error bound in the normalized domain"
    unavailable: ClassVar[str | None] = unavailable_reason("LERC")
    rate_knob = RateKnob("max_error", low=1e-5, high=0.5, more_bits_when_higher=False, geometric=True)
    # Above 1 every tile would decode to one flat value, so such a bound is surely a unit mistake (dB?).
    options = (CodecOption("max_error", float, minimum=0, maximum=1, exclusive_minimum=True, required=True,
                           description="absolute error bound on every pixel, in normalized units"),)
    example_point = {"max_error": 0.05}

    def __init__(self, max_error: float):
        self.max_error = float(max_error)
        self.precision = "float32"

    def encode(self, tile: np.ndarray) -> bytes:
        return bytes(library().lerc_encode(np.ascontiguousarray(tile, dtype=np.float32), level=self.max_error))

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        claimed = _blob_size(data)
        if claimed != (*shape, 1):
            # LERC allocates what its header claims: damaged headers asked for 16 GiB to 407 TiB.
            raise ValueError(f"lerc: the blob claims {claimed[0]}x{claimed[1]} pixels of depth {claimed[2]}, the "
                             f"tile is {shape[0]}x{shape[1]}")
        try:
            decoded = library().lerc_decode(data)
        except library().LercError as error:
            raise ValueError(f"lerc: the blob cannot be decoded: {error}") from error
        if decoded.shape != tuple(shape):
            raise ValueError(f"lerc: decoded shape {decoded.shape} differs from the tile shape {tuple(shape)}")
        return decoded.astype(np.float32, copy=False)


LERC2_KEY = b"Lerc2 "


def _blob_size(data: bytes) -> tuple[int, int, int]:
    """(rows, columns, depth) from a Lerc2 header: the key, the version, a checksum from version 3, then the
    rows, the columns and, from version 4, the depth (values per pixel), all little-endian."""
    if not data.startswith(LERC2_KEY) or len(data) < len(LERC2_KEY) + 4:
        raise ValueError("lerc: not a Lerc2 blob (no 'Lerc2 ' key at the start)")
    (version,) = struct.unpack_from("<i", data, len(LERC2_KEY))
    offset = len(LERC2_KEY) + 4 + (4 if version >= 3 else 0)
    fields = 3 if version >= 4 else 2
    if len(data) < offset + 4 * fields:
        raise ValueError("lerc: the blob's header is truncated")
    rows, columns, *depth = struct.unpack_from(f"<{fields}i", data, offset)
    return rows, columns, depth[0] if depth else 1


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Lerc]
