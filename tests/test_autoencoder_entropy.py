"""Specification of the entropy-coded autoencoder codecs: exact round trips, real range-coded streams,
probability tables, likelihoods against scipy, damaged streams and checkpoints."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import constriction
import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.runtime import options
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from harness_codecs._autoencoder.runtime.pipelining import even_parts, pipelined
from harness_codecs._autoencoder.entropy_coding.densities import (
    FactorizedDensity,
    estimated_bits,
    gaussian_likelihood,
)
from harness_codecs._autoencoder.runtime.entropy_stream import HEADER_BYTES, format_version
from harness_codecs._autoencoder.entropy_coding.tables import (
    SCALE_TABLE,
    TAIL_MASS,
    factorized_tables,
    gaussian_tables,
)
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, spec_for
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.range_coding import PooledRangeCoding
from harness_codecs.autoencoder import AutoencoderCodec
from harness_codecs._autoencoder.entropy_coding.symbol_coding import SymbolCoder, new_decoder, new_encoder
from harness_codecs.autoencoder_entropy import codec_class
from scipy.stats import norm

from harness.testing import unavailable_without

ENTROPY_CODECS = {entropy: codec_class(entropy) for entropy in ("factorized", "hyperprior", "checkerboard")}
FactorizedAutoencoder, CheckerboardAutoencoder = ENTROPY_CODECS["factorized"], ENTROPY_CODECS["checkerboard"]
ODD_SHAPES = [(100, 77), (1, 1), (16, 16), (33, 250)]


def make_entropy_checkpoint(path: Path, entropy: str, seed: int = 0, latent_scale: float = 100.0,
                            training: dict | None = None, refinement: tuple[int, ...] = ()) -> Path:
    """An untrained tiny model whose latent is scaled up, so that rounding keeps several integer levels;
    ``training`` is what its checkpoint says of its training (nothing by default, not even its ``lmbda``).
    ``refinement``: the widths of a refinement whose correction is not zero (an untrained one's last layer is)."""
    torch.manual_seed(seed)
    spec = spec_for("tiny", 8, entropy=entropy, refinement=refinement)
    model = Autoencoder(spec)
    with torch.no_grad():
        model.encoder[-1].weight.mul_(latent_scale)
        model.encoder[-1].bias.mul_(latent_scale)
        if model.refinement is not None:
            torch.nn.init.normal_(model.refinement.body[-1].weight, std=0.05)
    save_checkpoint(Checkpoint(spec=spec, bits=0, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=model.state_dict(),
                               entropy_tables=model.prior.tables().to_tensors(), training=training or {}), path)
    return path


@pytest.fixture(scope="module", params=sorted(ENTROPY_CODECS))
def entropy(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, entropy) -> Path:
    return make_entropy_checkpoint(tmp_path_factory.mktemp("entropy") / f"{entropy}.pt", entropy)


@pytest.fixture(scope="module")
def codec(checkpoint, entropy):
    return ENTROPY_CODECS[entropy](checkpoint=str(checkpoint))


def speckle_tile(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, in [0, 1]: gives the untrained encoder a varied latent."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 3, shape[0]), np.linspace(0, 3, shape[1]), indexing="ij")
    tile = 0.5 + 0.3 * np.sin(rows) * np.cos(cols) + 0.1 * rng.standard_normal(shape)
    return np.clip(tile, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_decoded_tile_is_float32_in_0_1_of_the_tile_shape(codec, shape):
    decoded = codec.decode(codec.encode(speckle_tile(shape)), shape)

    assert decoded.shape == shape
    assert decoded.dtype == np.float32
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0


def test_the_stream_holds_the_latent_rounded_around_its_means_as_the_float_prior_rounds_it(codec):
    """Each element within half a step of the encoder's latent; all but a few exactly where the float prior would
    round them (the fixed-point means lie about 1e-4 from the float ones, see ``fixed_point``)."""
    tile = speckle_tile((100, 77))
    analysis = codec.coder.analyse([tile])[0]
    float_prior = copy.deepcopy(codec.coder.model.prior).double()
    with torch.inference_mode():
        expected, _ = float_prior.coded(torch.from_numpy(analysis.latent[None]).double(), rounded=True)

    read = codec.coder.read([codec.encode(tile)], [tile.shape])[0].latent

    assert np.unique(read).size > 3
    assert np.abs(read - analysis.latent).max() <= 0.5 + 1e-6
    assert np.isclose(read, expected[0].numpy(), atol=1e-3).mean() > 0.99


def test_decoding_gives_exactly_the_decoder_output_on_the_latent_read_from_the_stream(codec):
    tile = speckle_tile((64, 48))
    stream = codec.encode(tile)

    reading = codec.coder.read([stream], [tile.shape])[0]

    np.testing.assert_array_equal(codec.decode(stream, tile.shape),
                                  codec.coder.synthesize([reading], [tile.shape])[0])


def test_encoding_on_the_cpu_is_deterministic(codec):
    tile = speckle_tile((80, 80))
    assert codec.encode(tile) == codec.encode(tile)


def test_batched_coding_of_mixed_shapes_matches_tile_by_tile_coding(codec):
    tiles = [speckle_tile((64, 64), 1), speckle_tile((100, 77), 2), speckle_tile((64, 64), 3)]

    streams = codec.encode_batch(tiles)
    decoded = codec.decode_batch(streams, [tile.shape for tile in tiles])

    assert streams == [codec.encode(tile) for tile in tiles]
    for tile, stream, batch_decoded in zip(tiles, streams, decoded):
        np.testing.assert_allclose(batch_decoded, codec.decode(stream, tile.shape), atol=1e-6)


def test_estimated_rate_is_the_priors_total_bits_of_the_rounded_latent_per_pixel(codec):
    tile = speckle_tile((64, 80))
    model = codec.coder.model
    with torch.inference_mode():
        latent = model.encode(torch.from_numpy(tile)[None, None])
        _, likelihoods = model.prior.coded(latent, rounded=True)

    estimate = codec.estimated_bpp([tile])[0]

    assert estimate == pytest.approx(float(estimated_bits(likelihoods)[0]) / tile.size, rel=1e-6)


def test_estimates_of_a_mixed_shape_batch_match_tile_by_tile_estimates(codec):
    tiles = [speckle_tile((64, 64), 1), speckle_tile((100, 77), 2), speckle_tile((64, 64), 3)]

    batch = codec.estimated_bpp(tiles)

    assert batch == pytest.approx([codec.estimated_bpp([tile])[0] for tile in tiles], rel=1e-5)


def test_rows_report_the_cpu_and_fp32(codec):
    assert (codec.device, codec.precision) == ("cpu", "fp32")


def test_auto_precision_runs_the_networks_in_the_precision_the_rows_record(checkpoint, entropy, monkeypatch):
    monkeypatch.setattr(options, "cpu_flags", lambda: frozenset({"avx512_bf16"}))

    codec = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), precision="auto")

    assert codec.precision == codec.coder.precision == "bf16"


def test_the_stream_version_recorded_in_the_rows_is_the_format_the_header_carries(codec):
    """The codec's format; a tile whose bands of scales share one shift carries that format's one-shift form."""
    one_shift = format_version(codec.coder.variable_rate, codec.coder.shift_chooser is not None,
                               codec.coder.refinement_weighting, banded=False, integer_prior=codec.coder.integer_prior)
    assert codec.encode(speckle_tile((32, 32)))[0] in {codec.stream_version, one_shift}


@pytest.mark.parametrize("kept", [0, HEADER_BYTES - 1, HEADER_BYTES, -4, -1])
def test_truncated_stream_raises_a_clear_error(codec, kept):
    tile = speckle_tile((64, 64))
    stream = codec.encode(tile)
    with pytest.raises(ValueError, match="shorter than its|CRC-32"):
        codec.decode(stream[:kept], tile.shape)


def test_a_flipped_bit_in_the_payload_raises_a_clear_error(codec):
    tile = speckle_tile((64, 64))
    stream = bytearray(codec.encode(tile))
    stream[HEADER_BYTES + 1] ^= 0x10
    with pytest.raises(ValueError, match="CRC-32"):
        codec.decode(bytes(stream), tile.shape)


@pytest.mark.parametrize("shape", [(32, 32), (64, 32)])
def test_stream_decoded_for_a_smaller_tile_raises_as_data_is_left_over(codec, shape):
    stream = codec.encode(speckle_tile((64, 64)))
    with pytest.raises(ValueError, match="decode it with the tile shape it was encoded for"):
        codec.decode(stream, shape)


def test_stream_of_another_format_version_raises(codec):
    stream = bytearray(codec.encode(speckle_tile((32, 32))))
    stream[0] = 99
    with pytest.raises(ValueError, match="format version 99"):
        codec.decode(bytes(stream), (32, 32))


def test_stream_decoded_with_another_model_raises_naming_both_models(codec, entropy, tmp_path):
    other = ENTROPY_CODECS[entropy](checkpoint=str(make_entropy_checkpoint(tmp_path / "other.pt", entropy, seed=1)))
    with pytest.raises(ValueError, match="made by model .* this checkpoint is model"):
        other.decode(codec.encode(speckle_tile((32, 32))), (32, 32))


def test_checkpoint_of_the_other_entropy_model_is_refused_naming_its_codec(checkpoint, entropy):
    other = "hyperprior" if entropy == "factorized" else "factorized"
    with pytest.raises(ValueError, match=f"use codec autoencoder_{entropy}"):
        ENTROPY_CODECS[other](checkpoint=str(checkpoint))


def test_the_fixed_length_codec_refuses_an_entropy_coded_checkpoint(checkpoint, entropy):
    with pytest.raises(ValueError, match=f"use codec autoencoder_{entropy}"):
        AutoencoderCodec(checkpoint=str(checkpoint))


def test_a_checkpoint_without_its_entropy_tables_is_refused_naming_the_train_command(checkpoint, entropy, tmp_path):
    stripped = load_checkpoint(checkpoint)
    stripped.entropy_tables = {}
    save_checkpoint(stripped, tmp_path / "stripped.pt")
    with pytest.raises(ValueError, match=f"lacks its entropy tables.*--entropy {entropy}"):
        ENTROPY_CODECS[entropy](checkpoint=str(tmp_path / "stripped.pt"))


def test_values_beyond_a_tables_support_round_trip_exactly_through_their_overflow_distance():
    coder = SymbolCoder(ProbabilityTables.from_list([np.array([0.25, 0.5, 0.25])], [-1]))
    values = np.array([-30000, -1000, -2, -1, 0, 1, 2, 3, 4, 1000, 30000])
    encoder = new_encoder()

    coder.encode(encoder, values, np.zeros_like(values))

    np.testing.assert_array_equal(coder.decode(new_decoder(encoder.get_compressed()), np.zeros_like(values)), values)


def test_values_under_several_tables_are_coded_grouped_by_table_each_group_followed_by_its_overflow_distances():
    """The stream order the format specifies, written here call by call with constriction itself."""
    probabilities = [np.array([0.25, 0.5, 0.25]), np.array([0.1, 0.2, 0.4, 0.2, 0.1])]
    coder = SymbolCoder(ProbabilityTables.from_list(probabilities, [-1, -2]))
    values = np.array([[0, 7, -1, 3], [1, -9, 2, 0]])
    tables = np.array([[1, 0, 0, 1], [0, 1, 1, 0]])
    encoder = new_encoder()

    coder.encode(encoder, values, tables)

    expected = new_encoder()
    models = [constriction.stream.model.Categorical(table, perfect=False) for table in probabilities]
    overflow = coder.overflow_model
    # table 0 (values -1..1) holds 7, -1, 1, 0 in raster order: symbols 2, 0, 2, 1; three end symbols, at
    # distances 6, 0, 0 (zigzag 12, 0, 0)
    expected.encode(np.array([2, 0, 2, 1], dtype=np.int32), models[0])
    expected.encode(np.array([12, 0, 0], dtype=np.int32), overflow)
    # table 1 (values -2..2) holds 0, 3, -9, 2: symbols 2, 4, 0, 4; distances 1, -7, 0 (zigzag 2, 13, 0)
    expected.encode(np.array([2, 4, 0, 4], dtype=np.int32), models[1])
    expected.encode(np.array([2, 13, 0], dtype=np.int32), overflow)
    np.testing.assert_array_equal(encoder.get_compressed(), expected.get_compressed())
    np.testing.assert_array_equal(coder.decode(new_decoder(encoder.get_compressed()), tables), values)


def test_a_value_beyond_what_the_format_holds_is_refused_rather_than_clamped():
    coder = SymbolCoder(ProbabilityTables.from_list([np.array([0.25, 0.5, 0.25])], [-1]))

    with pytest.raises(ValueError, match="latent value 40000 lies 32768 or more beyond its probability table"):
        coder.encode(new_encoder(), np.array([0, 40000]), np.zeros(2, dtype=np.int64))


def test_a_value_far_outside_its_table_costs_bits_not_a_clamped_value():
    coder = SymbolCoder(ProbabilityTables.from_list([np.array([0.25, 0.5, 0.25])], [-1]))
    sizes = {}
    for far in (2, 200):
        encoder = new_encoder()
        coder.encode(encoder, np.array([0] * 50 + [far]), np.zeros(51, dtype=np.int64))
        sizes[far] = len(encoder.get_compressed())

    assert sizes[200] > sizes[2]


def test_every_gaussian_table_sums_to_one_and_spans_its_tail_quantiles():
    tables = gaussian_tables()
    for index, scale in enumerate(SCALE_TABLE):
        table = tables.table(index)
        assert table.sum() == pytest.approx(1.0, abs=1e-12)
        assert -tables.offsets[index] >= norm.ppf(1 - TAIL_MASS / 2) * scale


def test_gaussian_table_probabilities_match_scipy_bin_masses():
    tables = gaussian_tables()
    index = 20
    values = np.arange(tables.lengths[index]) + tables.offsets[index]
    inner = slice(1, -1)
    expected = norm.cdf(values + 0.5, scale=SCALE_TABLE[index]) - norm.cdf(values - 0.5, scale=SCALE_TABLE[index])
    np.testing.assert_allclose(tables.table(index)[inner], expected[inner], rtol=1e-9, atol=1e-15)


def test_factorized_table_holds_the_densitys_bin_masses_and_its_tails_in_the_end_symbols():
    torch.manual_seed(0)
    density = FactorizedDensity(3)
    tables = factorized_tables(density)
    for channel in range(3):
        values = torch.arange(tables.lengths[channel], dtype=torch.float32) + float(tables.offsets[channel])
        with torch.no_grad():
            bins = density.likelihood(values.reshape(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous())[0, channel, 0]
        table = tables.table(channel)
        assert table.sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(table[1:-1], bins.double().numpy()[1:-1], rtol=1e-4, atol=1e-9)
        assert table[0] >= bins[0].item() - 1e-6 and table[-1] >= bins[-1].item() - 1e-6


def test_a_density_trained_onto_a_single_integer_still_gives_a_codable_table():
    density = FactorizedDensity(1)
    with torch.no_grad():
        for factor in density.matrices:
            factor.mul_(0).add_(30.0)  # a step at the origin: all the mass on 0
    tables = factorized_tables(density)
    coder = SymbolCoder(tables)

    encoder = new_encoder()
    coder.encode(encoder, np.array([0, 0, 1, 0]), np.zeros(4, dtype=np.int64))
    assert tables.lengths[0] >= 2
    assert list(coder.decode(new_decoder(encoder.get_compressed()), np.zeros(4, dtype=np.int64))) == [0, 0, 1, 0]


def test_a_density_trained_onto_one_integer_codes_it_at_almost_no_cost():
    """A switched-off side channel: its likely value has a symbol of its own, not an end symbol that would be
    followed by a distance (0.7 bits or more each)."""
    density = FactorizedDensity(1)
    with torch.no_grad():
        for factor in density.matrices:
            factor.mul_(0).add_(30.0)  # a step at the origin: all the mass on 0
    encoder = new_encoder()
    SymbolCoder(factorized_tables(density)).encode(encoder, np.zeros(4096, dtype=np.int64), np.zeros(4096, dtype=np.int64))

    assert 32 * len(encoder.get_compressed()) <= 64


def test_the_end_symbols_of_a_factorized_table_carry_only_its_tails():
    torch.manual_seed(1)
    wide, spike = FactorizedDensity(8), FactorizedDensity(8)
    with torch.no_grad():
        for factor in spike.matrices:
            factor.mul_(0).add_(30.0)  # every channel a step near the origin

    for tables in (factorized_tables(wide), factorized_tables(spike)):
        assert all(tables.table(channel)[0] <= TAIL_MASS and tables.table(channel)[-1] <= TAIL_MASS
                   for channel in range(8))


def test_gaussian_likelihood_matches_scipy_including_far_tails():
    values = torch.tensor([0.0, 1.0, -2.0, 7.0, 30.0], dtype=torch.float64)
    means = torch.tensor([0.2, -0.3, 0.0, 0.5, 1.0], dtype=torch.float64)
    scales = torch.tensor([0.5, 1.0, 3.0, 1.0, 2.0], dtype=torch.float64)

    ours = gaussian_likelihood(values, means, scales).numpy()

    v, m, s = values.numpy(), means.numpy(), scales.numpy()
    expected = np.maximum(norm.cdf(v + 0.5, m, s) - norm.cdf(v - 0.5, m, s), 1e-9)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_the_factorized_density_is_a_distribution_over_the_integers():
    torch.manual_seed(0)
    density = FactorizedDensity(2)
    values = torch.arange(-200, 201, dtype=torch.float32).reshape(1, 1, 1, -1).expand(1, 2, 1, -1).contiguous()

    with torch.no_grad():
        masses = density.likelihood(values).sum(dim=-1)

    np.testing.assert_allclose(masses.numpy().ravel(), [1.0, 1.0], atol=1e-4)


def test_estimated_bits_sum_minus_log2_of_every_likelihood_per_batch_item():
    likelihoods = [torch.full((2, 3, 4, 4), 0.5), torch.full((2, 1, 2, 2), 0.25)]
    np.testing.assert_allclose(estimated_bits(likelihoods).numpy(), [3 * 16 + 2 * 4] * 2)


@pytest.fixture(scope="module")
def pooled_codec(checkpoint, entropy):
    """The same checkpoint, range-coding in two worker processes."""
    return ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), range_coding_processes=2)


MIXED_BATCH = [((64, 64), 1), ((100, 77), 2), ((64, 64), 3), ((1, 1), 4), ((64, 64), 5), ((33, 250), 6)]
"""Three tiles of one shape (dealt to two workers unevenly) and three of other shapes."""


def test_tiles_range_coded_in_worker_processes_give_the_streams_coded_in_the_codecs_own_process(codec, pooled_codec):
    tiles = [speckle_tile(shape, seed) for shape, seed in MIXED_BATCH]

    assert pooled_codec.encode_batch(tiles) == codec.encode_batch(tiles)


def test_streams_range_decoded_in_worker_processes_give_the_tiles_decoded_in_the_codecs_own_process(codec,
                                                                                                     pooled_codec):
    tiles = [speckle_tile(shape, seed) for shape, seed in MIXED_BATCH]
    streams, shapes = codec.encode_batch(tiles), [tile.shape for tile in tiles]

    for pooled, own in zip(pooled_codec.decode_batch(streams, shapes), codec.decode_batch(streams, shapes)):
        np.testing.assert_array_equal(pooled, own)


def test_a_stream_refused_in_worker_processes_is_refused_clearly_and_the_workers_go_on(codec, pooled_codec):
    tile = speckle_tile((64, 64))
    stream = codec.encode(tile)

    with pytest.raises(ValueError, match="decode it with the tile shape it was encoded for"):
        pooled_codec.decode_batch([stream, stream], [(32, 32), (32, 32)])
    np.testing.assert_array_equal(pooled_codec.decode(stream, tile.shape), codec.decode(stream, tile.shape))


@pytest.fixture(scope="module")
def one_worker_codecs(tmp_path_factory) -> tuple[FactorizedAutoencoder, FactorizedAutoencoder]:
    """A factorized codec coding in its own process, and one range-coding in one worker (the workers'
    handling does not depend on the entropy model)."""
    path = make_entropy_checkpoint(tmp_path_factory.mktemp("one_worker") / "factorized.pt", "factorized")
    return FactorizedAutoencoder(checkpoint=str(path)), FactorizedAutoencoder(checkpoint=str(path),
                                                                             range_coding_processes=1)


def test_a_range_coding_worker_that_dies_during_a_call_fails_that_call_and_a_new_one_takes_the_next(one_worker_codecs):
    codec, pooled = one_worker_codecs
    tile = speckle_tile((64, 64))
    worker = pooled.coder.range_coding.workers[0].process.pid
    os.kill(worker, signal.SIGSTOP)  # the request waits in the pipe until the worker is killed
    threading.Timer(1.0, os.kill, (worker, signal.SIGKILL)).start()

    with pytest.raises(RuntimeError, match=r"a range-coding worker process died \(exit code -9\)"):
        pooled.encode(tile)
    assert pooled.encode(tile) == codec.encode(tile)


def test_a_range_coding_worker_killed_between_calls_is_replaced_before_the_next(one_worker_codecs):
    codec, pooled = one_worker_codecs
    tile = speckle_tile((64, 64))
    process = pooled.coder.range_coding.workers[0].process
    process.kill()
    process.join()

    assert pooled.encode(tile) == codec.encode(tile)


def test_range_coding_workers_exit_when_the_process_that_started_them_is_killed(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(
        "import os, sys, time\n"
        "from harness_codecs._autoencoder.entropy_coding.tables import gaussian_tables\n"
        "from harness_codecs._autoencoder.entropy_coding.range_coding import PooledRangeCoding\n"
        "if __name__ == '__main__':\n"
        "    pool = PooledRangeCoding({'latent': gaussian_tables()}, 2)\n"
        "    print(*(worker.process.pid for worker in pool.workers), flush=True)\n"
        "    time.sleep(600)\n")
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    workers = [int(pid) for pid in owner.stdout.readline().split()]

    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)

    assert len(workers) == 2 and not any(_alive(pid) for pid in workers)


def test_range_coding_workers_do_not_load_torch(tmp_path):
    """A worker needs numpy and constriction alone: a fraction of a second to start, and tens of megabytes
    rather than torch's hundreds. (A spawned process also imports its parent's main script; this one, like
    ``python -m harness``, imports nothing at the top.)"""
    script = tmp_path / "owner.py"
    script.write_text(
        "if __name__ == '__main__':\n"
        "    import torch\n"
        "    from harness_codecs._autoencoder.entropy_coding.tables import gaussian_tables\n"
        "    from harness_codecs._autoencoder.entropy_coding.range_coding import PooledRangeCoding\n"
        "    pool = PooledRangeCoding({'latent': gaussian_tables()}, 1)\n"
        "    maps = open(f'/proc/{pool.workers[0].process.pid}/maps').read()\n"
        "    print('libtorch' in maps, 'constriction' in maps)\n")

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)

    assert done.stdout.split() == ["False", "True"], done.stderr


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (not a zombie awaiting its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize("processes", [-1, True, 1.5, "2"])
def test_a_bad_number_of_range_coding_processes_is_refused(checkpoint, entropy, processes):
    with pytest.raises(ValueError, match=f"range_coding_processes={processes!r}; accepted: an integer of at least 0"):
        ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), range_coding_processes=processes)


def test_codecs_of_one_checkpoint_share_its_range_coding_workers(checkpoint, entropy, pooled_codec):
    again = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), range_coding_processes=2)

    assert isinstance(again.coder.range_coding, PooledRangeCoding)
    assert again.coder.range_coding is pooled_codec.coder.range_coding


@pytest.mark.parametrize(("count", "lengths"), [(1, [7]), (2, [4, 3]), (3, [3, 2, 2]), (7, [1] * 7), (10, [1] * 7)])
def test_a_batch_is_cut_into_consecutive_parts_of_even_length(count, lengths):
    parts = even_parts(list(range(7)), count)

    assert [len(part) for part in parts] == lengths
    assert [item for part in parts for item in part] == list(range(7))


def test_an_empty_batch_is_one_empty_part():
    assert even_parts([], 3) == [[]]


@pytest.mark.parametrize("sub_batches", [2, 3, 10])
def test_overlapped_sub_batches_give_the_streams_of_their_parts_coded_one_after_the_other(checkpoint, entropy, codec,
                                                                                         sub_batches):
    """Each part is its own batch for the networks, whose floats may depend on the batch's size (oneDNN's
    blocking), so the reference is the parts coded as batches in turn, not the whole batch at once."""
    overlapped = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=sub_batches)
    tiles = [speckle_tile(shape, seed) for shape, seed in MIXED_BATCH]

    expected = [stream for part in even_parts(tiles, sub_batches) for stream in codec.encode_batch(part)]
    assert overlapped.encode_batch(tiles) == expected


@pytest.mark.parametrize("sub_batches", [2, 3, 10])
def test_overlapped_sub_batches_decode_to_the_tiles_of_their_parts_decoded_one_after_the_other(checkpoint, entropy,
                                                                                              codec, sub_batches):
    overlapped = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=sub_batches)
    tiles = [speckle_tile(shape, seed) for shape, seed in MIXED_BATCH]
    streams, shapes = codec.encode_batch(tiles), [tile.shape for tile in tiles]

    expected = [tile for part in even_parts(range(len(tiles)), sub_batches)
                for tile in codec.decode_batch([streams[i] for i in part], [shapes[i] for i in part])]
    for part, whole in zip(overlapped.decode_batch(streams, shapes), expected, strict=True):
        np.testing.assert_array_equal(part, whole)


def test_overlapped_sub_batches_range_coded_in_worker_processes_code_as_in_the_codecs_own_process(checkpoint, entropy):
    overlapped = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=2)
    both = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=2, range_coding_processes=2)
    tiles = [speckle_tile(shape, seed) for shape, seed in MIXED_BATCH]
    streams, shapes = overlapped.encode_batch(tiles), [tile.shape for tile in tiles]

    assert both.encode_batch(tiles) == streams
    for pooled, own in zip(both.decode_batch(streams, shapes), overlapped.decode_batch(streams, shapes), strict=True):
        np.testing.assert_array_equal(pooled, own)


def test_a_stream_refused_in_an_overlapped_sub_batch_is_refused_clearly_and_the_codec_goes_on(checkpoint, entropy,
                                                                                             codec):
    overlapped = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=2)
    tile = speckle_tile((64, 64))
    stream = codec.encode(tile)

    with pytest.raises(ValueError, match="decode it with the tile shape it was encoded for"):
        overlapped.decode_batch([stream, stream], [tile.shape, (32, 32)])
    np.testing.assert_array_equal(overlapped.decode(stream, tile.shape), codec.decode(stream, tile.shape))


def test_pipelined_runs_the_next_part_ahead_while_this_part_finishes():
    next_part_started = threading.Event()

    def ahead(part: int) -> int:
        if part == 1:
            next_part_started.set()
        return part

    def then(part: int) -> list[tuple[int, bool]]:
        return [(part, next_part_started.wait(timeout=10) if part == 0 else True)]

    with ThreadPoolExecutor(max_workers=1) as thread:
        assert pipelined([0, 1, 2], ahead, then, thread) == [(0, True), (1, True), (2, True)]


def test_a_failing_part_fails_the_pipeline_only_once_the_part_running_ahead_has_finished():
    finished = []

    def ahead(part: int) -> int:
        time.sleep(0.2 * part)
        finished.append(part)
        return part

    def then(part: int) -> list[int]:
        raise ValueError(f"part {part} fails")

    with ThreadPoolExecutor(max_workers=1) as thread, pytest.raises(ValueError, match="part 0 fails"):
        pipelined([0, 1], ahead, then, thread)
    assert finished == [0, 1]


@pytest.mark.parametrize("sub_batches", [0, True, 1.5, "2"])
def test_a_bad_number_of_overlapped_sub_batches_is_refused(checkpoint, entropy, sub_batches):
    with pytest.raises(ValueError, match=f"overlap_sub_batches={sub_batches!r}; accepted: an integer of at least 1"):
        ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), overlap_sub_batches=sub_batches)


def test_without_constriction_every_entropy_coded_codec_still_registers_with_the_install_command():
    reasons = unavailable_without("harness_codecs.autoencoder_entropy", "constriction")

    assert set(reasons) == {codec.name for codec in ENTROPY_CODECS.values()}
    assert set(reasons.values()) == {"the constriction range coder is not installed: pip install constriction"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_stream_encoded_on_cuda_decodes_on_the_cpu_to_the_same_latent(checkpoint, entropy):
    gpu = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), device="cuda")
    cpu = ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), device="cpu")
    tile = speckle_tile((100, 77))
    stream = gpu.encode(tile)

    (on_cpu,), (on_gpu,) = cpu.coder.read([stream], [tile.shape]), gpu.coder.read([stream], [tile.shape])
    np.testing.assert_array_equal(on_cpu.latent, on_gpu.latent)
    np.testing.assert_allclose(cpu.decode(stream, tile.shape), gpu.decode(stream, tile.shape), atol=1e-4)


VARIABLE_LMBDAS = (10.0, 40.0, 160.0)


@pytest.fixture(scope="module")
def variable_rate_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    spec = spec_for("tiny", 8, entropy="checkerboard", lmbdas=VARIABLE_LMBDAS)
    model = Autoencoder(spec)
    with torch.no_grad():
        model.encoder[-1].weight.mul_(30.0)
        model.encoder[-1].bias.mul_(30.0)
    path = tmp_path_factory.mktemp("variable") / "variable.pt"
    save_checkpoint(Checkpoint(spec=spec, bits=0, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=model.state_dict(),
                               entropy_tables=model.prior.tables().to_tensors()), path)
    return path


def test_a_variable_rate_checkpoint_spends_more_bits_at_a_higher_quality(variable_rate_checkpoint):
    tile = speckle_tile((64, 64))
    sizes = [len(CheckerboardAutoencoder(checkpoint=str(variable_rate_checkpoint), quality=quality).encode(tile))
             for quality in (0, 1, 1.5, 2)]

    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_a_variable_rate_stream_carries_its_quality_so_any_point_of_the_model_decodes_it(variable_rate_checkpoint):
    tile = speckle_tile((64, 48))
    encoder = CheckerboardAutoencoder(checkpoint=str(variable_rate_checkpoint), quality=1.25)
    other_point = CheckerboardAutoencoder(checkpoint=str(variable_rate_checkpoint), quality=0)
    stream = encoder.encode(tile)

    assert int.from_bytes(stream[HEADER_BYTES:HEADER_BYTES + 2], "big") == 1250
    np.testing.assert_array_equal(other_point.decode(stream, tile.shape), encoder.decode(stream, tile.shape))


@pytest.mark.parametrize(("quality", "message"), [
    (None, "variable-rate model; give each point a quality from 0 to 2"),
    (2.5, "expected a number from 0 to 2"),
    ("high", "quality='high'; accepted: a number of at least 0"),
    (0.0005, "steps of 0.001"),
])
def test_a_missing_or_bad_quality_of_a_variable_rate_checkpoint_is_refused(variable_rate_checkpoint, quality, message):
    with pytest.raises(ValueError, match=message):
        CheckerboardAutoencoder(checkpoint=str(variable_rate_checkpoint), quality=quality)


def test_a_quality_for_a_single_rate_checkpoint_is_refused(checkpoint, entropy):
    with pytest.raises(ValueError, match="single-rate model; leave quality out"):
        ENTROPY_CODECS[entropy](checkpoint=str(checkpoint), quality=1)


def test_a_stream_claiming_a_quality_beyond_the_models_levels_is_refused(variable_rate_checkpoint):
    codec = CheckerboardAutoencoder(checkpoint=str(variable_rate_checkpoint), quality=2)
    stream = bytearray(codec.encode(speckle_tile((32, 32))))
    body = bytes(stream[HEADER_BYTES:])
    forged = (9000).to_bytes(2, "big") + body[2:]
    stream[HEADER_BYTES:] = forged
    stream[5:9] = zlib.crc32(forged).to_bytes(4, "big")

    with pytest.raises(ValueError, match="claims quality 9.0, beyond this model's 2"):
        codec.decode(bytes(stream), (32, 32))
