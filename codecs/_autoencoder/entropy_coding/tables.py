"""The probability tables the range coder uses, computed once from the learned prior and stored.

Encoder and decoder must use exactly the same probabilities, or the decoder
reads different symbols from the same bytes. Evaluating the prior on each
side (GPU on one machine, CPU on another) would give slightly different
floats, so the tables are computed once on the CPU in float64 when a
checkpoint is written and saved in it; the coder reads those numbers and
``constriction`` turns them into its fixed-point CDFs by deterministic
arithmetic. A stream written on a GPU machine therefore decodes bit-exactly
on a CPU machine.

* Factorized density: one table per channel over the integers from the
  ``TAIL_MASS / 2`` quantile to the ``1 - TAIL_MASS / 2`` quantile and one
  more on each side; a value beyond is coded as the end symbol, which
  carries the tail's mass, followed by its distance beyond it
  (``symbol_coding.SymbolCoder``). Checkpoints keep the tables they were
  written with, so a checkpoint written before the margin was added (all the
  shipped ones) codes as it always did.
* Gaussian conditional: one table per scale of a fixed log-spaced
  ``SCALE_TABLE`` (as in CompressAI, finer); an element is coded with the table of
  the smallest tabulated scale at least as large as its predicted scale.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import SCALE_FLOOR, FactorizedDensity
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.range_coding import LATENT, SIDE, TRELLIS
from harness_codecs._autoencoder.entropy_coding.trellis import TrellisSettings
from scipy.special import expit, ndtr, ndtri

TAIL_MASS = 1e-9
SEARCH_RADIUS = 4096
"""The density's support is searched among the integers in ``[-SEARCH_RADIUS, SEARCH_RADIUS]``."""
SCALE_TABLE = np.exp(np.linspace(np.log(SCALE_FLOOR), np.log(64.0), 256))
"""The tabulated scales, log-spaced, 2.5 % apart. CompressAI's 64 (10.6 % apart) made the gdn-dct-light model's
streams 3.6 % (quality 0) and 1.8 % (quality 4) dearer than its density estimated, since each element is coded with
the table of the next scale up; 256 cut that to 1.7 % and 0.6 %. A checkpoint stores the scales its tables were
made with (the tiny and gdn-dct-small ones: 64), so it codes with them. Measured on 8 default tiles."""


@torch.no_grad()
def factorized_tables(density: FactorizedDensity) -> ProbabilityTables:
    """Per channel, the probabilities of the integers holding all but ``TAIL_MASS`` of the density."""
    exact = copy.deepcopy(density).double().cpu()
    values = torch.arange(-SEARCH_RADIUS, SEARCH_RADIUS + 1, dtype=torch.float64)
    logits = exact.cdf_logits(values.expand(exact.channels, 1, -1) + 0.5)[:, 0].numpy()
    below, above = expit(logits), expit(-logits)   # P(X < k + 1/2), P(X > k + 1/2)
    tables, offsets = [], []
    for channel in range(exact.channels):
        # One integer more on each side than the values holding all but TAIL_MASS: an end symbol stands for
        # its value *and everything beyond*, and is followed by a distance that costs at least 0.7 bits
        # (``symbol_coding``), so it must carry the tail alone. Without the margin, a density trained to sit
        # on 0 and -1 (a side-latent channel the model switched off) gave a two-symbol table of ends, and every
        # one of its values paid the distance: a seed-sized model's side latent cost 0.018 bpp where its
        # density estimated 0.002. The margin also keeps the table at two symbols or more, which the range
        # coder needs (constriction refuses a one-symbol table as not normalizable).
        low = max(_first(below[channel] > TAIL_MASS / 2, default=0) - 1, 0)
        high = min(max(_first(above[channel] < TAIL_MASS / 2, default=len(values) - 1), low + 1) + 1,
                   len(values) - 1)
        cumulative = np.concatenate([[0.0], below[channel, low:high], [1.0]])
        tables.append(np.maximum(np.diff(cumulative), 0.0))
        offsets.append(int(values[low]))
    return ProbabilityTables.from_list(tables, offsets)


def gaussian_tables(scales: np.ndarray = SCALE_TABLE) -> ProbabilityTables:
    """Per tabulated scale, a zero-mean Gaussian's probabilities of the integers within its
    ``TAIL_MASS`` quantiles; the end symbols carry the tails."""
    return _gaussian_cell_tables(scales, lambda levels: levels + 0.5)


def odd_gaussian_tables(scales: np.ndarray = SCALE_TABLE) -> ProbabilityTables:
    """Per tabulated scale, a zero-mean Gaussian's probabilities of the cells of trellis-coded quantization's
    ``Q1`` (``trellis``), in units of its double step: ``[-1/4, 1/4]`` for level 0, ``[1/4, 1]`` for 1, ``[m - 1,
    m]`` for ``m >= 2``, mirrored for the negative levels; the end symbols carry the tails. ``Q0``'s are the
    integer-bin ``gaussian_tables``, whose levels each table spans (its ends' cells begin half a level nearer, so
    they carry a little more mass): a level's symbol is then the same in both families, which the chained decoder
    relies on. Shorter tables (a larger tail mass) did not decode measurably faster."""
    return _gaussian_cell_tables(scales, lambda levels: np.where(levels <= -2, levels + 1.0,
                                                                 np.where(levels >= 1, levels, levels * 0.5 + 0.25)))


def _gaussian_cell_tables(scales: np.ndarray, upper_edges) -> ProbabilityTables:
    """Per tabulated scale, a zero-mean Gaussian's probabilities of the levels within its ``TAIL_MASS`` quantiles,
    each level's cell ending at ``upper_edges(levels)`` (in units of a level, for the levels but the last)."""
    tables, offsets = [], []
    reach = float(ndtri(1.0 - TAIL_MASS / 2))
    for scale in scales:
        radius = max(int(np.ceil(reach * scale)), 1)
        cumulative = np.concatenate([[0.0], ndtr(upper_edges(np.arange(-radius, radius)) / scale), [1.0]])
        tables.append(np.diff(cumulative))
        offsets.append(-radius)
    return ProbabilityTables.from_list(tables, offsets)


@dataclass(frozen=True)
class EntropyTables:
    """What the coder reads from the checkpoint: the latent's tables, for the hyperprior the side latent's tables
    and the scale of each latent table, and where the checkpoint has them, trellis-coded quantization's ``Q1``
    tables (``odd``) and the encoder's trellis settings."""

    latent: ProbabilityTables
    side: ProbabilityTables | None = None
    scales: np.ndarray | None = None
    odd: ProbabilityTables | None = None
    trellis: TrellisSettings | None = None

    def to_tensors(self) -> dict[str, torch.Tensor]:
        arrays = self.latent.arrays("latent")
        if self.side is not None:
            arrays |= self.side.arrays("side") | {"scales": np.asarray(self.scales, dtype=np.float64)}
        if self.odd is not None:
            arrays |= self.odd.arrays("odd")
        if self.trellis is not None:
            arrays |= self.trellis.arrays("trellis")
        return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in arrays.items()}

    def trellis_tables(self) -> ProbabilityTables | None:
        """The trellis-coded latent's tables, ``Q0``'s (the latent's) then ``Q1``'s; None without ``Q1``'s."""
        return None if self.odd is None else self.latent.followed_by(self.odd)

    def coders(self) -> dict[str, ProbabilityTables]:
        """The probability tables of each coder a layout's sections name."""
        coders = {LATENT: self.latent} if self.side is None else {LATENT: self.latent, SIDE: self.side}
        return coders | ({TRELLIS: self.trellis_tables()} if self.odd is not None else {})

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "EntropyTables":
        arrays = {name: tensor.numpy() for name, tensor in tensors.items()}
        if "scales" not in arrays:
            return cls(ProbabilityTables.from_arrays(arrays, "latent"))
        odd = ProbabilityTables.from_arrays(arrays, "odd") if "odd.probabilities" in arrays else None
        return cls(ProbabilityTables.from_arrays(arrays, "latent"), ProbabilityTables.from_arrays(arrays, "side"),
                   arrays["scales"].astype(np.float64), odd, TrellisSettings.from_arrays(arrays, "trellis"))


def _first(condition: np.ndarray, default: int) -> int:
    hits = np.flatnonzero(condition)
    return int(hits[0]) if len(hits) else default
