"""Specification of the learned codecs' complexity figures: MACs per pixel of encode and decode, parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.fixed_point import networks
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.runtime.complexity import REFERENCE_TILE, counting_macs
from harness_codecs._autoencoder.model.gdn import GDN
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, ModelSpec
from harness_codecs.autoencoder import AutoencoderCodec
from harness_codecs.autoencoder_entropy import codec_class
from torch.utils.flop_counter import FlopCounterMode

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
LEARNED_CODECS = {
    "autoencoder": (AutoencoderCodec, "autoencoder-tiny-c32-b4.pt"),
    "autoencoder_factorized": (codec_class("factorized"), "autoencoder-tiny-factorized-l60.pt"),
    "autoencoder_hyperprior": (codec_class("hyperprior"), "autoencoder-tiny-hyperprior-l60.pt"),
    "autoencoder_checkerboard": (codec_class("checkerboard"), "autoencoder-gdn-dct-small-checkerboard.pt"),
}


def learned_codec(name: str):
    codec_class, checkpoint = LEARNED_CODECS[name]
    options = {"quality": 0} if name == "autoencoder_checkerboard" else {}
    return codec_class(checkpoint=str(CHECKPOINTS / checkpoint), **options)


@pytest.fixture
def two_channel_codec(tmp_path) -> AutoencoderCodec:
    """The gelu layout at width 2, 3x3 kernels and a one-channel latent: small enough to count by hand."""
    spec = ModelSpec(preset="tiny", channels=2, kernel_size=3, latent_channels=1)
    path = tmp_path / "two.pt"
    save_checkpoint(Checkpoint(spec=spec, bits=4, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=Autoencoder(spec).state_dict()), path)
    return AutoencoderCodec(checkpoint=str(path))


def test_macs_per_pixel_of_a_small_fixed_length_codec_are_its_layers_counted_by_hand(two_channel_codec):
    # encoder: stride-2 3x3 convolutions 1->2->2->2->1 channels, output sides 128, 64, 32, 16 (MACs = output
    # elements x input channels x 9); decoder: the transposed ones 1->2->2->2 channels, input sides 16, 32, 64
    # (MACs = input elements x output channels x 9), then 2->1 to the image as four 2x2 sub-pixel convolutions
    # (model.sub_pixel: output elements x input channels x 4)
    encode = 128**2 * 2 * 1 * 9 + 64**2 * 2 * 2 * 9 + 32**2 * 2 * 2 * 9 + 16**2 * 1 * 2 * 9
    decode = 16**2 * 1 * 2 * 9 + 32**2 * 2 * 2 * 9 + 64**2 * 2 * 2 * 9 + 256**2 * 2 * 4

    complexity = two_channel_codec.complexity()

    assert complexity.encode_macs_per_pixel == encode / 256**2
    assert complexity.decode_macs_per_pixel == decode / 256**2


def test_parameters_of_a_small_fixed_length_codec_are_its_weights_and_biases_counted_by_hand(two_channel_codec):
    # per direction: 1x2, 2x2, 2x2 and 2x1 kernels of 3x3, each with a bias per output channel
    per_direction = (1 * 2 * 9 + 2) + (2 * 2 * 9 + 2) + (2 * 2 * 9 + 2) + (2 * 1 * 9 + 1)

    assert two_channel_codec.complexity().parameters == 2 * per_direction


def test_gdn_counts_as_the_one_by_one_convolution_over_its_channels():
    with torch.inference_mode(), counting_macs() as total:
        GDN(4)(torch.ones(1, 4, 8, 8))

    assert total[0] == 8 * 8 * 4 * 4


@pytest.mark.parametrize("name", LEARNED_CODECS)
def test_macs_match_the_products_torch_flop_counter_sees_in_a_real_encode_and_decode(name, monkeypatch):
    """The fixed-point networks counted as their float64 kernels run them (on CUDA): on the CPU an int8 checkpoint's
    layers give the same sums through int8 products of the activations' digits, which the counter does not see."""
    monkeypatch.setattr(networks, "integer_products_on", lambda device: False)
    codec = learned_codec(name)
    tile = np.full(REFERENCE_TILE, 0.5, dtype=np.float32)
    with FlopCounterMode(display=False) as encode_flops:
        (stream,) = codec.encode_batch([tile])
    with FlopCounterMode(display=False) as decode_flops:
        codec.decode_batch([stream], [REFERENCE_TILE])

    complexity = codec.complexity()

    assert complexity.encode_macs_per_pixel * tile.size == convolution_flops(encode_flops) / 2
    assert complexity.decode_macs_per_pixel * tile.size == convolution_flops(decode_flops) / 2


def test_the_hyperprior_encoder_also_pays_for_the_hyper_decoder_that_picks_its_tables():
    factorized, hyperprior = learned_codec("autoencoder_factorized"), learned_codec("autoencoder_hyperprior")
    # same tiny transforms; the hyper-networks come on top, the hyper-decoder on both sides
    assert hyperprior.complexity().encode_macs_per_pixel > factorized.complexity().encode_macs_per_pixel
    assert hyperprior.complexity().decode_macs_per_pixel > factorized.complexity().decode_macs_per_pixel


def convolution_flops(counter: FlopCounterMode) -> int:
    """FLOPs (2 per multiply-accumulate) of the convolutions and matrix products the counter saw (the checkerboard's
    context runs as one matrix product per tap); it counts other ops apart."""
    return sum(flops for op, flops in counter.get_flop_counts()["Global"].items()
               if "convolution" in str(op) or str(op) in ("aten.mm", "aten.bmm"))
