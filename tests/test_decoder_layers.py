"""The decoder layers that run in another form than they are stored in compute what their stored form computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from harness_codecs._autoencoder.model.block_transform import BLOCK, blocks_from_coefficients
from harness_codecs._autoencoder.model.sub_pixel import SubPixelToImage
from torch import nn


def stored_form(layer: nn.ConvTranspose2d, values: torch.Tensor) -> torch.Tensor:
    return F.conv_transpose2d(values, layer.weight, layer.bias, layer.stride, layer.padding, layer.output_padding)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_the_last_layer_gives_the_transposed_convolution_its_weights_describe(kernel_size, generator):
    layer = SubPixelToImage(6, kernel_size)
    values = torch.randn(2, 6, 9, 12, generator=generator)
    with torch.no_grad():
        torch.nn.init.normal_(layer.bias)
        expected = stored_form(layer, values)
        output = layer(values)

    assert output.shape == (2, 1, 18, 24)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)


def test_the_last_layer_trains_as_the_transposed_convolution_does(generator):
    layer = SubPixelToImage(4, 5)
    values = torch.randn(2, 4, 8, 8, generator=generator)
    target = torch.randn(2, 1, 16, 16, generator=generator)

    gradients = []
    for forward in (layer, lambda inputs: stored_form(layer, inputs)):
        layer.zero_grad()
        F.mse_loss(forward(values), target).backward()
        gradients.append((layer.weight.grad.clone(), layer.bias.grad.clone()))

    for ours, stored in zip(*gradients):
        torch.testing.assert_close(ours, stored, rtol=1e-5, atol=1e-6)


def test_the_last_layer_keeps_the_state_dict_of_the_layer_it_replaces():
    layer = SubPixelToImage(8, 5)
    stored = nn.ConvTranspose2d(8, 1, 5, stride=2, padding=2, output_padding=1)

    assert {name: value.shape for name, value in layer.state_dict().items()} == \
        {name: value.shape for name, value in stored.state_dict().items()}


def test_the_inverse_block_transform_gives_the_strided_transposed_convolution(generator):
    latent = torch.randn(2, 256, 3, 5, generator=generator)
    weight = torch.randn(256, 1, BLOCK, BLOCK, generator=generator)

    # each output sums 256 products of unit normals (about 16 in size): float32 rounding in either summation
    # order reaches 1e-5 on one thread, so the bound is a few ulps of such sums
    torch.testing.assert_close(blocks_from_coefficients(latent, weight),
                               F.conv_transpose2d(latent, weight, stride=BLOCK), rtol=1e-5, atol=5e-5)
