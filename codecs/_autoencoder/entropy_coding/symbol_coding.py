"""Range coding of integer symbols under tabulated distributions, with ``constriction``.

Kept apart from the networks and from the stream's header (numpy and
constriction only, no torch), so that a range-coding worker process
(``range_coding``) starts in a fraction of a second and holds a few tens of
megabytes rather than torch's hundreds.
"""

from __future__ import annotations

import numpy as np
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables

try:
    import constriction
except ImportError:  # the plugin must still import, so `harness list` can say what is missing
    constriction = None

INSTALL_HINT = "the constriction range coder is not installed: pip install constriction"


def unavailable_reason() -> str | None:
    return INSTALL_HINT if constriction is None else None


OVERFLOW_LIMIT = 2**16
"""How many zigzag-mapped distances beyond a table's end the format can code: |distance| < 2**15. A trained
latent never comes near; a farther value is refused rather than clamped."""

LEAST_PROBABILITY = 2.0**-24
"""constriction's categorical models quantize probabilities to 24 bits and give every symbol at least one unit
(``perfect=False``): a table's end symbol, whose tail mass is 5e-10, costs 24 bits rather than 31."""


def overflow_probabilities() -> np.ndarray:
    """P(z) proportional to 1 / (z + 1)^2: z = 0 (a value exactly at the table's end) costs 0.7 bits,
    a distance of 100 about 14 bits."""
    weights = 1.0 / np.arange(1, OVERFLOW_LIMIT + 1, dtype=np.float64) ** 2
    return weights / weights.sum()


def code_lengths(tables: ProbabilityTables, values: np.ndarray) -> np.ndarray:
    """The ideal bits (``-log2 p``) ``SymbolCoder`` spends on each of ``values`` under each table: tables x values.

    A value at or beyond a table's end costs its end symbol and its distance under the overflow distribution,
    as ``encode`` writes them; a distance the format cannot hold costs as the largest it can. A probability
    counts as at least ``LEAST_PROBABILITY``, as the range coder's models give it."""
    symbols, at_end, zigzag = coded_as(values[None, :], tables.offsets[:, None], tables.lengths[:, None])
    bits = -np.log2(np.maximum(tables.probabilities[tables.starts[:, None] + symbols], LEAST_PROBABILITY))
    bits[at_end] -= np.log2(overflow_probabilities())[np.minimum(zigzag, OVERFLOW_LIMIT - 1)]
    return bits


def refuse_beyond_format(values: np.ndarray, at_end: np.ndarray, zigzag: np.ndarray) -> None:
    """A ``ValueError`` naming the first of ``values`` whose distance beyond its table's end (``zigzag``, for the
    end symbols ``at_end`` marks, as ``coded_as`` gives them) the format cannot hold."""
    if zigzag.size and zigzag.max() >= OVERFLOW_LIMIT:
        raise ValueError(f"latent value {int(values[at_end][zigzag.argmax()])} lies {OVERFLOW_LIMIT // 2} or "
                         "more beyond its probability table: the stream format cannot hold it")


def signed_distances(zigzag: np.ndarray) -> np.ndarray:
    """The signed distances beyond a table's end that ``coded_as`` zigzag-mapped."""
    return np.where(zigzag % 2 == 0, zigzag // 2, -(zigzag + 1) // 2)


def coded_as(values: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """How ``SymbolCoder`` writes each value under a table of ``offsets`` and ``lengths`` (broadcast): its symbol,
    whether that is an end symbol, and, for the end symbols only (in order), the zigzag-mapped distance beyond
    that end that follows it."""
    lasts = lengths - 1
    symbols = np.clip(values - offsets, 0, lasts)
    at_end = (symbols == 0) | (symbols == lasts)
    distances = (np.broadcast_to(values, at_end.shape)[at_end] - np.broadcast_to(offsets, at_end.shape)[at_end]
                 - symbols[at_end])
    return symbols, at_end, np.where(distances >= 0, 2 * distances, -2 * distances - 1)


class SymbolCoder:
    """Range-codes integer values, each under one of several tabulated distributions.

    The ``constriction`` models are built once from the tables. A table spans
    its distribution's likely values only (``tables``), and its end
    symbols stand for everything beyond; every value coded with an end symbol
    is followed by its signed distance from that end (zigzag-mapped, under a
    fixed heavy-tailed distribution), so any value round-trips exactly. A
    value far outside its predicted distribution (a sharp edge the model did
    not expect) then costs bits rather than pixels. Clamping it to the end
    symbol, as format versions 1 and 2 did, left a real test tile with
    clipped water at 32.2 dB where exact coding reaches 39.3 dB, with the same
    model and quality.

    Values come grouped by table in ascending order, raster order within a
    group; each group's symbols are followed by the distances of its end
    symbols. The mapping to symbols and distances is done for all groups at
    once: per group only the range coder is called, since the per-call numpy
    work cost several times the coding itself (a tile has about 200 groups).
    """

    def __init__(self, tables: ProbabilityTables):
        if len(tables) > 2**16:
            raise ValueError(f"{len(tables)} probability tables: the range coder groups by 16-bit table indexes")
        self.tables = tables
        self.models = [constriction.stream.model.Categorical(tables.table(index), perfect=False)
                       for index in range(len(tables))]
        self.overflow_model = constriction.stream.model.Categorical(overflow_probabilities(), perfect=False)
        self.end_symbols = [np.isin(np.arange(length), (0, length - 1)) for length in tables.lengths.tolist()]
        """Per table, which of its symbols are ends (followed by a distance): decoding counts a group's ends with
        one lookup, since each group's distances follow its symbols in the stream."""

    def encode(self, encoder: constriction.stream.queue.RangeEncoder, values: np.ndarray, tables: np.ndarray) -> None:
        """``values`` (integers), each under the table its element of ``tables`` (same shape) names."""
        order = _grouping_order(tables)
        table_of, ordered = tables.ravel()[order], values.ravel()[order]
        symbols, at_end, zigzag = coded_as(ordered, self.tables.offsets[table_of], self.tables.lengths[table_of])
        refuse_beyond_format(ordered, at_end, zigzag)
        symbols, zigzag = symbols.astype(np.int32), zigzag.astype(np.int32)
        ends_before = np.concatenate([[0], np.cumsum(at_end)])  # how many end symbols precede each position
        for table, start, stop in _groups(table_of):
            encoder.encode(symbols[start:stop], self.models[table])
            if ends_before[stop] > ends_before[start]:
                encoder.encode(zigzag[ends_before[start]:ends_before[stop]], self.overflow_model)

    def decode(self, decoder: constriction.stream.queue.RangeDecoder, tables: np.ndarray) -> np.ndarray:
        """The values (int64, the shape of ``tables``) that ``encode`` wrote under these ``tables``. As in
        ``encode``, only the range decoder and a count of the group's end symbols run per group; the symbols
        become values for all groups at once."""
        order = _grouping_order(tables)
        table_of = tables.ravel()[order]
        symbols = np.empty(table_of.size, dtype=np.int64)
        distances = []
        for table, start, stop in _groups(table_of):
            group = decoder.decode(self.models[table], stop - start)
            symbols[start:stop] = group
            ends = int(np.count_nonzero(self.end_symbols[table][group]))
            if ends:
                distances.append(decoder.decode(self.overflow_model, ends))
        values = symbols + self.tables.offsets[table_of]
        if distances:
            zigzag = np.concatenate(distances).astype(np.int64)
            at_end = (symbols == 0) | (symbols == self.tables.lengths[table_of] - 1)
            values[at_end] += signed_distances(zigzag)
        decoded = np.empty_like(values)
        decoded[order] = values
        return decoded.reshape(tables.shape)

    def decode_tiles(self, decoders: list[constriction.stream.queue.RangeDecoder], tables: np.ndarray) -> np.ndarray:
        """Each tile's values (tiles first), each from its own decoder under its tables (tiles first)."""
        return np.stack([self.decode(decoder, tile_tables) for decoder, tile_tables in zip(decoders, tables)])


def _grouping_order(tables: np.ndarray) -> np.ndarray:
    """The elements' positions sorted by table, raster order kept within a table. Tables are few (a scale table's
    64 entries, a side latent's channels), so they sort as 16-bit keys, which numpy's stable sort radix-sorts: a
    fifth of the time of sorting them as int64."""
    return np.argsort(tables.astype(np.uint16), axis=None, kind="stable")


def _groups(sorted_tables: np.ndarray) -> list[tuple[int, int, int]]:
    """(table, start, stop) of each run of equal tables in a sorted array."""
    if not sorted_tables.size:
        return []
    bounds = np.concatenate([[0], np.flatnonzero(sorted_tables[1:] != sorted_tables[:-1]) + 1, [sorted_tables.size]])
    return list(zip(sorted_tables[bounds[:-1]].tolist(), bounds[:-1].tolist(), bounds[1:].tolist()))


def new_encoder() -> constriction.stream.queue.RangeEncoder:
    return constriction.stream.queue.RangeEncoder()


def new_decoder(words: np.ndarray) -> constriction.stream.queue.RangeDecoder:
    return constriction.stream.queue.RangeDecoder(words)
