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
"""

from __future__ import annotations

import numpy as np
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.range_coding import LATENT, TileDecoders
from harness_codecs._autoencoder.entropy_coding.symbol_coding import code_lengths

SHIFT_LIMIT = 32
"""Shifts go from ``-SHIFT_LIMIT`` to ``SHIFT_LIMIT`` scale steps (a factor of 0.45 to 2.2 with 256 scales): the
measured best shifts lay within -17 and +14."""
SHIFTS = np.arange(-SHIFT_LIMIT, SHIFT_LIMIT + 1)
VALUE_REACH = 512
"""The choice counts values beyond +-512 as if they were at it: they are rare, and cost about as much under
every shift."""


def shifted(tables: np.ndarray, shift: int | np.ndarray, table_count: int) -> np.ndarray:
    """Table indexes moved by ``shift`` scale steps (or by an array of shifts, broadcast), kept within the
    ``table_count`` tables."""
    return np.clip(tables + shift, 0, table_count - 1)


def shifted_by_tile(tables: np.ndarray, shifts: np.ndarray, table_count: int) -> np.ndarray:
    """A batch's table indexes (tiles first) each moved by its tile's shift."""
    return shifted(tables, shifts.reshape(-1, *[1] * (tables.ndim - 1)), table_count)


class ShiftChooser:
    """Picks a tile's shift from its latent's values and table indexes, with the coder's own code lengths."""

    def __init__(self, tables: ProbabilityTables):
        self.table_count = len(tables)
        self.bits = code_lengths(tables, np.arange(-VALUE_REACH, VALUE_REACH + 1))
        """Bits of each value in [-VALUE_REACH, VALUE_REACH] under each table: tables x values."""

    def best(self, values: np.ndarray, tables: np.ndarray) -> int:
        """The shift that codes ``values`` under ``tables`` (one tile's, any shape) in the fewest bits; 0 among
        equals."""
        width = self.bits.shape[1]
        columns = np.clip(values.ravel(), -VALUE_REACH, VALUE_REACH) + VALUE_REACH
        keys = tables.ravel().astype(np.int64) * width + columns
        counts = np.bincount(keys, minlength=self.table_count * width)
        present = np.flatnonzero(counts)
        rows, columns = np.divmod(present, width)
        shifted_rows = shifted(rows[None, :], SHIFTS[:, None], self.table_count)
        costs = self.bits[shifted_rows, columns[None, :]] @ counts[present]
        by_size = np.argsort(np.abs(SHIFTS), kind="stable")
        return int(SHIFTS[by_size][np.argmin(costs[by_size])])


class ShiftedDecoders:
    """A batch's tile decoders (``range_coding.TileDecoders``) that read each tile's latent under its tables moved
    by that tile's shift, as the encoder wrote it; the side latent's tables are its channels', never shifted."""

    def __init__(self, decoders: TileDecoders, shifts: np.ndarray, table_count: int):
        self.decoders = decoders
        self.shifts = shifts
        self.table_count = table_count

    def __len__(self) -> int:
        return len(self.decoders)

    def read(self, coder: str, tables: np.ndarray) -> np.ndarray:
        if coder == LATENT:
            tables = shifted_by_tile(tables, self.shifts, self.table_count)
        return self.decoders.read(coder, tables)

    def exhausted(self) -> list[bool]:
        return self.decoders.exhausted()

    def close(self) -> None:
        self.decoders.close()
