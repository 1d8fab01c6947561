"""The entropy-coded autoencoder's byte format.

Header (big-endian): format version (1 byte), model id (4 bytes, as in the
fixed-length format), CRC-32 (4 bytes) of everything after it; then the
quality of a variable-rate model (2 bytes, in thousandths of a level: the
decoder needs it to undo the encoder's gains), and, where the model codes
``y`` under Gaussian tables, the tile byte: its low 7 bits are the scale shift
of the first band of scales (two's complement, ``entropy_coding.scale_shift``),
its high bit says whether the tile's post-filter follows
(``runtime.post_filter``, 16 bytes); where the bands' shifts differ, the other
four follow it, one signed byte each; a model with a refinement writes its
weight byte after them (``runtime.refinement_weight``). The version says which
of them are there:

=======  =========  ===========================  ==================================
version  quality    after the quality            written for
=======  =========  ===========================  ==================================
5        no         nothing                      single-rate factorized models
6        yes        nothing                      variable-rate factorized models
9        no         tile byte (one shift)        single-rate hyperprior models
10       yes        tile byte (one shift)        variable-rate hyperprior models
11       no         the same, weight byte        single-rate models with a refinement
12       yes        the same, weight byte        variable-rate models with a refinement
13       no         tile byte, band shifts       single-rate hyperprior models
14       yes        tile byte, band shifts       variable-rate hyperprior models
15       no         the same, weight byte        single-rate models with a refinement
16       yes        the same, weight byte        variable-rate models with a refinement
=======  =========  ===========================  ==================================

Versions 17 to 24 are versions 9 to 16 whose latent is trellis-coded (``entropy_coding.trellis``): after the
band shifts and the weight byte, before the post-filter, they hold the trellis byte, the double step in 64ths (64
to 255).

A hyperprior model writes 13 to 16 for a tile whose bands take different
shifts, 9 to 12 for one whose bands share a shift (the bytes of the bands
cost more than they save on small tiles at low rates), and 5 or 6 where its
coder leaves the shift out (``without_scale_shift``, for measuring it). Every
version a hyperprior or checkerboard model writes carries
``INTEGER_PRIOR_FLAG`` (64): its tables were picked by the fixed-point networks
computed from the checkpoint's int8 codes (``fixed_point.networks``). Streams
such models wrote before (the same versions without the flag; 7 and 8 had a
tile byte of the shift alone) took them from weights rounded otherwise, which
picks another table for a few elements per tile, so they are refused rather
than decoded to other symbols. The payload is one
range-coder stream
(``constriction.stream.queue``, 32-bit words stored little-endian) holding,
in this order: the side latent ``z`` channel by channel (hyperprior and
checkerboard only), then the latent ``y``: channel by channel under the
factorized prior; under the hyperprior, grouped by scale table in ascending
order, each group in raster order; under the checkerboard prior, the anchors
so grouped, then the other positions so grouped; trellis-coded, the anchors
link by link, then the other positions link by link (a link: channel ``k``
and channel ``k + C / 2`` at every position of the pass, under per-element
tables, ``trellis.ChainedSymbolCoder``). Each group's (or link's) symbols are
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
from harness_codecs._autoencoder.entropy_coding.scale_shift import BAND_SHIFT_BITS, BANDS
from harness_codecs._autoencoder.runtime.bitstream import MODEL_ID_BYTES
from harness_codecs._autoencoder.runtime.post_filter import FILTER_BYTES, PostFilter

FORMAT_VERSIONS = {(False, False): 5, (True, False): 6, (False, True): 13, (True, True): 14}
"""The format version a model without a refinement writes, by (variable rate, tile byte), for a tile whose bands
take different shifts (``SINGLE_SHIFT_VERSIONS`` otherwise). Versions 1 and 2 clamped
values beyond a table's ends; versions 3 and 4 (single- and variable-rate) took the means and tables from float64
networks, whose values the fixed-point ones (``fixed_point``) differ from on a few elements per tile, so such a
stream would not decode here."""
REFINED_VERSIONS = {False: 15, True: 16}
"""The versions of models with a refinement (and Gaussian tables): band shifts and a refinement weight byte, by
variable rate."""
SINGLE_SHIFT_VERSIONS = {(False, False): 9, (True, False): 10, (False, True): 11, (True, True): 12}
"""The versions of one shift for every band in the tile byte, by (variable rate, refined): the only ones before
the band shifts, and still written for tiles whose bands share a shift."""
INTEGER_PRIOR_FLAG = 0x40
"""Set in every version a model with fixed-point prior networks writes (hyperprior, checkerboard): see above."""
TRELLIS_OFFSET = 8
"""A trellis-coded stream's version is that of the same stream rounded, plus this."""
BANDED_VERSIONS = {FORMAT_VERSIONS[rate, True] for rate in (False, True)} | {*REFINED_VERSIONS.values()}
BANDED_VERSIONS |= {version + TRELLIS_OFFSET for version in BANDED_VERSIONS}
"""The versions whose other bands' shifts follow the tile byte."""
_TRELLIS_BASES = {*SINGLE_SHIFT_VERSIONS.values(), *REFINED_VERSIONS.values(),
                  *(FORMAT_VERSIONS[rate, True] for rate in (False, True))}
"""The versions with a tile byte (9 to 16), whose latent may be trellis-coded."""
_HEADER = struct.Struct(f">B{MODEL_ID_BYTES}sI")
_QUALITY = struct.Struct(">H")
_TILE_BYTE = struct.Struct(">B")
_WEIGHT_BYTE = struct.Struct(">B")
_TRELLIS_BYTE = struct.Struct(">B")
_BAND_SHIFTS = struct.Struct(f">{BAND_SHIFT_BITS // 8}b")
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
    the scale shift of each band (0 where the stream has none; a stream of one shift has it in every band), the
    post-filter (None where it has none) and the refinement weight code (None where the stream has none)."""

    quality: int | None
    shifts: tuple[int, ...]
    post_filter: PostFilter | None = None
    refinement_weight: int | None = None
    double_step_code: int | None = None
    """The trellis-coded latent's double step in 64ths; None: rounded."""


def quality_code(quality: float) -> int:
    """The quality as stored: thousandths of a level."""
    return int(round(quality * QUALITY_SCALE))


def format_version(variable_rate: bool, tile_byte: bool, refined: bool = False, banded: bool = True,
                   integer_prior: bool = False) -> int:
    """The format version a model writes: variable-rate or single-rate, with a tile byte (Gaussian tables) or
    without, with a refinement weight byte (``refined``, beside a tile byte) or without, with a shift per band
    of scales or one shift for all (``banded``: whether the tile's shifts differ), flagged where the model has
    fixed-point prior networks (``integer_prior``)."""
    if tile_byte and not banded:
        version = SINGLE_SHIFT_VERSIONS[variable_rate, refined]
    elif refined and tile_byte:
        version = REFINED_VERSIONS[variable_rate]
    else:
        version = FORMAT_VERSIONS[variable_rate, tile_byte]
    return version | (INTEGER_PRIOR_FLAG if integer_prior else 0)


def readable_versions(variable_rate: bool, tile_byte: bool, refined: bool = False, trellis: bool = False,
                      integer_prior: bool = False) -> set[int]:
    """The versions a model reads: those it writes (with a tile byte: band shifts or one shift; ``trellis``: also
    trellis-coded), and for models with Gaussian tables and no refinement those without the shift."""
    own = format_version(variable_rate, tile_byte, refined)
    rounded = {own}
    if tile_byte:
        rounded |= {SINGLE_SHIFT_VERSIONS[variable_rate, refined]}
        rounded |= set() if refined else {format_version(variable_rate, False)}
    if trellis:
        rounded |= {version + TRELLIS_OFFSET for version in rounded if version in _TRELLIS_BASES}
    return {version | (INTEGER_PRIOR_FLAG if integer_prior else 0) for version in rounded}


def pack_stream(model_id: bytes, words: np.ndarray, quality: int | None = None,
                shifts: tuple[int, ...] | None = None, post_filter: PostFilter | None = None,
                refinement_weight: int | None = None, double_step_code: int | None = None,
                integer_prior: bool = False) -> bytes:
    """Header and payload; ``quality`` (a ``quality_code``) is written for variable-rate models only, ``shifts``
    (one per band; and a ``post_filter``, where the tile has one) for models with Gaussian tables only,
    ``refinement_weight`` (a weight code) for those with a refinement, ``double_step_code`` for a trellis-coded
    latent; ``integer_prior`` flags the version (a model with fixed-point prior networks). Shifts that are all the
    same are written as one, in the format of one shift."""
    banded = shifts is not None and len(set(shifts)) > 1
    body = b"" if quality is None else _QUALITY.pack(quality)
    if shifts is not None:
        body += _TILE_BYTE.pack((shifts[0] & _SHIFT_BITS) | (_FILTER_FLAG if post_filter is not None else 0))
        body += _BAND_SHIFTS.pack(*shifts[1:]) if banded else b""
        body += b"" if refinement_weight is None else _WEIGHT_BYTE.pack(refinement_weight)
        body += b"" if double_step_code is None else _TRELLIS_BYTE.pack(double_step_code)
        body += b"" if post_filter is None else post_filter.to_bytes()
    body += np.asarray(words, dtype=np.uint32).astype(WORD).tobytes()
    version = format_version(quality is not None, shifts is not None, refinement_weight is not None, banded,
                             integer_prior)
    version += 0 if double_step_code is None else TRELLIS_OFFSET
    return _HEADER.pack(version, model_id, zlib.crc32(body)) + body


def unpack_stream(data: bytes, model_id: bytes, variable_rate: bool = False, tile_byte: bool = False,
                  refined: bool = False, trellis: bool = False,
                  integer_prior: bool = False) -> tuple[np.ndarray, StreamHeader]:
    """The payload's 32-bit words and the header's quality, shifts, post-filter and refinement weight, after
    checking version, model and checksum (``ValueError`` otherwise). ``refined``: the model has a refinement and
    Gaussian tables (its streams have a weight byte); ``trellis``: the model has the tables of trellis-coded
    streams; ``integer_prior``: the model has fixed-point prior networks (its versions are flagged)."""
    readable = readable_versions(variable_rate, tile_byte, refined, trellis, integer_prior)
    if integer_prior and len(data) >= HEADER_BYTES and data[0] < INTEGER_PRIOR_FLAG:
        raise ValueError(f"entropy-coded autoencoder stream has format version {data[0]}, written before this "
                         "decoder's integer prior networks, whose tables it cannot reproduce: encode the tile again")
    if len(data) >= HEADER_BYTES and data[0] not in readable:
        raise ValueError(f"entropy-coded autoencoder stream has format version {data[0]}; this decoder reads "
                         f"version {' or '.join(str(value) for value in sorted(readable))} for this checkpoint")
    version = data[0] & ~INTEGER_PRIOR_FLAG if data else None
    has_tile_byte = tile_byte and version != format_version(variable_rate, False)
    quality_bytes = _QUALITY.size if variable_rate else 0
    band_bytes = _BAND_SHIFTS.size if version in BANDED_VERSIONS else 0
    weight_bytes = _WEIGHT_BYTE.size if refined else 0
    trellis_bytes = _TRELLIS_BYTE.size if version is not None and version > max(_TRELLIS_BASES) else 0
    extra = quality_bytes + (_TILE_BYTE.size + band_bytes + weight_bytes + trellis_bytes if has_tile_byte else 0)
    if len(data) < HEADER_BYTES + extra:
        raise ValueError(f"entropy-coded autoencoder stream of {len(data)} bytes is shorter than its "
                         f"{HEADER_BYTES + extra}-byte header")
    _, stream_model, checksum = _HEADER.unpack_from(data)
    if stream_model != model_id:
        raise ValueError(f"entropy-coded autoencoder stream was made by model {stream_model.hex()}, this checkpoint "
                         f"is model {model_id.hex()}: decode it with the checkpoint that encoded it")
    body = data[HEADER_BYTES:]
    tile = _TILE_BYTE.unpack_from(body, quality_bytes)[0] if has_tile_byte else 0
    shift, post_filter = _tile_byte(tile)
    extra += FILTER_BYTES if post_filter else 0
    if len(body) < extra or (len(body) - extra) % WORD.itemsize or zlib.crc32(body) != checksum:
        raise ValueError("entropy-coded autoencoder stream fails its CRC-32 check (truncated or corrupted stream)")
    quality = _QUALITY.unpack_from(body)[0] if variable_rate else None
    after_tile_byte = quality_bytes + _TILE_BYTE.size
    others = _BAND_SHIFTS.unpack_from(body, after_tile_byte) if band_bytes else (shift,) * (BANDS - 1)
    weight = _WEIGHT_BYTE.unpack_from(body, after_tile_byte + band_bytes)[0] if refined else None
    after_weight = after_tile_byte + band_bytes + weight_bytes
    step = _TRELLIS_BYTE.unpack_from(body, after_weight)[0] if trellis_bytes else None
    read_filter = PostFilter.from_bytes(body[extra - FILTER_BYTES:extra]) if post_filter else None
    header = StreamHeader(quality, (shift, *others), read_filter, weight, step)
    return np.frombuffer(body[extra:], dtype=WORD).astype(np.uint32), header


def _tile_byte(value: int) -> tuple[int, bool]:
    """The (first band's) shift and whether a post-filter follows."""
    shift = value & _SHIFT_BITS
    return shift - (_SHIFT_BITS + 1 if shift & 0x40 else 0), bool(value & _FILTER_FLAG)
