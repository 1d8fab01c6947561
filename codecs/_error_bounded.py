"""What the error-bounded codecs wrapping imagecodecs (SZ3, SPERR, ZFP) share: their base class, which declares
their one option, ``tolerance``, and a CRC-32 in front of streams whose decoders trust their input.

The three libraries' decoders read past a damaged stream, or abort or corrupt the heap, instead of raising; a
stream decoded with another shape than it was coded with does the same. So each stream opens with a CRC-32 of the
tile shape and the payload, checked before the library sees a byte: a bad stream becomes a ``ValueError``.
"""

from __future__ import annotations

import struct
import zlib

from harness import Codec, CodecOption

CHECKSUM = struct.Struct(">I")
TOLERANCE_OPTION = CodecOption("tolerance", float, minimum=0, maximum=1, exclusive_minimum=True, required=True,
                               description="absolute error bound on every pixel, in normalized units")
"""An absolute error bound in normalized units. Above 1 the bound says nothing about a [0, 1] tile (every tile
could decode to one flat value), so such a value is surely a unit mistake (dB?)."""


class ErrorBoundedCodec(Codec):
    """A float32 compressor that keeps every pixel of the normalized tile within ``tolerance`` of the original: the
    option, its declaration and the example point, once for the three."""

    options = (TOLERANCE_OPTION,)
    example_point = {"tolerance": 0.05}
    precision = "float32"

    def __init__(self, tolerance: float):
        self.tolerance = float(tolerance)


def with_checksum(shape: tuple[int, ...], payload: bytes) -> bytes:
    """The stream: the CRC-32 of ``shape`` and ``payload``, then ``payload``."""
    return CHECKSUM.pack(_checksum(shape, payload)) + payload


def checked_payload(codec: str, data: bytes, shape: tuple[int, int], header_bytes: int = 0) -> bytes:
    """The payload of a stream made by ``with_checksum`` for a tile of ``shape``, which must hold more than
    ``header_bytes`` bytes; a ``ValueError`` naming ``codec`` when the stream is damaged or of another shape."""
    payload = data[CHECKSUM.size :]
    if len(payload) <= header_bytes or CHECKSUM.unpack_from(data)[0] != _checksum(shape, payload):
        raise ValueError(f"{codec}: the stream is corrupt or was not coded from a {tuple(shape)} tile (CRC-32 mismatch)")
    return payload


def _checksum(shape: tuple[int, ...], payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack(">II", *shape)))
