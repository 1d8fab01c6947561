"""The entropy-coded autoencoder's byte format, and range coding of integer symbols with ``constriction``.

Header (9 bytes, big-endian): format version (1 byte), model id (4 bytes, as
in the fixed-length format), CRC-32 of the payload (4 bytes). The payload is
one range-coder stream (``constriction.stream.queue``, 32-bit words stored
little-endian) holding, in this order: the side latent ``z`` channel by
channel (hyperprior only), then the latent ``y`` (channel by channel under
the factorized prior; under the hyperprior, grouped by scale table in
ascending order, each group in raster order). The latent shapes follow from
the tile shape and the checkpoint, so they are not written. A range decoder
reads garbage from damaged bytes without noticing; the CRC turns that into a
clear error.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from harness_codecs._autoencoder.bitstream import MODEL_ID_BYTES
from harness_codecs._autoencoder.entropy_tables import ProbabilityTables

try:
    import constriction
except ImportError:  # the plugin must still import, so `harness list` can say what is missing
    constriction = None

ENTROPY_FORMAT_VERSION = 1
_HEADER = struct.Struct(f">B{MODEL_ID_BYTES}sI")
HEADER_BYTES = _HEADER.size
WORD = np.dtype("<u4")
INSTALL_HINT = "the constriction range coder is not installed: pip install constriction"


def unavailable_reason() -> str | None:
    return INSTALL_HINT if constriction is None else None


def pack_stream(model_id: bytes, words: np.ndarray) -> bytes:
    payload = np.asarray(words, dtype=np.uint32).astype(WORD).tobytes()
    return _HEADER.pack(ENTROPY_FORMAT_VERSION, model_id, zlib.crc32(payload)) + payload


def unpack_stream(data: bytes, model_id: bytes) -> np.ndarray:
    """The payload's 32-bit words, after checking version, model and checksum (``ValueError`` otherwise)."""
    if len(data) < HEADER_BYTES:
        raise ValueError(f"entropy-coded autoencoder stream of {len(data)} bytes is shorter than its "
                         f"{HEADER_BYTES}-byte header")
    version, stream_model, checksum = _HEADER.unpack_from(data)
    if version != ENTROPY_FORMAT_VERSION:
        raise ValueError(f"entropy-coded autoencoder stream has format version {version}; "
                         f"this decoder reads version {ENTROPY_FORMAT_VERSION}")
    if stream_model != model_id:
        raise ValueError(f"entropy-coded autoencoder stream was made by model {stream_model.hex()}, this checkpoint "
                         f"is model {model_id.hex()}: decode it with the checkpoint that encoded it")
    payload = data[HEADER_BYTES:]
    if len(payload) % WORD.itemsize or zlib.crc32(payload) != checksum:
        raise ValueError("entropy-coded autoencoder stream fails its CRC-32 check (truncated or corrupted stream)")
    return np.frombuffer(payload, dtype=WORD).astype(np.uint32)


class SymbolCoder:
    """Range-codes integer values under one of several tabulated distributions.

    The ``constriction`` models are built once from the tables; values beyond
    a table's ends are clamped to its end symbols (which carry the tails).
    """

    def __init__(self, tables: ProbabilityTables):
        self.tables = tables
        self.models = [constriction.stream.model.Categorical(tables.table(index), perfect=False)
                       for index in range(len(tables))]

    def encode(self, encoder: constriction.stream.queue.RangeEncoder, values: np.ndarray, table: int) -> None:
        symbols = np.clip(values - self.tables.offsets[table], 0, self.tables.lengths[table] - 1)
        encoder.encode(symbols.astype(np.int32), self.models[table])

    def decode(self, decoder: constriction.stream.queue.RangeDecoder, count: int, table: int) -> np.ndarray:
        symbols = decoder.decode(self.models[table], count)
        return symbols.astype(np.int64) + self.tables.offsets[table]


def new_encoder() -> constriction.stream.queue.RangeEncoder:
    return constriction.stream.queue.RangeEncoder()


def new_decoder(words: np.ndarray) -> constriction.stream.queue.RangeDecoder:
    return constriction.stream.queue.RangeDecoder(words)
