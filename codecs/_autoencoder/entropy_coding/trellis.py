"""Trellis-coded quantization of the latent: 4-state dependent quantization, as in VVC, along the channels.

Rounding each latent element to the nearest integer around its mean is a scalar quantizer: at the codec's upper
levels the learned codec codes as an ideal transform with a scalar quantizer would (within 4 %,
``benchmarks/gaussian_bound.py``), and that quantizer's high-rate loss is about a quarter of a bit per coded
element. Dependent quantization takes back part of it (Schwarz et al., "Hybrid video coding with trellis-coded
quantization", DCC 2019). Two quantizers of the same double step share the work: ``Q0``'s points are the integer
multiples of the double step, ``Q1``'s are zero and the odd multiples of the single step; a 4-state machine, moved
by the parity of each coded level, says which quantizer codes the next element. The encoder chooses the levels of
a whole chain by a Viterbi search on squared image error plus lambda times the bits; the decoder only follows the
state machine.

Here everything is in units of the double step (``2 * step``): ``Q0``'s points are the integers ``k`` and its
cells ``[k - 1/2, k + 1/2]``, so its tables are the integer-bin Gaussian tables at the scale divided by the double
step; ``Q1``'s points are ``0`` and ``k - sign(k) / 2``, its cells ``[-1/4, 1/4]``, ``[1/4, 1]`` and ``[m - 1, m]``
(``tables.odd_gaussian_tables``). Chains run along the channels, each starting in state 0; the checkerboard
layout runs two at each latent position and pass, over the first and the second half of the channels
(``latent_codecs.checkerboard.TRELLIS_CHAINS``). Short chains lose the gain: measured by an oracle on training
chips with the shipped decoder at quality 7 (ideal code lengths, rate at equal PSNR), chains of 256, 128, 64, 32,
16 and 8 channels saved 2.0, 1.9, 1.6, 1.2, 0.5 and -0.6 % of the rate.

The range coder follows the chains too (``ChainedSymbolCoder``): each link's elements are coded in one call
under per-element tables (the family its state picks), so that decoding takes one call per link rather than one
per table group. Numpy and constriction only, as the range-coding workers need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.symbol_coding import (
    code_lengths,
    coded_as,
    constriction,
    overflow_probabilities,
    refuse_beyond_format,
    signed_distances,
)

NEXT_STATE = np.array([[0, 2], [2, 0], [1, 3], [3, 1]])
"""The next state by state and by the parity of the level coded in it; states 0 and 1 code with ``Q0``, states 2
and 3 with ``Q1``."""
STATES = len(NEXT_STATE)
CANDIDATES = 3
"""The levels the search weighs per element and quantizer: the points on either side of the residual, and zero."""
LEVEL_REACH = 512
"""The search rates levels beyond +-512 as if they were at it: they are rare, and cost about as much either way."""


DOUBLE_STEP_UNITS = 64
"""A double step is stored as a whole number of 64ths (one byte in the stream, ``runtime.entropy_stream``), at
least one: a dyadic number, so that encoder and decoder compute the same reconstruction points exactly."""
SMALLEST_DOUBLE_STEP_CODE = DOUBLE_STEP_UNITS


@dataclass(frozen=True)
class TrellisLevel:
    """How the encoder quantizes at one quality: the double step's code (in 64ths), the weight of each channel's
    squared error (image squared error per squared latent error, measured through the decoder) and lambda (image
    squared error per bit), as ``TrellisSearch`` weighs them."""

    double_step_code: int
    weights: np.ndarray
    lmbda: float

    @property
    def double_step(self) -> float:
        return self.double_step_code / DOUBLE_STEP_UNITS


@dataclass(frozen=True)
class TrellisSettings:
    """A checkpoint's trellis-coded qualities (whole levels) and each one's ``TrellisLevel``; a quality between
    levels takes its nearest level's, and a level without settings is rounded as scalar quantization does."""

    qualities: np.ndarray
    double_step_codes: np.ndarray
    weights: np.ndarray
    """Levels x channels."""
    lambdas: np.ndarray

    def at(self, quality: float) -> TrellisLevel | None:
        matches = np.flatnonzero(self.qualities == int(np.floor(quality + 0.5)))
        if not len(matches):
            return None
        index = int(matches[0])
        return TrellisLevel(int(self.double_step_codes[index]), self.weights[index], float(self.lambdas[index]))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{name}": np.asarray(getattr(self, name)) for name in SETTING_FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> TrellisSettings | None:
        if f"{prefix}.qualities" not in arrays:
            return None
        return cls(*(np.asarray(arrays[f"{prefix}.{name}"]) for name in SETTING_FIELDS))


SETTING_FIELDS = ("qualities", "double_step_codes", "weights", "lambdas")


def table_offset(scales: np.ndarray, double_step: float) -> int:
    """How many tables down a scale divided by ``double_step`` (at least 1) lies, on the ascending log-spaced
    ``scales``: exact arithmetic (a product and comparisons), so both sides find the same."""
    return int(np.searchsorted(scales, scales[0] * double_step))


def in_odd_quantizer(states: np.ndarray) -> np.ndarray:
    return states >= 2


def points(levels: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """Each level's reconstruction point in units of the double step: ``k`` in ``Q0``, ``k - sign(k) / 2`` in
    ``Q1`` (``odd``)."""
    return np.where(odd, levels - 0.5 * np.sign(levels), levels)


def odd_of_chains(levels: np.ndarray) -> np.ndarray:
    """Which elements of chains of ``levels`` (links along the first axis, every chain starting in state 0) the
    state machine sends to ``Q1``."""
    odd = np.empty(levels.shape, dtype=bool)
    state = np.zeros(levels.shape[1:], dtype=np.int64)
    for link, level in enumerate(levels):
        odd[link] = in_odd_quantizer(state)
        state = NEXT_STATE[state, np.abs(level) & 1]
    return odd


def reconstruction(levels: np.ndarray) -> np.ndarray:
    """The points, in units of the double step, of chains of ``levels`` (links along the first axis)."""
    return points(levels, odd_of_chains(levels))


class TrellisSearch:
    """The encoder's Viterbi search for the levels of chains, under a checkpoint's ``Q0`` and ``Q1`` tables (the
    ``Q0`` family first, then ``Q1``'s, as many of each) and with their code lengths as the range coder spends
    them."""

    def __init__(self, tables: ProbabilityTables):
        self.family_size = len(tables) // 2
        self.bits = code_lengths(tables, np.arange(-LEVEL_REACH, LEVEL_REACH + 1))

    def levels(self, residuals: np.ndarray, tables: np.ndarray, weights: np.ndarray, lmbda: float) -> np.ndarray:
        """The levels (int64) of chains of ``residuals`` (links along the first axis, in units of the double step)
        whose squared error, each element's weighted by ``weights`` (one per link, or per element), plus ``lmbda``
        times their bits under ``tables`` (the ``Q0`` table index of each element) is least."""
        links, chains = residuals.shape
        cost = np.full((STATES, chains), np.inf)
        cost[0] = 0.0
        came_from = np.empty((links, STATES, chains), dtype=np.int8)
        candidates = np.empty((links, 2 * CANDIDATES, chains), dtype=np.int64)
        every = np.arange(chains)
        for link in range(links):
            even, odd = self.candidates(residuals[link])
            candidates[link] = np.concatenate([even, odd])
            even_cost = self.link_costs(residuals[link], even, tables[link], weights[link], lmbda, False)
            odd_cost = self.link_costs(residuals[link], odd, tables[link], weights[link], lmbda, True)
            totals = np.concatenate([cost[0] + even_cost, cost[1] + even_cost, cost[2] + odd_cost,
                                     cost[3] + odd_cost])
            targets = np.concatenate([NEXT_STATE[state, np.abs(odd if in_odd_quantizer(state) else even) & 1]
                                      for state in range(STATES)])
            for state in range(STATES):
                reaching = np.where(targets == state, totals, np.inf)
                came_from[link, state] = best = reaching.argmin(axis=0)
                cost[state] = reaching[best, every]
        return self.traced_back(cost, came_from, candidates)

    @staticmethod
    def candidates(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per quantizer, the levels of the points on either side of each residual, and zero: (3, chains) each."""
        below = np.floor(residuals)
        magnitude = np.floor(np.abs(residuals) + 0.5)  # Q1's point m - 1/2 lies at or under |r| for m >= 1
        sign = np.where(residuals < 0, -1, 1)
        zero = np.zeros_like(below)
        even = np.stack([below, below + 1, zero])
        odd = np.stack([magnitude, magnitude + 1, zero]) * sign
        return even.astype(np.int64), odd.astype(np.int64)

    def link_costs(self, residuals: np.ndarray, levels: np.ndarray, tables: np.ndarray, weight: float | np.ndarray,
                   lmbda: float, odd: bool) -> np.ndarray:
        error = residuals - points(levels, odd)
        rows = tables + (self.family_size if odd else 0)
        bits = self.bits[rows, np.clip(levels, -LEVEL_REACH, LEVEL_REACH) + LEVEL_REACH]
        return weight * error * error + lmbda * bits

    @staticmethod
    def traced_back(cost: np.ndarray, came_from: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """The cheapest path's levels, followed back from its cheapest last state."""
        links, _, chains = came_from.shape
        levels = np.empty((links, chains), dtype=np.int64)
        state = cost.argmin(axis=0)
        every = np.arange(chains)
        for link in range(links - 1, -1, -1):
            choice = came_from[link, state, every].astype(np.int64)  # previous state * CANDIDATES + candidate
            previous = choice // CANDIDATES
            levels[link] = candidates[link, choice % CANDIDATES + CANDIDATES * in_odd_quantizer(previous), every]
            state = previous
        return levels


class ChainedSymbolCoder:
    """Range-codes chains of levels (links along the first axis of a tile's values), each element under the
    ``Q0`` or ``Q1`` table its chain's state picks: its ``Q0`` table index, plus the family's size in ``Q1``.

    Each link's elements are one call under per-element tables (each table's probabilities padded with zeros to
    the ``padded_width`` of the longest that the link's elements could use in either family), then the overflow
    distances of its end symbols (``symbol_coding``), so that the decoder knows a link's levels, and with them the
    next link's states, after one call. Whatever does not depend on the states is looked up for a whole batch before
    its first link. On the 2-core AMD EPYC VM (quality 8 of the shipped model, batches of 4 tiles of 256 px, under
    cProfile) the chained decoding took about 7.5 ms per tile, 4.6 of them in the range decoder, whose work grows
    with the padded widths (about a nanosecond per padded probability)."""

    def __init__(self, tables: ProbabilityTables):
        self.tables = tables
        self.family_size = len(tables) // 2
        padded = np.zeros((len(tables), int(padded_width(tables.lengths.max()))))
        for index in range(len(tables)):
            padded[index, :tables.lengths[index]] = tables.table(index)
        self.padded = {int(width): np.ascontiguousarray(padded[:, :width])
                       for width in np.unique(padded_width(np.arange(1, padded.shape[1] + 1)))}
        """The tables padded to each ``padded_width``, each a contiguous array: a link's rows are one ``take``."""
        self.model_family = constriction.stream.model.Categorical(perfect=False)
        self.overflow_model = constriction.stream.model.Categorical(overflow_probabilities(), perfect=False)

    def encode(self, encoder, values: np.ndarray, tables: np.ndarray) -> None:
        """One tile's chains of ``values`` (links first), each element under the ``Q0`` table ``tables`` names."""
        if not values.size:
            return
        widths, _ = self.widths_and_rows(tables)
        rows = tables + self.family_size * odd_of_chains(values)
        # every link's symbols and distances at once (numpy per link cost as much as the coding); per link, only
        # the range coder runs, on its row of symbols and its share of the distances
        symbols, at_end, zigzag = coded_as(values, self.tables.offsets[rows], self.tables.lengths[rows])
        refuse_beyond_format(values, at_end, zigzag)
        symbols, zigzag = symbols.astype(np.int32), zigzag.astype(np.int32)
        ends_before = np.concatenate([[0], np.cumsum(np.count_nonzero(at_end, axis=1))]).tolist()
        for link, (link_rows, width) in enumerate(zip(rows, widths.tolist())):
            encoder.encode(symbols[link], self.model_family, self.padded[width].take(link_rows, axis=0))
            if ends_before[link + 1] > ends_before[link]:
                encoder.encode(zigzag[ends_before[link]:ends_before[link + 1]], self.overflow_model)

    def decode(self, decoder, tables: np.ndarray) -> np.ndarray:
        """The levels (int64, the shape of ``tables``) that ``encode`` wrote under these ``Q0`` tables."""
        return self.decode_tiles([decoder], tables[None])[0]

    def decode_tiles(self, decoders: list, tables: np.ndarray) -> np.ndarray:
        """Each tile's levels (tiles first, then as ``decode``), from its own decoder: link by link for all the
        tiles together, so that only the range decoder runs per tile and link (a tile's tables, padded as its
        encoder padded them, and its end symbols' distances)."""
        levels = np.empty(tables.shape, dtype=np.int64)
        if not levels.size:
            return levels
        widths, odd_rows = self.widths_and_rows(tables)
        offsets, lasts = self.tables.offsets[tables], self.tables.lengths[tables] - 1  # the same in either family
        state = np.zeros((len(tables), *tables.shape[2:]), dtype=np.int64)
        for link in range(tables.shape[1]):
            rows = np.where(in_odd_quantizer(state), odd_rows[:, link], tables[:, link])
            symbols = np.stack([decoder.decode(self.model_family, self.padded[width].take(tile_rows, axis=0))
                                for decoder, tile_rows, width in zip(decoders, rows, widths[:, link].tolist())])
            np.add(symbols, offsets[:, link], out=levels[:, link])
            if symbols.min() == 0 or (symbols >= lasts[:, link]).any():
                for decoder, tile_levels, tile_symbols, tile_rows in zip(decoders, levels[:, link], symbols, rows):
                    self.read_distances(decoder, tile_levels, tile_symbols, tile_rows)
            state = NEXT_STATE[state, levels[:, link] & 1]
        return levels

    def read_distances(self, decoder, levels: np.ndarray, symbols: np.ndarray, rows: np.ndarray) -> None:
        """Move a link's end symbols' ``levels`` (one tile's) by the distances that follow them, in place."""
        lasts = self.tables.lengths[rows] - 1
        if (symbols > lasts).any():
            raise ValueError("the trellis-coded latent holds a symbol beyond its table (corrupted stream)")
        at_end = (symbols == 0) | (symbols == lasts)
        if at_end.any():
            zigzag = decoder.decode(self.overflow_model, int(np.count_nonzero(at_end))).astype(np.int64)
            levels[at_end] += signed_distances(zigzag)

    def widths_and_rows(self, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per link (of one tile's ``tables``, or of each tile's: tiles first; the elements along the last axis),
        the ``padded_width`` of the longest table its elements could use in either family (what its tables are
        padded to), and each element's ``Q1`` table."""
        odd_rows = tables + self.family_size
        longest = np.maximum(self.tables.lengths[tables], self.tables.lengths[odd_rows]).max(axis=-1)
        return padded_width(longest), odd_rows


EXACT_WIDTHS = 64
"""Links whose longest table is at most this long pad it to the next multiple of 8; longer ones to the next power of
two. The range decoder's work grows with the padded width (about a nanosecond per padded probability), a link's
tables are usually short, and each width takes a copy of the tables."""


def padded_width(lengths: np.ndarray) -> np.ndarray:
    """The width a link's tables are padded to, for its longest table's length: integer arithmetic, the same on any
    machine (the padding changes the coded probabilities, a little, so encoder and decoder must agree)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.where(lengths <= EXACT_WIDTHS, (lengths + 7) // 8 * 8, next_power_of_two(lengths))


def next_power_of_two(values: np.ndarray) -> np.ndarray:
    """The least power of two at or above each positive integer, in integer arithmetic (exact on any machine)."""
    values = np.asarray(values, dtype=np.int64) - 1
    for shift in (1, 2, 4, 8, 16, 32):
        values |= values >> shift
    return values + 1
