"""The entropy-coded autoencoder's byte format.

Header (big-endian): format version (1 byte), model id (4 bytes, as in the
fixed-length format), CRC-32 (4 bytes) of everything after it; then the
quality of a variable-rate model (2 bytes, in thousandths of a level: the
decoder needs it to undo the encoder's gains), and, where the model codes
``y`` under Gaussian tables, the tile byte: its low 7 bits are the tile's
scale shift (two's complement, ``entropy_coding.scale_shift``), its high bit
says whether the tile's post-filter follows (``runtime.post_filter``, 16
bytes); a model with a refinement writes its weight byte after the tile byte
(``runtime.refinement_weight``). The version says which of them are there:

=======  =========  =========================  ==================================
version  quality    tile byte                  written for
=======  =========  =========================  ==================================
5        no         no                         single-rate factorized models
6        yes        no                         variable-rate factorized models
9        no         shift and post-filter      single-rate hyperprior models
10       yes        shift and post-filter      variable-rate hyperprior models
11       no         the same, weight byte      single-rate models with a refinement
12       yes        the same, weight byte      variable-rate models with a refinement
=======  =========  =========================  ==================================

Streams written before the shift (versions 5 and 6) or before the
post-filter (versions 7 and 8: the same places, the byte holding a shift
alone) by hyperprior models decode as before. The payload is one
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
from harness_codecs._autoencoder.runtime.post_filter import FILTER_BYTES, PostFilter

FORMAT_VERSIONS = {(False, False): 5, (True, False): 6, (False, True): 9, (True, True): 10}
"""The format version a model writes, by (variable rate, tile byte). Versions 1 and 2 clamped values beyond a
table's ends; versions 3 and 4 (single- and variable-rate) took the means and tables from float64 networks, whose
values the fixed-point ones (``fixed_point``) differ from on a few elements per tile, so such a stream would not
decode here."""
SHIFT_ONLY_VERSIONS = {False: 7, True: 8}
"""The versions with a tile byte that holds the shift alone (before the post-filter), by variable rate."""
REFINED_VERSIONS = {False: 11, True: 12}
"""The versions of models with a refinement (and Gaussian tables): a tile byte and a refinement weight byte, by
variable rate. Such a model reads these alone: no stream of it was written before."""
_HEADER = struct.Struct(f">B{MODEL_ID_BYTES}sI")
_QUALITY = struct.Struct(">H")
_TILE_BYTE = struct.Struct(">B")
_WEIGHT_BYTE = struct.Struct(">B")
_FILTER_FLAG = 0x80
_SHIFT_BITS = 0x7F
HEADER_BYTES = _HEADER.size
QUALITY_SCALE = 1000
"""The quality is stored in thousandths of a level."""
MAX_QUALITY_CODE = 2**16 - 1
WORD = np.dtype("<u4")


@dataclass(frozen=True)
class StreamHeader:
    """What a stream's header tells its decoder beyond the model: the quality code (None for single-rate models),
    the scale shift (0 where the stream has none), the post-filter (None where it has none) and the refinement
    weight code (None where the stream has none)."""

    quality: int | None
    shift: int
    post_filter: PostFilter | None = None
    refinement_weight: int | None = None


def quality_code(quality: float) -> int:
    """The quality as stored: thousandths of a level."""
    return int(round(quality * QUALITY_SCALE))


def format_version(variable_rate: bool, tile_byte: bool, refined: bool = False) -> int:
    """The format version a model writes: variable-rate or single-rate, with a tile byte (Gaussian tables) or
    without, and with a refinement weight byte (``refined``, beside a tile byte) or without."""
    return REFINED_VERSIONS[variable_rate] if refined and tile_byte else FORMAT_VERSIONS[variable_rate, tile_byte]


def readable_versions(variable_rate: bool, tile_byte: bool, refined: bool = False) -> set[int]:
    """The versions a model reads: its own, and for models with Gaussian tables and no refinement those written
    before the post-filter and before the shift."""
    if refined:
        return {format_version(variable_rate, tile_byte, refined)}
    if not tile_byte:
        return {format_version(variable_rate, False)}
    return {format_version(variable_rate, True), SHIFT_ONLY_VERSIONS[variable_rate], format_version(variable_rate, False)}


def pack_stream(model_id: bytes, words: np.ndarray, quality: int | None = None, shift: int | None = None,
                post_filter: PostFilter | None = None, refinement_weight: int | None = None) -> bytes:
    """Header and payload; ``quality`` (a ``quality_code``) is written for variable-rate models only, ``shift``
    (and a ``post_filter``, where the tile has one) for models with Gaussian tables only, ``refinement_weight``
    (a weight code) for those with a refinement."""
    body = b"" if quality is None else _QUALITY.pack(quality)
    if shift is not None:
        body += _TILE_BYTE.pack((shift & _SHIFT_BITS) | (_FILTER_FLAG if post_filter is not None else 0))
        body += b"" if refinement_weight is None else _WEIGHT_BYTE.pack(refinement_weight)
        body += b"" if post_filter is None else post_filter.to_bytes()
    body += np.asarray(words, dtype=np.uint32).astype(WORD).tobytes()
    version = format_version(quality is not None, shift is not None, refinement_weight is not None)
    return _HEADER.pack(version, model_id, zlib.crc32(body)) + body


def unpack_stream(data: bytes, model_id: bytes, variable_rate: bool = False, tile_byte: bool = False,
                  refined: bool = False) -> tuple[np.ndarray, StreamHeader]:
    """The payload's 32-bit words and the header's quality, shift, post-filter and refinement weight, after
    checking version, model and checksum (``ValueError`` otherwise). ``refined``: the model has a refinement and
    Gaussian tables (its streams have a weight byte)."""
    readable = readable_versions(variable_rate, tile_byte, refined)
    if len(data) >= HEADER_BYTES and data[0] not in readable:
        raise ValueError(f"entropy-coded autoencoder stream has format version {data[0]}; this decoder reads "
                         f"version {' or '.join(str(value) for value in sorted(readable))} for this checkpoint")
    version = data[0] if data else None
    has_tile_byte = tile_byte and version != format_version(variable_rate, False)
    quality_bytes = _QUALITY.size if variable_rate else 0
    weight_bytes = _WEIGHT_BYTE.size if refined else 0
    extra = quality_bytes + (_TILE_BYTE.size + weight_bytes if has_tile_byte else 0)
    if len(data) < HEADER_BYTES + extra:
        raise ValueError(f"entropy-coded autoencoder stream of {len(data)} bytes is shorter than its "
                         f"{HEADER_BYTES + extra}-byte header")
    _, stream_model, checksum = _HEADER.unpack_from(data)
    if stream_model != model_id:
        raise ValueError(f"entropy-coded autoencoder stream was made by model {stream_model.hex()}, this checkpoint "
                         f"is model {model_id.hex()}: decode it with the checkpoint that encoded it")
    body = data[HEADER_BYTES:]
    tile = _TILE_BYTE.unpack_from(body, quality_bytes)[0] if has_tile_byte else 0
    shift, post_filter = _tile_byte(tile, version == SHIFT_ONLY_VERSIONS[variable_rate])
    extra += FILTER_BYTES if post_filter else 0
    if len(body) < extra or (len(body) - extra) % WORD.itemsize or zlib.crc32(body) != checksum:
        raise ValueError("entropy-coded autoencoder stream fails its CRC-32 check (truncated or corrupted stream)")
    quality = _QUALITY.unpack_from(body)[0] if variable_rate else None
    weight = _WEIGHT_BYTE.unpack_from(body, quality_bytes + _TILE_BYTE.size)[0] if refined else None
    read_filter = PostFilter.from_bytes(body[extra - FILTER_BYTES:extra]) if post_filter else None
    header = StreamHeader(quality, shift, read_filter, weight)
    return np.frombuffer(body[extra:], dtype=WORD).astype(np.uint32), header


def _tile_byte(value: int, shift_only: bool) -> tuple[int, bool]:
    """The shift and whether a post-filter follows; a version 7 or 8 byte is a signed shift alone."""
    if shift_only:
        return struct.unpack(">b", bytes([value]))[0], False
    shift = value & _SHIFT_BITS
    return shift - (_SHIFT_BITS + 1 if shift & 0x40 else 0), bool(value & _FILTER_FLAG)
