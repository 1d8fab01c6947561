"""The convolutional autoencoder: 4 stride-2 stages down to 1/16 resolution, 4 up.

The encoder's output is the latent that gets quantized; the decoder maps the
dequantized latent back to a normalized tile. Tiles of any size are padded by
reflection to a multiple of ``STRIDE`` before encoding (see ``pad_to_stride``)
and the decoder's output is cropped back, so the codec accepts e.g. 100x77.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_models import FactorizedPrior, HyperPrior
from torch import nn

STRIDE = 16
"""Four stride-2 stages: the latent has one position per 16x16 pixels."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    preset: str
    channels: int
    kernel_size: int
    latent_channels: int
    attention: bool = False
    entropy: str = "none"
    """``none``: tanh-bounded latent, fixed-length codes; ``factorized`` / ``hyperprior``: unbounded
    latent rounded to integers and entropy-coded under a learned prior (``entropy_models``)."""

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # ~56k parameters (about 220 KB of float32 weights): trains usefully in minutes on 2 CPU cores.
    "tiny": ModelSpec(preset="tiny", channels=32, kernel_size=3, latent_channels=32),
    # ~5M parameters: meant for a GPU.
    "default": ModelSpec(preset="default", channels=208, kernel_size=5, latent_channels=64),
}


ENTROPY_MODELS = ("none", "factorized", "hyperprior")


def spec_for(preset: str, latent_channels: int | None = None, attention: bool = False,
             entropy: str = "none") -> ModelSpec:
    """The preset's spec, with the latent width, attention flag and entropy model overridden when given."""
    spec = PRESETS[preset]
    if latent_channels is not None:
        spec = replace(spec, latent_channels=latent_channels)
    return replace(spec, attention=attention, entropy=entropy)


class ChannelSpatialAttention(nn.Module):
    """CBAM (Woo et al. 2018): reweigh channels, then positions, from pooled statistics.

    Cheap at 1/16 resolution, and lets the model spend latent capacity on
    structured regions (edges, urban scatterers) rather than on speckle.
    """

    def __init__(self, channels: int, reduction: int = 8, spatial_kernel: int = 7):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.channel_mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.channel_mlp(x.mean(dim=(2, 3), keepdim=True)) + self.channel_mlp(x.amax(dim=(2, 3), keepdim=True))
        x = x * torch.sigmoid(pooled)
        statistics = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(statistics))


def _down(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2)


def _up(in_channels: int, out_channels: int, kernel_size: int) -> nn.ConvTranspose2d:
    """Exactly doubles the size for odd kernels (output_padding supplies the missing row/column)."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2,
                              padding=kernel_size // 2, output_padding=1)


class Autoencoder(nn.Module):
    """Encoder to a ``latent_channels`` x H/16 x W/16 latent and the decoder back, plus the
    latent's learned prior (``prior``) when the spec asks for entropy coding."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        n, k = spec.channels, spec.kernel_size
        encoder: list[nn.Module] = [_down(1, n, k), nn.GELU(), _down(n, n, k), nn.GELU(), _down(n, n, k), nn.GELU()]
        decoder: list[nn.Module] = [_up(spec.latent_channels, n, k), nn.GELU()]
        if spec.attention:
            encoder.append(ChannelSpatialAttention(n))
            decoder.append(ChannelSpatialAttention(n))
        encoder.append(_down(n, spec.latent_channels, k))
        if spec.entropy == "none":
            encoder.append(nn.Tanh())  # bounded: the clip range is (-1, 1)
        decoder += [_up(n, n, k), nn.GELU(), _up(n, n, k), nn.GELU(), _up(n, 1, k)]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.prior = _prior(spec)

    def encode(self, tiles: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` with H, W multiples of 16 -> ``(N, C, H/16, W/16)``, values in (-1, 1)."""
        return self.encoder(tiles)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)


def _prior(spec: ModelSpec) -> nn.Module | None:
    if spec.entropy == "factorized":
        return FactorizedPrior(spec.latent_channels)
    if spec.entropy == "hyperprior":
        return HyperPrior(spec.latent_channels, spec.channels, spec.channels)
    if spec.entropy != "none":
        raise ValueError(f"entropy model {spec.entropy!r}; accepted: {', '.join(ENTROPY_MODELS)}")
    return None


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def latent_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE), -(-width // STRIDE)


def pad_to_stride(tile: np.ndarray) -> np.ndarray:
    """Reflect-pad bottom and right to a multiple of 16; numpy's reflect copes with pads wider than the tile."""
    height, width = tile.shape
    return np.pad(tile, ((0, -height % STRIDE), (0, -width % STRIDE)), mode="reflect" if min(height, width) > 1 else "edge")
