"""The factorized latent codec (Ballé et al. 2018): every element of ``y`` under its channel's learned density.

No side information: each channel has one fixed table, so the stream is ``y`` channel by channel and the
decoder needs no network to know which table each element uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import FactorizedDensity, noisy
from harness_codecs._autoencoder.entropy_coding.range_coding import LATENT, Section, TileDecoders
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables, factorized_tables
from harness_codecs._autoencoder.latent_codecs.base import LatentCodec, register
from harness_codecs._autoencoder.latent_codecs.side_latent import channel_tables

if TYPE_CHECKING:
    from harness_codecs._autoencoder.model.autoencoder import ModelSpec


@register
class FactorizedLatentCodec(LatentCodec):
    """The latent coded element by element under one learned density per channel."""

    entropy = "factorized"
    description = "integer latent range-coded under a learned per-channel density (Ballé et al. 2018 factorized prior)"

    def __init__(self, latent_channels: int):
        super().__init__()
        self.density = FactorizedDensity(latent_channels)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> FactorizedLatentCodec:
        return cls(spec.latent_channels)

    def coded(self, latent: torch.Tensor, rounded: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        coded = torch.round(latent) if rounded else noisy(latent, generator)
        return coded, [self.density.likelihood(coded)]

    def tables(self, scales: np.ndarray | None = None) -> EntropyTables:
        return EntropyTables(factorized_tables(self.density))

    def layout(self, tables: EntropyTables, device: torch.device) -> FactorizedLayout:
        return FactorizedLayout()


class FactorizedLayout:
    """``y`` channel by channel, each under its channel's table: nothing to prepare."""

    def sections(self, latent: np.ndarray, side: np.ndarray | None) -> tuple[list[Section], np.ndarray]:
        values = np.round(latent).astype(np.int64)
        return [Section(LATENT, values, channel_tables(latent.shape))], values.astype(np.float32)

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        return decoders.read(LATENT, channel_tables((len(decoders), channels, *latent_shape))).astype(np.float32)
