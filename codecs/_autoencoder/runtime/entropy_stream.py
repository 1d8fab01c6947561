"""The entropy-coded autoencoder's byte format.

Header (big-endian): format version (1 byte), model id (4 bytes, as in the
fixed-length format), CRC-32 (4 bytes) of everything after it; then the
quality of a variable-rate model (2 bytes, in thousandths of a level: the
decoder needs it to undo the encoder's gains), and the tile's scale shift
(1 signed byte, ``entropy_coding.scale_shift``) where the model codes ``y``
under Gaussian tables. The version says which of the two are there:

=======  =========  ===========  ==================================
version  quality    scale shift  written for
=======  =========  ===========  ==================================
5        no         no           single-rate factorized models
6        yes        no           variable-rate factorized models
7        no         yes          single-rate hyperprior models
8        yes        yes          variable-rate hyperprior models
=======  =========  ===========  ==================================

Streams of versions 5 and 6 from hyperprior models, written before the
shift existed, decode as before (a shift of 0). The payload is one
range-coder stream
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
from dataclasses import dataclass

import numpy as np
from harness_codecs._autoencoder.runtime.bitstream import MODEL_ID_BYTES

FORMAT_VERSIONS = {(False, False): 5, (True, False): 6, (False, True): 7, (True, True): 8}
"""The format version of a stream by (variable rate, scale shift). Versions 1 and 2 clamped values beyond a table's
ends; versions 3 and 4 (single- and variable-rate) took the means and tables from float64 networks, whose values
the fixed-point ones (``fixed_point``) differ from on a few elements per tile, so such a stream would not decode
here."""
_HEADER = struct.Struct(f">B{MODEL_ID_BYTES}sI")
_QUALITY = struct.Struct(">H")
_SHIFT = struct.Struct(">b")
HEADER_BYTES = _HEADER.size
QUALITY_SCALE = 1000
"""The quality is stored in thousandths of a level."""
MAX_QUALITY_CODE = 2**16 - 1
WORD = np.dtype("<u4")


@dataclass(frozen=True)
class StreamHeader:
    """What a stream's header tells its decoder beyond the model: the quality code (None for single-rate models)
    and the scale shift (0 where the stream has none)."""

    quality: int | None
    shift: int


def quality_code(quality: float) -> int:
    """The quality as stored: thousandths of a level."""
    return int(round(quality * QUALITY_SCALE))


def format_version(variable_rate: bool, scale_shift: bool) -> int:
    """The format version a model writes: variable-rate or single-rate, with a scale shift or without."""
    return FORMAT_VERSIONS[variable_rate, scale_shift]


def pack_stream(model_id: bytes, words: np.ndarray, quality: int | None = None, shift: int | None = None) -> bytes:
    """Header and payload; ``quality`` (a ``quality_code``) is written for variable-rate models only, ``shift`` for
    models with Gaussian tables only."""
    body = b"" if quality is None else _QUALITY.pack(quality)
    body += b"" if shift is None else _SHIFT.pack(shift)
    body += np.asarray(words, dtype=np.uint32).astype(WORD).tobytes()
    return _HEADER.pack(format_version(quality is not None, shift is not None), model_id, zlib.crc32(body)) + body


def unpack_stream(data: bytes, model_id: bytes, variable_rate: bool = False,
                  scale_shift: bool = False) -> tuple[np.ndarray, StreamHeader]:
    """The payload's 32-bit words and the header's quality and shift, after checking version, model and
    checksum (``ValueError`` otherwise). A model with Gaussian tables (``scale_shift``) also reads the streams
    written before the shift existed."""
    readable = {format_version(variable_rate, shifted) for shifted in ((False, True) if scale_shift else (False,))}
    if len(data) >= HEADER_BYTES and data[0] not in readable:
        raise ValueError(f"entropy-coded autoencoder stream has format version {data[0]}; this decoder reads "
                         f"version {' or '.join(str(value) for value in sorted(readable))} for this checkpoint")
    has_shift = len(data) >= HEADER_BYTES and data[0] == format_version(variable_rate, True)
    extra = (_QUALITY.size if variable_rate else 0) + (_SHIFT.size if has_shift else 0)
    if len(data) < HEADER_BYTES + extra:
        raise ValueError(f"entropy-coded autoencoder stream of {len(data)} bytes is shorter than its "
                         f"{HEADER_BYTES + extra}-byte header")
    _, stream_model, checksum = _HEADER.unpack_from(data)
    if stream_model != model_id:
        raise ValueError(f"entropy-coded autoencoder stream was made by model {stream_model.hex()}, this checkpoint "
                         f"is model {model_id.hex()}: decode it with the checkpoint that encoded it")
    body = data[HEADER_BYTES:]
    if (len(body) - extra) % WORD.itemsize or zlib.crc32(body) != checksum:
        raise ValueError("entropy-coded autoencoder stream fails its CRC-32 check (truncated or corrupted stream)")
    quality = _QUALITY.unpack_from(body)[0] if variable_rate else None
    shift = _SHIFT.unpack_from(body, _QUALITY.size if variable_rate else 0)[0] if has_shift else 0
    return np.frombuffer(body[extra:], dtype=WORD).astype(np.uint32), StreamHeader(quality, shift)
