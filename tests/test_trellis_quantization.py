"""Trellis-coded quantization of the latent: its tables, its encoder's search and its chained range coding."""

import itertools

import numpy as np
import pytest
from harness_codecs._autoencoder.entropy_coding.symbol_coding import code_lengths, new_decoder, new_encoder
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables, gaussian_tables, odd_gaussian_tables
from harness_codecs._autoencoder.entropy_coding.trellis import (
    ChainedSymbolCoder,
    TrellisSearch,
    odd_of_chains,
    reconstruction,
)
from scipy.stats import norm

SCALES = np.exp(np.linspace(np.log(0.11), np.log(8.0), 24))
REACH = 60


def both_families(scales=SCALES) -> ProbabilityTables:
    return EntropyTables(gaussian_tables(scales), odd=odd_gaussian_tables(scales)).trellis_tables()


def test_odd_tables_give_each_level_the_gaussian_mass_of_its_cell():
    tables = odd_gaussian_tables(np.array([0.3, 1.7]))
    cells = {0: (-0.25, 0.25), 1: (0.25, 1.0), -1: (-1.0, -0.25), 2: (1.0, 2.0), -3: (-3.0, -2.0)}
    for index, scale in enumerate((0.3, 1.7)):
        inner = {level: cell for level, cell in cells.items()
                 if tables.offsets[index] < level < tables.offsets[index] + tables.lengths[index] - 1}
        assert len(inner) >= 3
        for level, (low, high) in inner.items():
            mass = tables.table(index)[level - tables.offsets[index]]
            assert mass == pytest.approx(norm.cdf(high, scale=scale) - norm.cdf(low, scale=scale), abs=1e-12)
        assert tables.table(index).sum() == pytest.approx(1.0)


def test_reconstruction_follows_the_state_machine_from_state_zero():
    # state 0 (Q0) codes 1 -> state 2 (Q1) codes 1 -> point 1/2, odd -> state 3 (Q1) codes 2 -> 3/2 -> state 3
    # codes -1 -> -1/2, odd -> state 1 (Q0) codes 3 -> 3
    chain = np.array([1, 1, 2, -1, 3])[:, None]
    assert reconstruction(chain)[:, 0].tolist() == [1.0, 0.5, 1.5, -0.5, 3.0]


def path_costs(levels, residuals, tables, weights, lmbda, families):
    """The cost of chains of levels as the decoder would read them: weighted squared error plus lambda bits."""
    bits = code_lengths(families, np.arange(-REACH, REACH + 1))
    rows = tables + len(families) // 2 * odd_of_chains(levels)
    error = (residuals - reconstruction(levels)) ** 2 * weights[:, None]
    return (error + lmbda * bits[rows, levels + REACH]).sum(axis=0)


def neighbours_or_zero(paths, residuals):
    """Whether each path's every level is, in the quantizer its state picks, a point on either side of the residual
    or zero: the levels the search weighs."""
    odd = odd_of_chains(paths)
    below = np.floor(residuals)
    magnitude = np.floor(np.abs(residuals) + 0.5) * np.where(residuals < 0, -1, 1)
    sign = np.where(residuals < 0, -1, 1)
    in_even = (paths == below) | (paths == below + 1)
    in_odd = (paths == magnitude) | (paths == magnitude + sign)
    return ((paths == 0) | np.where(odd, in_odd, in_even)).all(axis=0)


def test_search_finds_the_cheapest_chain_of_neighbouring_levels():
    rng = np.random.default_rng(3)
    families = both_families()
    links, chains = 4, 12
    residuals = rng.normal(0, 1.5, (links, chains))
    tables = rng.integers(4, len(SCALES), (links, chains))
    weights, lmbda = rng.uniform(0.5, 2.0, links), 0.2
    found = TrellisSearch(families).levels(residuals, tables, weights, lmbda)
    every_path = np.array(list(itertools.product(range(-5, 6), repeat=links))).T  # links x paths
    for chain in range(chains):
        column = slice(chain, chain + 1)
        weighed = every_path[:, neighbours_or_zero(every_path, residuals[:, column])]
        costs = path_costs(weighed, residuals[:, column], tables[:, column], weights, lmbda, families)
        best = path_costs(found[:, column], residuals[:, column], tables[:, column], weights, lmbda, families)
        assert best[0] == pytest.approx(costs.min(), abs=1e-9)


def test_search_at_no_rate_cost_is_closer_than_rounding():
    rng = np.random.default_rng(4)
    residuals = rng.uniform(-6, 6, (64, 200))
    tables = np.full(residuals.shape, len(SCALES) - 1)
    levels = TrellisSearch(both_families()).levels(residuals, tables, np.ones(64), 0.0)
    trellis_error = ((residuals - reconstruction(levels)) ** 2).mean()
    assert trellis_error < 0.8 * ((residuals - np.round(residuals)) ** 2).mean()


def test_chained_coding_round_trips_levels_beyond_the_tables():
    rng = np.random.default_rng(5)
    families = both_families()
    tables = rng.integers(0, len(SCALES), (16, 30))
    levels = rng.integers(-3, 4, tables.shape)
    levels[3, 7], levels[9, 2] = 400, -1000  # far beyond any table: end symbols and distances
    coder = ChainedSymbolCoder(families)
    encoder = new_encoder()
    coder.encode(encoder, levels, tables)
    assert (coder.decode(new_decoder(encoder.get_compressed()), tables) == levels).all()


def test_chained_coding_refuses_a_level_beyond_what_the_format_holds_naming_it():
    tables = np.zeros((4, 6), dtype=np.int64)
    levels = np.zeros(tables.shape, dtype=np.int64)
    levels[2, 5] = 100_000  # more than 2 ** 15 beyond any table's end
    with pytest.raises(ValueError, match="latent value 100000 lies 32768 or more beyond its probability table"):
        ChainedSymbolCoder(both_families()).encode(new_encoder(), levels, tables)


def test_chained_coding_spends_what_the_search_counts():
    rng = np.random.default_rng(6)
    families = both_families()
    tables = rng.integers(0, len(SCALES), (32, 500))
    residuals = rng.normal(0, 1.0, tables.shape) * SCALES[tables]
    levels = TrellisSearch(families).levels(residuals, tables, np.ones(32), 0.1)
    encoder = new_encoder()
    ChainedSymbolCoder(families).encode(encoder, levels, tables)
    counted = path_costs(levels, residuals, tables, np.zeros(32), 1.0, families).sum()
    assert 32 * len(encoder.get_compressed()) == pytest.approx(counted, rel=0.01, abs=64)
