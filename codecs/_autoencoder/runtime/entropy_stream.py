"""The entropy-coded autoencoder's byte format.

Header (big-endian): format version (1 byte), model id (4 bytes, as in the
fixed-length format), CRC-32 (4 bytes) of everything after it; then, in
format version 6 only, the quality of a variable-rate model (2 bytes, in
thousandths of a level: the decoder needs it to undo the encoder's gains).
Single-rate models write version 5 (9 bytes of header), variable-rate models
version 6 (11 bytes). The payload is one range-coder stream
(``constriction.stream.queue``, 32-bit words stored little-endian) holding,
in this order: the side latent ``z`` channel by channel (hyperprior and
checkerboard only), then the latent ``y``: channel by channel under the
factorized prior; under the hyperprior, grouped by scale table in ascending
order, each group in raster order; under the checkerboard prior, the anchors
so grouped, then the other positions so grouped. Each group's symbols are
followed by the overflow distances of its end symbols (``symbol_coding``).
The latent shapes follow
from the tile shape and the checkpoint, so they are not written. A range
decoder reads garbage from damaged bytes without noticing; the CRC turns that
into a clear error.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from harness_codecs._autoencoder.runtime.bitstream import MODEL_ID_BYTES

ENTROPY_FORMAT_VERSION = 5
"""Streams of single-rate models. Versions 1 and 2 clamped values beyond a table's ends; versions 3 and 4 (single-
and variable-rate) took the means and tables from float64 networks, whose values the fixed-point ones
(``fixed_point``) differ from on a few elements per tile, so such a stream would not decode here."""
VARIABLE_RATE_FORMAT_VERSION = 6
"""Streams of variable-rate models: the header also holds the quality."""
_HEADER = struct.Struct(f">B{MODEL_ID_BYTES}sI")
_QUALITY = struct.Struct(">H")
HEADER_BYTES = _HEADER.size
QUALITY_SCALE = 1000
"""The quality is stored in thousandths of a level."""
MAX_QUALITY_CODE = 2**16 - 1
WORD = np.dtype("<u4")


def quality_code(quality: float) -> int:
    """The quality as stored: thousandths of a level."""
    return int(round(quality * QUALITY_SCALE))


def format_version(variable_rate: bool) -> int:
    """The format version in the header of a stream of a variable-rate or of a single-rate model."""
    return VARIABLE_RATE_FORMAT_VERSION if variable_rate else ENTROPY_FORMAT_VERSION


def pack_stream(model_id: bytes, words: np.ndarray, quality: int | None = None) -> bytes:
    """Header and payload; ``quality`` (a ``quality_code``) is written for variable-rate models only."""
    body = b"" if quality is None else _QUALITY.pack(quality)
    body += np.asarray(words, dtype=np.uint32).astype(WORD).tobytes()
    return _HEADER.pack(format_version(quality is not None), model_id, zlib.crc32(body)) + body


def unpack_stream(data: bytes, model_id: bytes, variable_rate: bool = False) -> tuple[np.ndarray, int | None]:
    """The payload's 32-bit words and the quality code (None for single-rate models), after checking
    version, model and checksum (``ValueError`` otherwise)."""
    expected = format_version(variable_rate)
    quality_bytes = _QUALITY.size if variable_rate else 0
    header_bytes = HEADER_BYTES + quality_bytes
    if len(data) < header_bytes:
        raise ValueError(f"entropy-coded autoencoder stream of {len(data)} bytes is shorter than its "
                         f"{header_bytes}-byte header")
    version, stream_model, checksum = _HEADER.unpack_from(data)
    if version != expected:
        raise ValueError(f"entropy-coded autoencoder stream has format version {version}; "
                         f"this decoder reads version {expected} for this checkpoint")
    if stream_model != model_id:
        raise ValueError(f"entropy-coded autoencoder stream was made by model {stream_model.hex()}, this checkpoint "
                         f"is model {model_id.hex()}: decode it with the checkpoint that encoded it")
    body = data[HEADER_BYTES:]
    if (len(body) - quality_bytes) % WORD.itemsize or zlib.crc32(body) != checksum:
        raise ValueError("entropy-coded autoencoder stream fails its CRC-32 check (truncated or corrupted stream)")
    quality = _QUALITY.unpack_from(body)[0] if variable_rate else None
    return np.frombuffer(body[quality_bytes:], dtype=WORD).astype(np.uint32), quality
