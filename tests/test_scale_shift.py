"""The scale shifts: each tile's Gaussian table choices moved, band of scales by band, by the number of scale steps
that codes it in the fewest bits, written in the stream's header and undone by the decoder."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from harness_codecs._autoencoder.entropy_coding.range_coding import LATENT
from harness_codecs._autoencoder.entropy_coding.scale_shift import (
    BAND_SCALES,
    BANDS,
    SHIFT_LIMIT,
    ShiftChooser,
    band_edges,
    shifted,
    shifted_by_tile,
)
from harness_codecs._autoencoder.entropy_coding.symbol_coding import SymbolCoder, code_lengths, new_encoder
from harness_codecs._autoencoder.entropy_coding.tables import SCALE_TABLE, gaussian_tables
from harness_codecs._autoencoder.runtime.entropy_stream import (
    HEADER_BYTES,
    INTEGER_PRIOR_FLAG,
    SINGLE_SHIFT_VERSIONS,
    format_version,
)
from harness_codecs.autoencoder_entropy import codec_class

from tests.test_autoencoder_entropy import make_entropy_checkpoint, speckle_tile

CheckerboardAutoencoder = codec_class("checkerboard")
TABLES = gaussian_tables(SCALE_TABLE)
CHOOSER = ShiftChooser(TABLES, SCALE_TABLE)


def fewest_bits_single_shift(values: np.ndarray, tables: np.ndarray) -> int:
    """The one shift of every table that codes ``values`` in the fewest bits, by summing each value's code length
    under each shift (the smallest shift among equals)."""
    unique, columns = np.unique(values, return_inverse=True)
    bits = code_lengths(TABLES, unique)
    costs = {shift: bits[shifted(tables, shift, len(TABLES)), columns].sum()
             for shift in sorted(range(-SHIFT_LIMIT, SHIFT_LIMIT + 1), key=abs)}
    return min(costs, key=costs.get)


def table_of_scale(scale: float) -> int:
    """The table the coder uses for a predicted ``scale``: that of the next tabulated scale up."""
    return int(np.searchsorted(SCALE_TABLE, scale))


@pytest.fixture(scope="module")
def checkerboard_checkpoint(tmp_path_factory):
    return make_entropy_checkpoint(tmp_path_factory.mktemp("shift") / "checkerboard.pt", "checkerboard")


def test_code_lengths_add_up_to_what_the_range_coder_writes():
    rng = np.random.default_rng(0)
    tables = rng.integers(60, 140, size=4000)
    values = np.round(rng.standard_normal(4000) * SCALE_TABLE[tables] * 1.5).astype(np.int64)
    values[:20] = 300  # beyond every table's end: end symbols and distances
    encoder = new_encoder()
    SymbolCoder(TABLES).encode(encoder, values, tables)
    written = 32 * len(encoder.get_compressed())
    ideal = code_lengths(TABLES, np.unique(values))[tables, np.searchsorted(np.unique(values), values)].sum()

    assert ideal <= written <= ideal + 64  # the coder ends on a whole 32-bit word


def test_the_chosen_shift_brings_the_tables_scale_to_the_values_spread():
    rng = np.random.default_rng(1)
    values = np.round(rng.standard_normal(20000) * 2.0).astype(np.int64)
    predicted = np.full(values.shape, table_of_scale(4.0))  # a prior twice too wide

    shift = CHOOSER.best(values, predicted)[0]  # one band holds every value, so it takes one shift for all

    assert SCALE_TABLE[predicted[0] + shift] == pytest.approx(2.0, rel=0.1)


def test_each_band_of_scales_gets_the_shift_its_own_values_call_for():
    rng = np.random.default_rng(3)
    small, large = table_of_scale(0.5), table_of_scale(8.0)
    values = np.concatenate([np.round(rng.standard_normal(20000) * 1.0),  # a prior twice too narrow here
                             np.round(rng.standard_normal(20000) * 4.0)]).astype(np.int64)  # twice too wide here
    tables = np.repeat([small, large], 20000)

    shifts = CHOOSER.best(values, tables)

    bands = np.searchsorted(CHOOSER.edges, [small, large], side="right")
    assert SCALE_TABLE[small + shifts[bands[0]]] == pytest.approx(1.0, rel=0.1)
    assert SCALE_TABLE[large + shifts[bands[1]]] == pytest.approx(4.0, rel=0.1)
    assert np.count_nonzero(shifts) == 2  # the bands without values keep 0


def test_each_bands_shift_is_the_one_of_fewest_bits_for_its_own_elements_counted_one_by_one():
    rng = np.random.default_rng(5)
    tables = rng.integers(0, len(SCALE_TABLE), size=30000)
    spread = SCALE_TABLE[tables] * rng.choice([0.6, 1.0, 1.7], size=len(SCALE_TABLE))[tables]  # off per table
    values = np.round(rng.standard_normal(tables.size) * spread).astype(np.int64)

    shifts = CHOOSER.best(values, tables)

    bands = np.searchsorted(CHOOSER.edges, tables, side="right")
    assert len(set(shifts.tolist())) > 1  # the bands paid for their bytes
    assert shifts.tolist() == [fewest_bits_single_shift(values[bands == band], tables[bands == band])
                               for band in range(BANDS)]


def test_the_bands_part_the_tables_at_the_band_scales():
    edges = band_edges(SCALE_TABLE)

    assert len(edges) == BANDS - 1
    assert all(SCALE_TABLE[edge - 1] < scale <= SCALE_TABLE[edge] for edge, scale in zip(edges, BAND_SCALES))


def test_each_table_moves_by_the_shift_of_its_own_band_and_tile():
    edges = band_edges(SCALE_TABLE)
    tables = np.array([[edges[0] - 1, edges[0], edges[-1]], [edges[0] - 1, edges[0], edges[-1]]])
    shifts = np.array([[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]])

    moved = shifted_by_tile(tables, shifts, edges, len(SCALE_TABLE))

    assert (moved - tables).tolist() == [[1, 2, 5], [-1, -2, -5]]


def test_a_calibrated_prior_keeps_a_shift_of_zero_or_next_to_it():
    rng = np.random.default_rng(2)
    scales = SCALE_TABLE[rng.integers(40, 160, size=20000)]
    values = np.round(rng.standard_normal(scales.size) * scales).astype(np.int64)

    assert np.abs(CHOOSER.best(values, np.searchsorted(SCALE_TABLE, scales))).max() <= 1


def test_shifts_stay_within_the_tables():
    assert shifted(np.array([0, 5, 250, 255]), -10, 256).tolist() == [0, 0, 240, 245]
    assert shifted(np.array([0, 5, 250, 255]), 10, 256).tolist() == [10, 15, 255, 255]


def test_every_stream_carries_its_own_shift_and_decodes_to_the_same_tile_whatever_it_is(checkerboard_checkpoint,
                                                                                          monkeypatch):
    codec = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint))
    tiles = [speckle_tile((48, 64), seed) for seed in range(3)]
    unshifted = codec.decode_batch(codec.encode_batch(tiles), [tile.shape for tile in tiles])
    forced = [(-SHIFT_LIMIT, 0, 3, 0, SHIFT_LIMIT), (0,) * BANDS, (7, -7, 1, -1, 2)]
    chosen = iter(forced)
    monkeypatch.setattr(codec.coder.shift_chooser, "best", lambda values, tables: np.array(next(chosen)))

    streams = codec.encode_batch(tiles)
    decoded = codec.decode_batch(streams, [tile.shape for tile in tiles])

    assert [codec.coder.unpacked(stream)[1].shifts for stream in streams] == forced
    for tile, before in zip(decoded, unshifted):
        np.testing.assert_array_equal(tile, before)


def test_the_shift_moves_the_latent_tables_and_leaves_the_side_latent_tables_alone(checkerboard_checkpoint):
    coder = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint)).coder
    analyses = coder.analyse([speckle_tile((64, 64))])
    plain = coder.without_scale_shift().sections(analyses)[0].sections
    group, = coder.sections(analyses)
    moved, shifts = group.sections, group.shifts
    edges = coder.shift_chooser.edges

    for before, after in zip(plain, moved):
        expected = (shifted_by_tile(before.tables, shifts, edges, len(TABLES)) if before.coder == LATENT
                    else before.tables)
        np.testing.assert_array_equal(after.tables, expected)
        np.testing.assert_array_equal(after.values, before.values)


def test_a_stream_without_the_shift_decodes_as_its_writer_decodes_it(checkerboard_checkpoint):
    codec = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint))
    tile = speckle_tile((64, 48))
    old_writer = codec.coder.without_scale_shift()  # what the shift is measured against: no tile byte, format 5
    stream = old_writer.encode_batch([tile])[0]

    assert stream[0] == format_version(variable_rate=False, tile_byte=False, integer_prior=True)
    np.testing.assert_array_equal(codec.decode(stream, tile.shape), old_writer.decode_batch([stream], [tile.shape])[0])


def test_a_stream_claiming_a_shift_beyond_the_format_is_refused_in_one_line(checkerboard_checkpoint):
    codec = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint))
    tile = speckle_tile((32, 32))
    stream = bytearray(codec.encode(tile))
    stream[HEADER_BYTES] = (stream[HEADER_BYTES] & 0x80) | 33  # the post-filter flag kept, the shift 33
    stream[5:9] = struct.pack(">I", zlib.crc32(bytes(stream[HEADER_BYTES:])))

    with pytest.raises(ValueError, match=r"claims a scale shift of 33, beyond the format's \+-32$"):
        codec.decode(bytes(stream), tile.shape)


def test_a_tile_whose_bands_share_a_shift_is_written_with_that_one_shift(checkerboard_checkpoint, monkeypatch):
    codec = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint))
    tile = speckle_tile((64, 48))
    chosen = codec.encode(tile)
    monkeypatch.setattr(codec.coder.shift_chooser, "best", lambda values, tables: np.full(BANDS, 4))

    single = codec.encode(tile)

    assert single[0] == SINGLE_SHIFT_VERSIONS[False, False] | INTEGER_PRIOR_FLAG
    assert codec.coder.unpacked(single)[1].shifts == (4,) * BANDS
    np.testing.assert_array_equal(codec.decode(single, tile.shape), codec.decode(chosen, tile.shape))


def test_bands_that_would_not_pay_for_their_bytes_keep_one_shift():
    rng = np.random.default_rng(4)
    tables = rng.integers(40, 200, size=2000)
    values = np.round(rng.standard_normal(tables.size) * SCALE_TABLE[tables] * 1.1).astype(np.int64)

    shifts = CHOOSER.best(values, tables)

    assert len(set(shifts)) == 1 and shifts[0] == fewest_bits_single_shift(values, tables)


def test_a_stream_claiming_a_band_shift_beyond_the_format_is_refused_in_one_line(checkerboard_checkpoint,
                                                                                 monkeypatch):
    codec = CheckerboardAutoencoder(checkpoint=str(checkerboard_checkpoint))
    tile = speckle_tile((32, 32))
    monkeypatch.setattr(codec.coder.shift_chooser, "best", lambda values, tables: np.array([0, 1, 0, 0, 0]))
    stream = bytearray(codec.encode(tile))
    stream[HEADER_BYTES + 2] = 40  # the third band's shift
    stream[5:9] = struct.pack(">I", zlib.crc32(bytes(stream[HEADER_BYTES:])))

    with pytest.raises(ValueError, match=r"claims a scale shift of 40, beyond the format's \+-32$"):
        codec.decode(bytes(stream), tile.shape)
