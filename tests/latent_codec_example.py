"""A whole entropy model in one file, for the test that a new one needs nothing else (tests/test_latent_codecs.py).

Each channel of the latent under a zero-mean Gaussian with a learned scale: simpler than the factorized density,
and not built in. Importing this module registers it as ``unit_gaussian``; ``unregister`` takes it out again.
"""

from __future__ import annotations

import torch
from harness_codecs._autoencoder.entropy_coding.densities import SCALE_FLOOR, gaussian_likelihood, noisy
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables, gaussian_tables
from harness_codecs._autoencoder.latent_codecs import LATENT_CODECS, LatentCodec, register
from harness_codecs._autoencoder.latent_codecs.factorized import FactorizedLayout
from torch import nn

@register
class UnitGaussianLatentCodec(LatentCodec):
    """Every element of channel ``c`` under N(0, scale_c): one table per channel, as the factorized codec has."""

    entropy = "unit_gaussian"
    description = "integer latent range-coded under one zero-mean Gaussian per channel (a test's entropy model)"

    def __init__(self, latent_channels: int):
        super().__init__()
        self.log_scales = nn.Parameter(torch.full((latent_channels,), 2.0))

    @classmethod
    def from_spec(cls, spec) -> UnitGaussianLatentCodec:
        return cls(spec.latent_channels)

    def scales(self) -> torch.Tensor:
        return SCALE_FLOOR + torch.exp(self.log_scales)

    def coded(self, latent, rounded, generator=None):
        coded = torch.round(latent) if rounded else noisy(latent, generator)
        scales = self.scales()[None, :, None, None]
        return coded, [gaussian_likelihood(coded, torch.zeros_like(coded), scales)]

    def tables(self, scales=None) -> EntropyTables:
        return EntropyTables(gaussian_tables(self.scales().detach().double().numpy()))

    def layout(self, tables: EntropyTables, device: torch.device) -> FactorizedLayout:
        return FactorizedLayout()

def unregister() -> None:
    """Leave the registry as it was before this module was imported."""
    LATENT_CODECS.pop(UnitGaussianLatentCodec.entropy, None)
