"""A linear block transform beside the GDN networks: the model starts as a DCT transform coder.

A GDN autoencoder learns to reproduce fine detail slowly: measured on real
Sentinel-1, the GDN networks alone (128 channels, 192-channel latent, the
Ballé/Minnen layout) reconstructed no better than 29.5 dB after 2,500 CPU
steps even without quantization, while a linear transform keeping 192 of a
16x16 block's 256 principal components holds 42 dB. Speckle is mostly such fine detail, so a learned codec trained on a
CPU budget stayed capped far below JPEG 2000's high rates.

``gdn-dct`` models therefore add a linear path to each GDN network: the
encoder's latent is ``gdn(x) + D(x - 1/2)``, where ``D`` maps every 16x16
block to ``latent_channels`` coefficients (a strided convolution), and the
decoder's output is ``1/2 + gdn_s(y) + D'(y)``. Both linear maps start as the
orthonormal 2-D DCT-II (scaled by ``DCT_SCALE``, so that one quantization step
of the highest trained rate is a DCT step of ``1 / DCT_SCALE``), and the last
layer of each GDN network starts at zero: the untrained model *is* a block-DCT
coder with a learned entropy model, and training both refines the linear
bases and teaches the GDN paths what a linear transform cannot do (deblocking
at low rates). With 256 latent channels the block transform is complete.

The linear paths run in float32 even under autocast: a bf16 DCT coefficient of
100 latent units carries an error of about 0.2 units, most of a quantization
step at the top rate, and they cost little (one multiply-add per pixel and
coefficient). They are stored as a strided convolution and its transpose, but
run as what they are, one matrix product per block: the decoder's as a 1x1
convolution to the block's 256 pixels and a pixel shuffle, 0.8 ms for 4 tiles
of 256 px where ``conv_transpose2d`` took 17.8 ms (oneDNN, one output channel;
one thread on the 2-core Sapphire Rapids VM), with the same result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BLOCK = 16
DCT_SCALE = 32.0
"""Latent units per DCT unit at gain 1: the top rate starts with DCT steps of 1/32 of the normalized range."""
OFFSET = 0.5
"""Tiles lie in [0, 1]; the linear path codes them around the middle, so the DC coefficient starts near zero."""


def dct_basis(size: int = BLOCK) -> torch.Tensor:
    """The orthonormal 2-D DCT-II basis, (size², size, size), lowest frequencies first (by u + v, then u)."""
    positions = torch.arange(size, dtype=torch.float64)
    frequencies = torch.arange(size, dtype=torch.float64)
    one_d = torch.cos(math.pi * (positions[None, :] + 0.5) * frequencies[:, None] / size)
    one_d[0] *= math.sqrt(1.0 / size)
    one_d[1:] *= math.sqrt(2.0 / size)
    order = sorted(((u, v) for u in range(size) for v in range(size)), key=lambda uv: (uv[0] + uv[1], uv[0]))
    return torch.stack([torch.outer(one_d[u], one_d[v]) for u, v in order]).float()


class BlockAnalysis(nn.Module):
    """``network(x) + D(x - OFFSET)``: the GDN encoder plus a linear block transform, DCT-initialised."""

    def __init__(self, network: nn.Sequential, latent_channels: int):
        super().__init__()
        self.network = network
        self.linear = nn.Conv2d(1, latent_channels, BLOCK, stride=BLOCK, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(DCT_SCALE * dct_basis()[:latent_channels, None])
            _zero_last_layer(network)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        with torch.autocast(tiles.device.type, enabled=False):
            linear = self.linear(tiles.float() - OFFSET)
        return self.network(tiles) + linear


class BlockSynthesis(nn.Module):
    """``OFFSET + network(y) + D'(y)``: the GDN decoder plus the transposed block transform."""

    def __init__(self, network: nn.Sequential, latent_channels: int):
        super().__init__()
        self.network = network
        self.linear = nn.ConvTranspose2d(latent_channels, 1, BLOCK, stride=BLOCK, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(dct_basis()[:latent_channels, None] / DCT_SCALE)
            _zero_last_layer(network)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        network = self.network(latent)
        with torch.autocast(latent.device.type, enabled=False):
            return OFFSET + network.float() + blocks_from_coefficients(latent.float(), self.linear.weight)

    def macs(self, latent: torch.Tensor, output: torch.Tensor) -> int:
        """Multiply-accumulates of the inverse block transform, which runs as a function rather than as its layer
        (``runtime.complexity`` counts each module's own; the network's layers count theirs)."""
        return latent.numel() * BLOCK * BLOCK


def blocks_from_coefficients(latent: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv_transpose2d(latent, weight, stride=BLOCK)`` for a ``(channels, 1, BLOCK, BLOCK)`` weight: each position's
    block of pixels as one matrix product, the pixels shuffled into place."""
    pixels = weight.reshape(weight.shape[0], BLOCK * BLOCK).T[:, :, None, None]
    return F.pixel_shuffle(F.conv2d(latent, pixels), BLOCK)


def _zero_last_layer(network: nn.Sequential) -> None:
    last = network[-1]
    last.weight.zero_()
    if last.bias is not None:
        last.bias.zero_()
