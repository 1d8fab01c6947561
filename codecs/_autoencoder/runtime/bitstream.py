"""The autoencoder's byte format: a 12-byte header, then the latent codes bit-packed.

Header (big-endian): format version (1 byte), model id (4 bytes, the first
bytes of a SHA-256 of the decoder's weights, so a stream decoded with another
model fails instead of decoding to noise), bits (1 byte), latent channels,
height and width (2 bytes each). The payload is ``ceil(C*h*w*bits / 8)``
bytes of codes, most significant bit first, zero-padded to a whole byte.
Everything the decoder needs is in these bytes; the rate the harness reports
is counted from them.

Packing and unpacking are torch operations on whole batches
(``pack_code_rows`` / ``unpack_code_rows``), so that they run where the
latent is, on the GPU as well, and only packed bytes cross to the host. They
work on chunks of 8 codes, which fill exactly ``bits`` bytes: each byte of a
chunk is an OR of at most a few shifted codes, a handful of vectorized
integer operations in int32 (16-bit codes shifted by up to 7 bits fit).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FORMAT_VERSION = 1
MODEL_ID_BYTES = 4
_HEADER = struct.Struct(">B4sBHHH")
HEADER_BYTES = _HEADER.size
MAX_BITS = 16
CHUNK_CODES = 8
"""Codes per packing chunk: 8 codes of ``bits`` bits are exactly ``bits`` bytes."""


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
        return payload_bytes(self.code_count, self.bits)


def payload_bytes(code_count: int, bits: int) -> int:
    return -(-code_count * bits // 8)


def write_stream(header: LatentHeader, payload: bytes | memoryview) -> bytes:
    """Header plus ``payload``, the latent's codes as ``pack_code_rows`` packs them."""
    if len(payload) != header.payload_bytes:
        raise ValueError(f"a payload of {len(payload)} bytes does not match the header's "
                         f"{header.channels}x{header.height}x{header.width} latent at {header.bits} bits")
    prefix = _HEADER.pack(FORMAT_VERSION, header.model_id, header.bits, header.channels, header.height, header.width)
    return prefix + payload


def read_stream(data: bytes) -> tuple[LatentHeader, memoryview]:
    """Parse and check a stream's header and payload length; any inconsistency is a ``ValueError`` saying
    what is wrong. Returns the header and the payload (unpacked later, a batch at a time)."""
    if len(data) < HEADER_BYTES:
        raise ValueError(f"autoencoder stream of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header")
    version, model_id, bits, channels, height, width = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"autoencoder stream has format version {version}; this decoder reads version {FORMAT_VERSION}")
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"autoencoder stream header gives {bits} bits per code; expected 1 to {MAX_BITS}")
    header = LatentHeader(model_id, bits, channels, height, width)
    payload = memoryview(data)[HEADER_BYTES:]
    if len(payload) != header.payload_bytes:
        raise ValueError(f"autoencoder stream payload is {len(payload)} bytes; a {channels}x{height}x{width} latent "
                         f"at {bits} bits needs {header.payload_bytes} (truncated or corrupted stream)")
    return header, payload


@functools.cache
def _byte_terms(bits: int) -> tuple[tuple[int, int, int], ...]:
    """For each (byte ``j``, code ``i``) of a chunk that overlap, the right shift that moves code ``i``'s
    bits to their place in byte ``j`` (negative: a left shift)."""
    terms = []
    for byte in range(bits):
        for code in range(CHUNK_CODES):
            first, end = code * bits, (code + 1) * bits  # the code's bits in the chunk, MSB first
            if first < 8 * byte + 8 and end > 8 * byte:
                terms.append((byte, code, end - (8 * byte + 8)))
    return tuple(terms)


def _shifted(values: torch.Tensor, right: int) -> torch.Tensor:
    return values >> right if right >= 0 else values << -right


def pack_code_rows(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack each row of ``codes`` (N x count integers below ``2**bits``) into its payload, on their device:
    an (N, ``payload_bytes(count, bits)``) uint8 tensor."""
    rows, count = codes.shape
    chunks = F.pad(codes.to(torch.int32), (0, -count % CHUNK_CODES)).view(rows, -1, CHUNK_CODES)
    by_code = chunks.permute(2, 0, 1).contiguous()  # (8, N, chunks): each code position contiguous
    packed = torch.zeros(bits, rows, chunks.shape[1], dtype=torch.int32, device=codes.device)
    for byte, code, right in _byte_terms(bits):
        packed[byte] |= _shifted(by_code[code], right)
    packed &= 0xFF
    return packed.to(torch.uint8).permute(1, 2, 0).reshape(rows, -1)[:, :payload_bytes(count, bits)]


def unpack_code_rows(payloads: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The inverse of ``pack_code_rows``: (N, payload bytes) uint8 -> (N, count) int32 codes, on their device."""
    rows = payloads.shape[0]
    chunk_count = -(-count // CHUNK_CODES)
    whole = F.pad(payloads, (0, chunk_count * bits - payloads.shape[1])).view(rows, chunk_count, bits)
    by_byte = whole.permute(2, 0, 1).to(torch.int32)  # (bits, N, chunks)
    codes = torch.zeros(CHUNK_CODES, rows, chunk_count, dtype=torch.int32, device=payloads.device)
    for byte, code, right in _byte_terms(bits):
        codes[code] |= _shifted(by_byte[byte], -right)
    codes &= (1 << bits) - 1
    return codes.permute(1, 2, 0).reshape(rows, -1)[:, :count]
