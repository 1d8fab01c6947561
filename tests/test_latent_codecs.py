"""Specification of the latent-codec registry: an entropy model is one class in one file, and becomes a trainable
model and a codec plugin with nothing else (``tests/latent_codec_example.py`` is such a file)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.entropy_coding.densities import estimated_bits
from harness_codecs._autoencoder.latent_codecs import CheckerboardLatentCodec, LatentCodec, register
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, entropy_models, spec_for
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs.autoencoder_entropy import codec_class, harness_codecs


@pytest.fixture(scope="module")
def example():
    module = importlib.import_module("tests.latent_codec_example")
    yield module
    module.unregister()


@pytest.fixture(scope="module")
def trained_checkpoint(example, tmp_path_factory):
    """A tiny model with the example's entropy model, after a few steps on the rate-distortion loss."""
    torch.manual_seed(0)
    spec = spec_for("tiny", 8, entropy=example.UnitGaussianLatentCodec.entropy)
    model = Autoencoder(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tiles = torch.rand(4, 1, 64, 64)
    for _ in range(5):
        latent = model.encode(tiles) * 20  # several integer levels from an untrained encoder
        coded, likelihoods = model.prior.coded(latent, rounded=False)
        loss = (estimated_bits(likelihoods) / tiles[0, 0].numel()).mean() + ((model.decode(coded) - tiles) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        model.encoder[-1].weight.mul_(20)
        model.encoder[-1].bias.mul_(20)
    path = tmp_path_factory.mktemp("unit_gaussian") / "model.pt"
    save_checkpoint(Checkpoint(spec=spec, bits=0, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=model.state_dict(), entropy_tables=model.prior.tables().to_tensors()), path)
    return path


def test_a_registered_latent_codec_is_an_entropy_model_of_the_trainer_and_a_codec_plugin(example):
    assert "unit_gaussian" in entropy_models()
    assert "autoencoder_unit_gaussian" in [codec.name for codec in harness_codecs()]


def test_a_model_with_a_new_latent_codec_codes_its_tiles_and_decodes_them_as_the_network_does(example,
                                                                                            trained_checkpoint):
    codec = codec_class("unit_gaussian")(checkpoint=str(trained_checkpoint))
    tile = np.random.default_rng(0).random((64, 48), dtype=np.float32)
    stream = codec.encode(tile)
    decoded = codec.decode(stream, tile.shape)
    model = codec.coder.model
    with torch.no_grad():
        latent = torch.round(model.encode(torch.from_numpy(tile)[None, None]))
        expected = model.decode(latent)[0, 0].clamp(0, 1).numpy()
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    assert 8 * len(stream) == pytest.approx(codec.estimated_bpp([tile])[0] * tile.size, rel=0.1, abs=200)


def test_an_entropy_name_is_taken_once():
    class Another(LatentCodec):
        entropy = CheckerboardLatentCodec.entropy

    with pytest.raises(ValueError, match="'checkerboard' is taken"):
        register(Another)


def test_an_unknown_entropy_model_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="entropy model 'cubic'; accepted: none, factorized, hyperprior, checkerboard"):
        Autoencoder(spec_for("tiny", 8, entropy="cubic"))
