"""The convolutional autoencoder: 4 stride-2 stages down to 1/16 resolution, 4 up.

The encoder's output is the latent that gets quantized; the decoder maps the
dequantized latent back to a normalized tile. Tiles of any size are padded by
reflection to a multiple of ``STRIDE`` before encoding (see ``pad_to_stride``)
and the decoder's output is cropped back, so the codec accepts e.g. 100x77.

Two transform families share that layout. ``gelu`` (the ``tiny`` and
``default`` presets) is the original network, with GELU and optional
attention. ``gdn-dct`` (the ``gdn-dct*`` presets) is the Ballé/Minnen codec
transform, 5x5 convolutions with GDN in the encoder and IGDN in the decoder,
beside a DCT-initialised linear block transform (``block_transform``), so
that training starts from a working transform coder.

A *variable-rate* model (``lmbdas`` in its spec) is trained for several
rate-distortion trade-offs at once, with the gain units of Cui et al. (2021):
the encoder's latent is scaled channel by channel by a learned gain vector
before rounding, and the decoder's input by an inverse gain. Each trained
``lmbda`` has its own pair of vectors; a fractional ``quality`` between two
levels interpolates them geometrically, so one network gives a continuous
rate-distortion curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from harness_codecs._autoencoder.model.block_transform import BlockAnalysis, BlockSynthesis
from harness_codecs._autoencoder.latent_codecs import LATENT_CODECS, LatentCodec, PriorWidths, latent_codec_class
from harness_codecs._autoencoder.model.gdn import GDN
from harness_codecs._autoencoder.model.refinement import Refinement, corrected
from harness_codecs._autoencoder.model.sub_pixel import SubPixelToImage
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
    """``none``: tanh-bounded latent, fixed-length codes; otherwise a registered latent codec's name
    (``factorized``, ``hyperprior``, ``checkerboard``, ...): unbounded latent rounded to integers and
    entropy-coded under a learned prior (``latent_codecs``)."""
    transform: str = "gelu"
    """``gelu`` (the original network) or ``gdn-dct`` (5x5 convolutions with GDN/IGDN beside a linear 16x16
    block transform that starts as the DCT)."""
    hyper_channels: int = 0
    """Width of the side latent ``z`` of the checkerboard prior (0: ``channels``)."""
    lmbdas: tuple[float, ...] = ()
    """The rate-distortion trade-offs of a variable-rate model, one gain level each (empty: one rate)."""
    synthesis_channels: tuple[int, ...] = ()
    """Widths of the GDN synthesis network's three hidden layers, from the latent outwards (empty: ``channels``
    each, the symmetric decoder). Decoding costs what the synthesis costs, encoding does not: a light synthesis
    beside a full analysis is what makes the ``gdn-dct-light`` preset cheap to decode."""
    prior_widths: PriorWidths | None = None
    """Widths of the checkerboard prior's networks (None: the Minnen et al. widths, ``PriorWidths.standard``)."""
    refinement_channels: tuple[int, ...] = ()
    """Widths of the hidden layers of the full-resolution network after the synthesis (``refinement``; empty:
    none). It adds 9 x (inputs x outputs) MAC/px per layer to decoding."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lmbdas", tuple(float(value) for value in self.lmbdas))
        object.__setattr__(self, "synthesis_channels", tuple(int(value) for value in self.synthesis_channels))
        object.__setattr__(self, "refinement_channels", tuple(int(value) for value in self.refinement_channels))
        if isinstance(self.prior_widths, dict):
            object.__setattr__(self, "prior_widths", PriorWidths(**self.prior_widths))

    @property
    def rate_levels(self) -> int:
        """How many trained gain levels: ``quality`` goes from 0 to ``rate_levels - 1`` (0: one rate)."""
        return len(self.lmbdas)

    def to_dict(self) -> dict:
        return {**asdict(self), "lmbdas": list(self.lmbdas), "synthesis_channels": list(self.synthesis_channels),
                "refinement_channels": list(self.refinement_channels)}


PRESETS = {
    # ~56k parameters (about 220 KB of float32 weights): trains usefully in minutes on 2 CPU cores.
    "tiny": ModelSpec(preset="tiny", channels=32, kernel_size=3, latent_channels=32),
    # ~5M parameters: meant for a GPU.
    "default": ModelSpec(preset="default", channels=208, kernel_size=5, latent_channels=64),
    # GDN networks beside a complete 16x16 block transform that starts as the DCT (256 latent channels):
    # trains on 2 CPU cores (bf16 autocast where the CPU has AMX or AVX-512 BF16) in hours.
    "gdn-dct-small": ModelSpec(preset="gdn-dct-small", channels=128, kernel_size=5, latent_channels=256,
                               transform="gdn-dct", hyper_channels=128),
    # The same with the GDN width of the published high-rate models (Minnen et al. 2018): meant for a GPU.
    "gdn-dct": ModelSpec(preset="gdn-dct", channels=192, kernel_size=5, latent_channels=256, transform="gdn-dct",
                         hyper_channels=192),
    # The seed's budget (under 5M parameters, under 20k MAC/px to decode): the gdn-dct-small analysis beside a
    # synthesis that narrows towards full resolution (96, 64, 32 channels) and a narrower checkerboard prior.
    "gdn-dct-light": ModelSpec(preset="gdn-dct-light", channels=128, kernel_size=5, latent_channels=256,
                               transform="gdn-dct", hyper_channels=128, synthesis_channels=(96, 64, 32),
                               prior_widths=PriorWidths(hyper_kernel=3, hyper_decoder=(160, 192, 192),
                                                        context=80, entropy_parameters=(320, 320))),
}


def entropy_models() -> tuple[str, ...]:
    """``none`` (fixed-length codes) and every registered latent codec's name (``latent_codecs``)."""
    return ("none", *LATENT_CODECS)


def spec_for(preset: str, latent_channels: int | None = None, attention: bool = False,
             entropy: str = "none", lmbdas: tuple[float, ...] = (), refinement: tuple[int, ...] = ()) -> ModelSpec:
    """The preset's spec, with the latent width, attention flag, entropy model, variable-rate
    trade-offs and refinement widths overridden when given."""
    spec = PRESETS[preset]
    if latent_channels is not None:
        spec = replace(spec, latent_channels=latent_channels)
    return replace(spec, attention=attention, entropy=entropy, lmbdas=tuple(lmbdas),
                   refinement_channels=tuple(refinement))


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
    latent's learned prior (``prior``) when the spec asks for entropy coding, and the gain vectors
    of a variable-rate model."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        builders = {"gelu": _gelu_transforms, "gdn-dct": _gdn_dct_transforms}
        if spec.transform not in builders:
            raise ValueError(f"transform {spec.transform!r}; accepted: {', '.join(builders)}")
        self.encoder, self.decoder = builders[spec.transform](spec)
        self.prior = _prior(spec)
        self.refinement = Refinement(spec.refinement_channels, spec.rate_levels) if spec.refinement_channels else None
        if spec.rate_levels:
            initial = 0.5 * torch.log(torch.tensor(spec.lmbdas) / max(spec.lmbdas))[:, None]
            self.log_gains = nn.Parameter(initial.repeat(1, spec.latent_channels))
            self.log_inverse_gains = nn.Parameter(-initial.repeat(1, spec.latent_channels))

    def encode(self, tiles: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 1, H, W)`` with H, W multiples of 16 -> ``(N, C, H/16, W/16)``; a variable-rate model
        scales it by the gains of each tile's ``quality`` (N,)."""
        latent = self.encoder(tiles)
        return latent if quality is None else latent * self.gains(self.log_gains, quality)

    def decode(self, latent: torch.Tensor, quality: torch.Tensor | None = None,
               refinement_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The tiles the latents decode to: the synthesis, then the refinement's correction where the model has
        one, scaled per tile by ``refinement_weight`` (N,; None: 1, as trained)."""
        return self.refined(self.synthesized(latent, quality), quality, refinement_weight)

    def synthesized(self, latent: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """The synthesis network's output, before any refinement."""
        if quality is not None:
            latent = latent * self.gains(self.log_inverse_gains, quality)
        return self.decoder(latent)

    def refined(self, image: torch.Tensor, quality: torch.Tensor | None,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """``image`` plus the refinement's correction (times ``weight`` per tile, when given); ``image`` itself for
        a model without a refinement."""
        correction = self.correction(image, quality)
        return image if correction is None else corrected(image, correction, weight)

    def correction(self, image: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor | None:
        """What the refinement adds to the synthesis's output ``image`` (None: the model has no refinement)."""
        if self.refinement is None:
            return None
        return self.refinement(image, None if quality is None else self.level_position(quality).to(image.device))

    def gains(self, log_gains: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """Per tile, the gain vector of its quality, interpolated geometrically between the two
        nearest levels: (N, C, 1, 1)."""
        return torch.exp(_interpolate(log_gains, self.level_position(quality.to(log_gains.device))))[:, :, None, None]

    def lmbda(self, quality: torch.Tensor) -> torch.Tensor:
        """The trade-off each quality was trained for, interpolated geometrically like the gains: (N,)."""
        levels = torch.log(torch.tensor(self.spec.lmbdas, device=quality.device))
        return torch.exp(_interpolate(levels, self.level_position(quality)))

    def level_position(self, quality: torch.Tensor) -> torch.Tensor:
        """Each tile's quality as a float32 position among the trained levels (clamped to them): (N,)."""
        return quality.float().clamp(0, self.spec.rate_levels - 1)


def _interpolate(values: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``values`` (one row per integer position) at fractional positions."""
    lower = position.floor().long().clamp(0, max(len(values) - 2, 0))
    upper = (lower + 1).clamp(max=len(values) - 1)
    weight = (position - lower).reshape(-1, *[1] * (values.dim() - 1))
    return (1 - weight) * values[lower] + weight * values[upper]


def _gelu_transforms(spec: ModelSpec) -> tuple[nn.Sequential, nn.Sequential]:
    n, k = spec.channels, spec.kernel_size
    encoder: list[nn.Module] = [_down(1, n, k), nn.GELU(), _down(n, n, k), nn.GELU(), _down(n, n, k), nn.GELU()]
    decoder: list[nn.Module] = [_up(spec.latent_channels, n, k), nn.GELU()]
    if spec.attention:
        encoder.append(ChannelSpatialAttention(n))
        decoder.append(ChannelSpatialAttention(n))
    encoder.append(_down(n, spec.latent_channels, k))
    if spec.entropy == "none":
        encoder.append(nn.Tanh())  # bounded: the clip range is (-1, 1)
    decoder += [_up(n, n, k), nn.GELU(), _up(n, n, k), nn.GELU(), SubPixelToImage(n, k)]
    return nn.Sequential(*encoder), nn.Sequential(*decoder)


def _gdn_dct_transforms(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    n, m, k = spec.channels, spec.latent_channels, spec.kernel_size
    encoder = nn.Sequential(_down(1, n, k), GDN(n), _down(n, n, k), GDN(n), _down(n, n, k), GDN(n), _down(n, m, k))
    widths = [m, *(spec.synthesis_channels or (n, n, n))]
    layers: list[nn.Module] = []
    for inputs, outputs in zip(widths, widths[1:]):
        layers += [_up(inputs, outputs, k), GDN(outputs, inverse=True)]
    decoder = nn.Sequential(*layers, SubPixelToImage(widths[-1], k))
    return BlockAnalysis(encoder, m), BlockSynthesis(decoder, m)


def _prior(spec: ModelSpec) -> LatentCodec | None:
    """The latent codec the spec's ``entropy`` names (None for ``none``, the fixed-length model)."""
    return None if spec.entropy == "none" else latent_codec_class(spec.entropy).from_spec(spec)


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def latent_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE), -(-width // STRIDE)


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The tile's size once ``pad_to_stride`` has padded it."""
    return height + -height % STRIDE, width + -width % STRIDE


def pad_to_stride(tile: np.ndarray) -> np.ndarray:
    """Reflect-pad bottom and right to a multiple of 16; numpy's reflect copes with pads wider than the tile.
    A tile of such a size already is returned as it is (no copy)."""
    height, width = tile.shape
    if (height, width) == padded_size(height, width):
        return tile
    return np.pad(tile, ((0, -height % STRIDE), (0, -width % STRIDE)), mode="reflect" if min(height, width) > 1 else "edge")
