"""Specification of the refinement: a small full-resolution network after the synthesis, which a trained model can
gain and train alone, every other weight kept (as it can its whole synthesis); and of each tile's refinement weight,
which the encoder chooses and writes in one byte."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, ModelSpec, spec_for
from harness_codecs._autoencoder.entropy_coding.scale_shift import BANDS
from harness_codecs._autoencoder.model.refinement import Refinement
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from harness_codecs._autoencoder.runtime.entropy_stream import (
    INTEGER_PRIOR_FLAG,
    REFINED_VERSIONS,
    SINGLE_SHIFT_VERSIONS,
    pack_stream,
)
from harness_codecs._autoencoder.runtime.post_filter import PostFilters
from harness_codecs._autoencoder.runtime.refinement_weight import LARGEST_CODE, chosen_code, weight_of
from harness_codecs.autoencoder import AutoencoderCodec
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder

from harness import UserError
from harness.cli import main
from tests.test_autoencoder_entropy import make_entropy_checkpoint, speckle_tile
from tests.training_helpers import REAL_BENCHMARK, TRAINING_DATA, train_beside, write

VARIABLE_RATE = spec_for("tiny", entropy="checkerboard", lmbdas=(50.0, 800.0))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A variable-rate model trained for 2 steps on real patches, and a benchmark of real test chips."""
    folder = tmp_path_factory.mktemp("refinement")
    write(folder, "bench.yaml", REAL_BENCHMARK)
    write(folder, "training.yaml", TRAINING_DATA)
    train_beside(folder, folder / "plain.pt", "--steps", "2")
    return folder


def test_a_new_refinement_leaves_the_decoded_tile_as_it_was():
    plain = Autoencoder(VARIABLE_RATE)
    refined = Autoencoder(replace(VARIABLE_RATE, refinement_channels=(4, 4)))
    refined.load_state_dict({**refined.state_dict(), **plain.state_dict()})
    latent, quality = torch.randn(2, VARIABLE_RATE.latent_channels, 4, 4), torch.tensor([0.0, 0.7])

    assert torch.equal(refined.decode(latent, quality), plain.decode(latent, quality))


def test_the_refinement_corrects_each_quality_level_differently():
    refinement = Refinement((4,), rate_levels=3)
    torch.nn.init.normal_(refinement.body[-1].weight)
    image = torch.rand(1, 1, 16, 16)

    assert not torch.equal(refinement(image, torch.tensor([0.0])), refinement(image, torch.tensor([2.0])))


def test_a_single_rate_refinement_reads_the_image_alone():
    assert Refinement((4,), rate_levels=0).body[0].in_channels == 1


def test_decoding_counts_the_refinements_multiply_accumulates(tmp_path):
    spec = ModelSpec(preset="tiny", channels=2, kernel_size=3, latent_channels=1)
    macs = []
    for refinement in ((), (3,)):
        path = tmp_path / f"model{len(refinement)}.pt"
        model_spec = replace(spec, refinement_channels=refinement)
        save_checkpoint(Checkpoint(spec=model_spec, bits=4, latent_range=(-1.0, 1.0), normalization={"VV": (-25, 5)},
                                   state_dict=Autoencoder(model_spec).state_dict()), path)
        macs.append(AutoencoderCodec(checkpoint=str(path)).complexity().decode_macs_per_pixel)

    assert macs[1] - macs[0] == 1 * 3 * 9 + 3 * 1 * 9  # two 3x3 convolutions, image -> 3 channels -> correction


def test_training_only_the_refinement_keeps_every_other_weight(tmp_path, real_run):
    output = tmp_path / "refined.pt"
    train_beside(real_run, output, "--warm-start", str(real_run / "plain.pt"), "--refinement", "4,4",
                     "--train-only", "refinement", "--steps", "2")

    start = load_checkpoint(real_run / "plain.pt").state_dict
    trained = torch.load(output.with_name("refined.last.pt"), weights_only=True)["state_dict"]
    assert all(torch.equal(trained[name], start[name]) for name in start)
    assert trained["refinement.body.4.weight"].abs().sum() > 0  # its last layer started at zero


def test_training_only_the_synthesis_keeps_the_analysis_and_the_prior(tmp_path, real_run):
    train_beside(real_run, tmp_path / "decoder.pt", "--init", str(real_run / "plain.pt"), "--train-only",
                     "synthesis", "--steps", "2")

    start = load_checkpoint(real_run / "plain.pt").state_dict
    trained = torch.load(tmp_path / "decoder.last.pt", weights_only=True)["state_dict"]
    synthesis = [name for name in start if name.startswith(("decoder.", "log_inverse_gains"))]
    assert all(torch.equal(trained[name], start[name]) for name in start if name not in synthesis)
    assert not torch.equal(trained["log_inverse_gains"], start["log_inverse_gains"])
    assert sum(not torch.equal(trained[name], start[name]) for name in synthesis) > len(synthesis) // 2


def test_a_fine_tuned_checkpoint_records_the_training_record_of_the_checkpoint_it_started_from(tmp_path, real_run):
    train_beside(real_run, tmp_path / "tuned.pt", "--init", str(real_run / "plain.pt"), "--steps", "2")

    started_from = load_checkpoint(real_run / "plain.pt").training
    assert load_checkpoint(tmp_path / "tuned.pt").training["started_from"] == started_from


def test_a_model_with_a_refinement_codes_the_real_test_chips(tmp_path, real_run):
    train_beside(real_run, tmp_path / "model.pt", "--warm-start", str(real_run / "plain.pt"), "--refinement",
                     "4", "--train-only", "refinement", "--steps", "2")
    write(tmp_path, "bench.yaml", REAL_BENCHMARK)

    assert main(["run", str(tmp_path / "bench.yaml"), "--output", str(tmp_path / "report"), "--no-progress"]) == 0
    rows = pd.read_csv(tmp_path / "report" / "results.csv", keep_default_na=False)
    assert len(rows) == 8 and (rows["error"] == "").all()


@pytest.mark.parametrize(("flags", "message"), [
    (["--train-only", "refinement"], "--train-only refinement: the model has none; give its widths with --refinement"),
    (["--refinement", "4,0"], "--refinement 4,0: expected positive integer widths"),
    (["--refinement", "2.5"], "--refinement 2.5: expected positive integer widths"),
])
def test_bad_refinement_options_are_refused(tmp_path, real_run, flags, message):
    with pytest.raises(UserError, match=message):
        train_beside(real_run, tmp_path / "m.pt", "--steps", "1", *flags)


@pytest.fixture(scope="module")
def refined_codec(tmp_path_factory):
    """An untrained single-rate checkerboard model with a refinement whose correction is not zero."""
    path = make_entropy_checkpoint(tmp_path_factory.mktemp("refined") / "refined.pt", "checkerboard",
                                   training={"lmbda": 1e6}, refinement=(4,))
    return CheckerboardAutoencoder(checkpoint=str(path))


def with_weight_code(codec, stream: bytes, code: int) -> bytes:
    words, header = codec.coder.unpacked(stream)
    return pack_stream(codec.coder.model_id, words, header.quality, header.shifts, header.post_filter, code,
                       integer_prior=True)


def network_mse(codec, stream: bytes, tile, weight: float) -> float:
    reading, = codec.coder.read([stream], [tile.shape])
    output = codec.coder.network_output(reading.latent[None], [reading.quality], [weight])[0, 0].numpy()
    return float(np.mean((output[:tile.shape[0], :tile.shape[1]] - tile) ** 2))


def test_the_chosen_weight_is_the_least_squares_scale_of_the_correction():
    decoded, correction = torch.zeros(8, 8), torch.full((8, 8), 0.1)

    assert chosen_code(np.full((8, 8), 0.05, np.float32), decoded, correction) == 64  # weight 0.5


@pytest.mark.parametrize(("original", "code"), [(-1.0, 0), (5.0, LARGEST_CODE)])
def test_weights_beyond_a_byte_are_clipped_to_its_codes(original, code):
    assert chosen_code(np.full((8, 8), original, np.float32), torch.zeros(8, 8), torch.full((8, 8), 0.1)) == code


def test_a_tile_without_a_correction_keeps_the_trained_weight():
    assert weight_of(chosen_code(np.ones((8, 8), np.float32), torch.zeros(8, 8), torch.zeros(8, 8))) == 1.0


def test_a_refined_models_stream_carries_its_weight_in_one_byte(refined_codec):
    tile = speckle_tile((48, 64))
    stream = refined_codec.encode(tile)

    assert stream[0] in {version | INTEGER_PRIOR_FLAG for version in (REFINED_VERSIONS[False],
                                                                       SINGLE_SHIFT_VERSIONS[False, True])}
    assert refined_codec.coder.unpacked(stream)[1].refinement_weight is not None
    assert len(with_weight_code(refined_codec, stream, 0)) == len(stream)


def test_the_encoder_chooses_a_weight_no_worse_than_the_trained_one(refined_codec):
    tile = speckle_tile((48, 64))
    stream = refined_codec.encode(tile)
    chosen = weight_of(refined_codec.coder.unpacked(stream)[1].refinement_weight)

    assert chosen != 1.0 and network_mse(refined_codec, stream, tile, chosen) <= network_mse(refined_codec, stream,
                                                                                               tile, 1.0)


def test_the_decoder_applies_the_weight_the_stream_carries(refined_codec):
    tile = speckle_tile((48, 64))
    stream = refined_codec.encode(tile)
    reading, = refined_codec.coder.read([with_weight_code(refined_codec, stream, 0)], [tile.shape])
    latent = torch.from_numpy(reading.latent[None])
    with torch.inference_mode():
        synthesis = refined_codec.coder.model.synthesized(latent)[0, 0, :48, :64]
        expected = PostFilters()(synthesis[None, None].contiguous(), [reading.post_filter])[0, 0].clamp(0, 1)

    assert reading.refinement_weight == 0.0
    np.testing.assert_allclose(refined_codec.decode(with_weight_code(refined_codec, stream, 0), tile.shape),
                               expected.numpy(), atol=1e-6)


def test_a_refined_models_tile_whose_bands_share_a_shift_is_written_with_that_one_shift(refined_codec,
                                                                                         monkeypatch):
    tile = speckle_tile((48, 64))
    monkeypatch.setattr(refined_codec.coder.shift_chooser, "best", lambda values, tables: np.full(BANDS, 2))

    stream = refined_codec.encode(tile)

    assert stream[0] == SINGLE_SHIFT_VERSIONS[False, True] | INTEGER_PRIOR_FLAG
    assert refined_codec.coder.unpacked(stream)[1].shifts == (2,) * BANDS
    assert refined_codec.coder.unpacked(stream)[1].refinement_weight is not None


def test_a_refined_model_refuses_a_stream_without_a_weight_byte(refined_codec):
    tile = speckle_tile((48, 64))
    words, header = refined_codec.coder.unpacked(refined_codec.encode(tile))
    plain = pack_stream(refined_codec.coder.model_id, words, header.quality, (0, 1, 0, 0, 0), header.post_filter,
                        integer_prior=True)

    with pytest.raises(ValueError, match="format version 77; this decoder reads version 75 or 79"):
        refined_codec.decode(plain, tile.shape)
