"""A tile's scale shift: the encoder moves every Gaussian table choice of a tile by the same number of scale steps.

The prior predicts each latent element's Gaussian scale, and the coder uses the table of the next tabulated scale
up. A prior trained with the uniform-noise proxy of rounding overstates the scales at low rates, where most
rounded residuals are 0 (the gdn-dct-light model's, measured on the test chips: scales a quarter too wide at
qualities 0 to 2), and a processing chain it did not train on can leave them too narrow at high rates (a fifth,
on BigEarthNet-S1 and pyroSAR at qualities 4 to 8). The encoder knows every residual, so it tries each shift of
``SHIFTS`` (the tables are log-spaced, so a shift of ``k`` multiplies every scale by the same factor, about
``1.025 ** k`` for the 256-scale table), keeps the one that codes the tile in the fewest bits, and writes it
in the stream's header; the decoder shifts its table choices by the same amount. Nothing is estimated on the
decoder's side, so the shift is exact on any device, and a shift of 0 is the prior as trained.

The prior's calibration differs between small and large scales, so the encoder chooses one shift per band of
predicted scales (``BAND_SCALES``), each for the elements whose unshifted table falls in it: on the 24 default tiles
the best five shifts code the shipped model's latent in 0.2 to 2.4 % fewer bits than the best single one
(``benchmarks/decoder_side_headroom.py``), for 4 more bytes, which the encoder counts: where they cost more than
they save it keeps one shift for every band, and the stream holds that one alone. Streams with a single shift read
it as the same shift in every band.
"""

from __future__ import annotations

import numpy as np
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.range_coding import SCALE_CODERS, TRELLIS, Section, TileDecoders
from harness_codecs._autoencoder.entropy_coding.symbol_coding import code_lengths
from harness_codecs._autoencoder.entropy_coding.trellis import odd_of_chains

SHIFT_LIMIT = 32
"""Shifts go from ``-SHIFT_LIMIT`` to ``SHIFT_LIMIT`` scale steps (a factor of 0.45 to 2.2 with 256 scales): the
measured best shifts lay within -17 and +14."""
SHIFTS = np.arange(-SHIFT_LIMIT, SHIFT_LIMIT + 1)
SMALLEST_FIRST = np.argsort(np.abs(SHIFTS), kind="stable")
"""The indexes of ``SHIFTS`` by size, so that among shifts of equal cost the smallest (0 first) wins."""
BAND_SCALES = (0.3, 0.7, 1.5, 4.0)
"""The scales that part a tile's latent elements into bands, by the scale the prior predicts: below 0.3 (almost
every value 0), 0.3 to 0.7, 0.7 to 1.5, 1.5 to 4 and above."""
BANDS = len(BAND_SCALES) + 1
BAND_SHIFT_BITS = 8 * (BANDS - 1)
"""What a stream's shifts cost beyond a single one's: a signed byte for each band after the first (the stream
format, ``runtime.entropy_stream``, stores them so), which the encoder weighs against what they save."""
VALUE_REACH = 512
"""The choice counts values beyond +-512 as if they were at it: they are rare, and cost about as much under
every shift."""


def shifted(tables: np.ndarray, shift: int | np.ndarray, table_count: int) -> np.ndarray:
    """Table indexes moved by ``shift`` scale steps (or by an array of shifts, broadcast), kept within the
    ``table_count`` tables."""
    return np.clip(tables + shift, 0, table_count - 1)


def band_edges(scales: np.ndarray) -> np.ndarray:
    """The first table of each band but the first, for tables of the ascending ``scales``."""
    return np.searchsorted(scales, BAND_SCALES)


def bands_of(tables: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The band of each table index (any shape), for the tables' ``band_edges``."""
    return np.searchsorted(edges, tables, side="right")


def shifted_by_tile(tables: np.ndarray, shifts: np.ndarray, edges: np.ndarray, table_count: int) -> np.ndarray:
    """A batch's table indexes (tiles first) each moved by its tile's shift for the band of the index: ``shifts`` is
    tiles x ``BANDS``, ``edges`` the tables' ``band_edges``."""
    tile = np.arange(len(tables)).reshape(-1, *[1] * (tables.ndim - 1))
    return shifted(tables, shifts[tile, bands_of(tables, edges)], table_count)


def family_rows(section: Section, table_count: int) -> np.ndarray:
    """A section's table indexes as the shift chooser counts them: trellis-coded levels' in their family, ``Q1``'s
    after ``table_count`` ``Q0`` tables (each tile's chains run along its links, the second axis)."""
    if section.coder != TRELLIS:
        return section.tables
    return section.tables + table_count * odd_of_chains(np.moveaxis(section.values, 1, 0)).swapaxes(0, 1)


class ShiftChooser:
    """Picks a tile's shifts from its latent's values and table indexes, with the coder's own code lengths."""

    def __init__(self, tables: ProbabilityTables, scales: np.ndarray, families: int = 1):
        self.table_count = len(tables) // families
        """The tables of one family: trellis-coded levels (``trellis``) have two, ``Q0``'s and ``Q1``'s, each of a
        table per scale, and a shift moves a table within its family."""
        self.edges = band_edges(scales)
        self.bits = code_lengths(tables, np.arange(-VALUE_REACH, VALUE_REACH + 1))
        """Bits of each value in [-VALUE_REACH, VALUE_REACH] under each table: tables x values."""

    def best(self, values: np.ndarray, tables: np.ndarray) -> np.ndarray:
        """The shifts (one per band) that code ``values`` under ``tables`` (one tile's, any shape; each index within
        its family, plus the family's first) in the fewest bits,
        counting ``BAND_SHIFT_BITS`` for shifts that differ: each band's own best, or one best shift in every band
        where the bands' bytes would cost more than they save (small tiles at low rates). 0 for an empty band and
        among equals."""
        by_band = self.counts(values.ravel(), tables.ravel())
        # a pair's band follows from its table, so the bands part one set of pairs, looked up once for all
        present = np.flatnonzero(by_band.any(axis=0))
        counts = by_band[:, present]
        costs = self.costs(present) @ np.vstack([counts, counts.sum(axis=0)]).T  # shifts x (each band, all)
        single, single_bits = cheapest(costs[:, -1])
        per_band = [cheapest(band_costs) for band_costs in costs[:, :-1].T]
        if sum(bits for _, bits in per_band) + BAND_SHIFT_BITS < single_bits:
            return np.array([shift for shift, _ in per_band])
        return np.full(BANDS, single)

    def counts(self, values: np.ndarray, tables: np.ndarray) -> np.ndarray:
        """How often each (table, value) pair of the flat ``values`` and ``tables`` occurs in each band: ``BANDS`` x
        (tables x values), in one count."""
        width = self.bits.shape[1]
        columns = np.clip(values, -VALUE_REACH, VALUE_REACH) + VALUE_REACH
        tables = tables.astype(np.int64)
        keys = (bands_of(tables % self.table_count, self.edges) * len(self.bits) + tables) * width + columns
        return np.bincount(keys, minlength=BANDS * len(self.bits) * width).reshape(BANDS, -1)

    def costs(self, pairs: np.ndarray) -> np.ndarray:
        """The bits of each (table, value) pair (flat indexes of ``bits``) under each shift: ``SHIFTS`` x pairs."""
        rows, columns = np.divmod(pairs, self.bits.shape[1])
        family_starts = rows - rows % self.table_count
        shifted_rows = family_starts + shifted(rows[None, :] - family_starts, SHIFTS[:, None], self.table_count)
        return self.bits[shifted_rows, columns[None, :]]


def cheapest(costs: np.ndarray) -> tuple[int, float]:
    """The shift of the fewest bits among ``costs`` (one per shift of ``SHIFTS``), 0 among equals, and its bits."""
    chosen = SMALLEST_FIRST[np.argmin(costs[SMALLEST_FIRST])]
    return int(SHIFTS[chosen]), float(costs[chosen])


class ShiftedDecoders:
    """A batch's tile decoders (``range_coding.TileDecoders``) that read each tile's latent under its tables moved
    by that tile's shifts (tiles x ``BANDS``), as the encoder wrote it (trellis-coded levels: their ``Q0`` tables,
    which the chained coder moves to ``Q1``'s by its states); the side latent's tables are its channels', never
    shifted."""

    def __init__(self, decoders: TileDecoders, shifts: np.ndarray, edges: np.ndarray, table_count: int):
        self.decoders = decoders
        self.shifts = shifts
        self.edges = edges
        self.table_count = table_count

    def __len__(self) -> int:
        return len(self.decoders)

    def read(self, coder: str, tables: np.ndarray) -> np.ndarray:
        if coder in SCALE_CODERS:
            tables = shifted_by_tile(tables, self.shifts, self.edges, self.table_count)
        return self.decoders.read(coder, tables)

    def exhausted(self) -> list[bool]:
        return self.decoders.exhausted()

    def close(self) -> None:
        self.decoders.close()
