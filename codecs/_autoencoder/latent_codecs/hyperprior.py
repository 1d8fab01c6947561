"""The mean-scale hyperprior latent codec (Minnen et al. 2018), without a context model.

A hyper-encoder summarises the latent ``y`` into a side latent ``z`` at a quarter of its resolution; ``z`` is
coded first under a factorized density, and the hyper-decoder predicts a Gaussian mean and scale for every
element of ``y`` from it. The codec runs the hyper-decoder in fixed point on both sides of the stream
(``fixed_point``), so encoder and decoder pick the same means and tables on any device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from harness_codecs._autoencoder.entropy_coding.densities import (
    SCALE_FLOOR,
    FactorizedDensity,
    gaussian_likelihood,
    noisy,
)
from harness_codecs._autoencoder.entropy_coding.range_coding import LATENT, Section, TileDecoders
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.fixed_point.gaussians import FixedPointGaussians
from harness_codecs._autoencoder.latent_codecs.base import register
from harness_codecs._autoencoder.latent_codecs.side_latent import SideLatentCodec, SideLatentLayout
from torch import nn

if TYPE_CHECKING:
    from harness_codecs._autoencoder.model.autoencoder import ModelSpec


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def _up(in_channels: int, out_channels: int, kernel_size: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2,
                              output_padding=1)


@register
class HyperpriorLatentCodec(SideLatentCodec):
    """Hyper-encoder ``y -> z`` (1/4 of y's resolution), factorized density of ``z``, and the
    hyper-decoder ``z -> (mean, scale)`` of every element of ``y``."""

    entropy = "hyperprior"
    description = ("integer latent range-coded under Gaussians whose mean and scale a coded hyper-latent predicts "
                   "(Minnen et al. 2018 mean-scale hyperprior)")

    def __init__(self, latent_channels: int, hidden_channels: int, hyper_channels: int):
        super().__init__()
        self.hyper_encoder = nn.Sequential(
            _conv(latent_channels, hidden_channels, 3, 1), nn.GELU(),
            _conv(hidden_channels, hidden_channels, 5, 2), nn.GELU(),
            _conv(hidden_channels, hyper_channels, 5, 2),
        )
        self.hyper_decoder = nn.Sequential(
            _up(hyper_channels, hidden_channels, 5), nn.GELU(),
            _up(hidden_channels, hidden_channels, 5), nn.GELU(),
            _conv(hidden_channels, 2 * latent_channels, 3, 1),
        )
        self.side_density = FactorizedDensity(hyper_channels)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> HyperpriorLatentCodec:
        return cls(spec.latent_channels, spec.channels, spec.channels)

    def parameters_of(self, side: torch.Tensor, latent_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian means and scales for a latent of ``latent_shape`` from the (quantized) side latent."""
        means, raw_scales = self.hyper_decoder(side).chunk(2, dim=1)
        height, width = latent_shape
        return means[..., :height, :width], (SCALE_FLOOR + F.softplus(raw_scales))[..., :height, :width]

    def coded(self, latent: torch.Tensor, rounded: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        side = self.hyper_encoder(latent)
        coded_side = torch.round(side) if rounded else noisy(side, generator)
        means, scales = self.parameters_of(coded_side, latent.shape[-2:])
        coded = torch.round(latent - means) + means if rounded else noisy(latent, generator)
        return coded, [gaussian_likelihood(coded, means, scales), self.side_density.likelihood(coded_side)]

    def rate_critical_layers(self) -> list[nn.Module]:
        return [self.hyper_encoder[0], self.hyper_decoder[-1]]

    def layout(self, tables: EntropyTables, device: torch.device) -> HyperpriorLayout:
        return HyperpriorLayout(self, tables, device)


class HyperpriorLayout(SideLatentLayout):
    """``z``, then ``y`` minus its predicted mean, grouped by scale table."""

    def __init__(self, prior: HyperpriorLatentCodec, tables: EntropyTables, device: torch.device):
        super().__init__(tables)
        self.fixed = FixedPointGaussians(prior.hyper_decoder, tables.scales, device)

    def conditionals(self, side: np.ndarray, latent_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Means and table indexes (batch x channels x height x width) of latents of ``latent_shape``."""
        return self.fixed.means_and_tables(self.fixed.hyper(side, latent_shape))

    def sections(self, latent: np.ndarray, side: np.ndarray) -> tuple[list[Section], np.ndarray]:
        means, tables = self.conditionals(side, latent.shape[2:])
        values = np.round(latent - means).astype(np.int64)
        return [self.side_section(side), Section(LATENT, values, tables)], (values + means).astype(np.float32)

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        means, tables = self.conditionals(self.read_side(decoders, latent_shape), latent_shape)
        return (decoders.read(LATENT, tables) + means).astype(np.float32)
