"""Specification of ``--coded-latents``: the decoder of a trained model trains on the latents as the codec codes them
(trellis-coded where the checkpoint has trellis settings, rounded elsewhere), everything upstream kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables, odd_gaussian_tables
from harness_codecs._autoencoder.entropy_coding.trellis import TrellisSettings
from harness_codecs._autoencoder.runtime.checkpoint import load_checkpoint, save_checkpoint
from harness_codecs._autoencoder.training.coded_latents import CodedLatents

from harness import UserError
from tests.test_trellis_codec import tile, trellis_checkpoint, trellis_codec  # noqa: F401 (a fixture)
from tests.training_helpers import REAL_BENCHMARK, TRAINING_DATA, train_beside, write

TRELLIS_LEVEL = 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A variable-rate model trained for 2 steps on real patches, in int8, given trellis settings at its upper
    level (``trellis.pt``), beside the benchmark and training data it was trained with."""
    folder = tmp_path_factory.mktemp("coded")
    write(folder, "bench.yaml", REAL_BENCHMARK)
    write(folder, "training.yaml", TRAINING_DATA)
    fine_tune(folder, "plain.pt", "--weight-format", "int8")  # int8 again after fine-tuning: the same frozen weights
    checkpoint = load_checkpoint(folder / "plain.pt")
    tables = EntropyTables.from_tensors(checkpoint.entropy_tables)
    settings = TrellisSettings(np.array([TRELLIS_LEVEL]), np.array([77]), np.ones((1, checkpoint.spec.latent_channels)),
                               np.array([0.02]))
    trellis = dataclasses.replace(tables, odd=odd_gaussian_tables(tables.scales), trellis=settings)
    save_checkpoint(dataclasses.replace(checkpoint, entropy_tables=trellis.to_tensors()), folder / "trellis.pt")
    return folder


def fine_tune(folder, output: str, *flags: str) -> None:
    train_beside(folder, folder / output, "--steps", "2", *flags)


@pytest.mark.parametrize("quality", [0, 2], ids=["rounded level", "trellis-coded level"])
def test_the_coded_latent_is_the_latent_the_codecs_stream_decodes_to(trellis_checkpoint, quality):
    codec, image = trellis_codec(trellis_checkpoint, quality=quality, precision="fp32"), tile()
    read = codec.coder.read([codec.encode(image)], [image.shape])[0].latent
    model, quality_tensor = codec.coder.model, torch.tensor([float(quality)])
    coded_latents = CodedLatents(model, EntropyTables.from_tensors(load_checkpoint(trellis_checkpoint).entropy_tables))

    with torch.no_grad():
        coded, _ = coded_latents(model.encode(torch.from_numpy(image)[None, None], quality_tensor), quality_tensor)

    np.testing.assert_array_equal(coded[0].numpy(), read)


def test_training_on_coded_latents_changes_the_synthesis_and_keeps_the_rest_and_the_trellis_settings(trained):
    fine_tune(trained, "coded.pt", "--init", str(trained / "trellis.pt"), "--train-only", "synthesis",
              "--coded-latents", "--weight-format", "int8")

    start, tuned = load_checkpoint(trained / "trellis.pt"), load_checkpoint(trained / "coded.pt")
    assert not torch.equal(tuned.state_dict["log_inverse_gains"], start.state_dict["log_inverse_gains"])
    assert all(torch.equal(tuned.state_dict[name], start.state_dict[name]) for name in start.state_dict
               if name.startswith(("encoder.", "prior.", "log_gains")))
    trellis_entries = [name for name in start.entropy_tables if name.startswith(("odd.", "trellis."))]
    assert trellis_entries and all(torch.equal(tuned.entropy_tables[name], start.entropy_tables[name])
                                   for name in trellis_entries)


def test_training_on_coded_latents_twice_with_the_same_seed_gives_identical_weights(trained):
    for output in ("first.pt", "second.pt"):
        fine_tune(trained, output, "--init", str(trained / "trellis.pt"), "--train-only", "synthesis",
                  "--coded-latents")

    first, second = (load_checkpoint(trained / name).state_dict for name in ("first.pt", "second.pt"))
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize(("flags", "message"), [
    (["--coded-latents"], "--coded-latents: the latents must stay as the codec codes them; add --train-only"),
    (["--coded-latents", "--train-only", "synthesis"], "--coded-latents: give the trained model whose latents"),
])
def test_coded_latents_without_a_frozen_trained_model_are_refused(trained, flags, message):
    with pytest.raises(UserError, match=message):
        fine_tune(trained, "refused.pt", *flags)


def test_coded_latents_of_a_fixed_length_model_are_refused(trained):
    fixed_length = ("--entropy", "none", "--lmbdas", "")
    fine_tune(trained, "fixed.pt", *fixed_length)

    with pytest.raises(UserError, match="--coded-latents: --init .* holds a fixed-length model"):
        fine_tune(trained, "refused.pt", *fixed_length, "--init", str(trained / "fixed.pt"), "--train-only",
                  "synthesis", "--coded-latents")
