"""The autoencoder's byte format: a 12-byte header, then the latent codes bit-packed.

Header (big-endian): format version (1 byte), model id (4 bytes, the first
bytes of a SHA-256 of the decoder's weights, so a stream decoded with another
model fails instead of decoding to noise), bits (1 byte), latent channels,
height and width (2 bytes each). The payload is ``ceil(C*h*w*bits / 8)``
bytes of codes, most significant bit first. Everything the decoder needs is
in these bytes; the rate the harness reports is counted from them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

FORMAT_VERSION = 1
MODEL_ID_BYTES = 4
_HEADER = struct.Struct(">B4sBHHH")
HEADER_BYTES = _HEADER.size
MAX_BITS = 16


@dataclass(frozen=True)
class LatentHeader:
    model_id: bytes
    bits: int
    channels: int
    height: int
    width: int

    @property
    def code_count(self) -> int:
        return self.channels * self.height * self.width

    @property
    def payload_bytes(self) -> int:
        return -(-self.code_count * self.bits // 8)


def write_stream(header: LatentHeader, codes: np.ndarray) -> bytes:
    """Header plus ``codes`` (integers below ``2**bits``, shape C x h x w) packed at ``bits`` each."""
    if codes.shape != (header.channels, header.height, header.width):
        raise ValueError(f"latent codes of shape {codes.shape} do not match the header's "
                         f"{(header.channels, header.height, header.width)}")
    prefix = _HEADER.pack(FORMAT_VERSION, header.model_id, header.bits, header.channels, header.height, header.width)
    return prefix + pack_codes(codes.ravel(), header.bits)


def read_stream(data: bytes) -> tuple[LatentHeader, np.ndarray]:
    """Parse and check a stream; any inconsistency is a ``ValueError`` saying what is wrong."""
    if len(data) < HEADER_BYTES:
        raise ValueError(f"autoencoder stream of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header")
    version, model_id, bits, channels, height, width = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"autoencoder stream has format version {version}; this decoder reads version {FORMAT_VERSION}")
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"autoencoder stream header gives {bits} bits per code; expected 1 to {MAX_BITS}")
    header = LatentHeader(model_id, bits, channels, height, width)
    payload = data[HEADER_BYTES:]
    if len(payload) != header.payload_bytes:
        raise ValueError(f"autoencoder stream payload is {len(payload)} bytes; a {channels}x{height}x{width} latent "
                         f"at {bits} bits needs {header.payload_bytes} (truncated or corrupted stream)")
    codes = unpack_codes(payload, bits, header.code_count)
    return header, codes.reshape(channels, height, width)


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack unsigned integers at ``bits`` bits each, MSB first, zero-padded to a whole byte."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    bit_matrix = (codes.astype(np.uint32)[:, None] >> shifts) & 1
    return np.packbits(bit_matrix.astype(np.uint8).ravel()).tobytes()


def unpack_codes(payload: bytes, bits: int, count: int) -> np.ndarray:
    bit_matrix = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=count * bits).reshape(count, bits)
    weights = np.left_shift(np.uint32(1), np.arange(bits - 1, -1, -1, dtype=np.uint32))
    return (bit_matrix.astype(np.uint32) @ weights).astype(np.uint16)
