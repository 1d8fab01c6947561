"""What the latent codecs with a side latent ``z`` (the hyperpriors) share: its size, its place in the stream.

Such a stream holds ``z`` first, channel by channel under its channel's factorized table, then ``y`` grouped
by the Gaussian table of each element, which fixed-point networks pick from ``z`` (and from the decoded
anchors in the checkerboard). Each stream is one tile's, but the networks that pick the tables run once per
batch of tiles of one shape (one call on a GPU instead of one per tile); the range coding between them goes
tile by tile.
"""

from __future__ import annotations

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import FactorizedDensity
from harness_codecs._autoencoder.entropy_coding.range_coding import SIDE, Section, TileDecoders
from harness_codecs._autoencoder.entropy_coding.tables import SCALE_TABLE, EntropyTables, factorized_tables, gaussian_tables
from harness_codecs._autoencoder.latent_codecs.base import LatentCodec
from torch import nn


def side_size(height: int, width: int) -> tuple[int, int]:
    """The hyper-encoder halves the latent's size twice, rounding up."""
    return -(-height // 4), -(-width // 4)


def channel_tables(shape: tuple[int, ...]) -> np.ndarray:
    """Each element's table where every channel has its own (the factorized latent's, the side latent's): its
    channel index, for an array of ``shape`` ([batch x] channels x h x w)."""
    return np.broadcast_to(np.arange(shape[-3])[:, None, None], shape)


class SideLatentCodec(LatentCodec):
    """What the hyperpriors share: the side latent their hyper-encoder makes from ``y``, coded under a factorized
    density, and Gaussian tables for ``y`` at the tabulated scales."""

    hyper_encoder: nn.Sequential
    side_density: FactorizedDensity

    def side(self, latent: torch.Tensor) -> torch.Tensor:
        return torch.round(self.hyper_encoder(latent).float())

    def tables(self, scales: np.ndarray | None = None) -> EntropyTables:
        scales = SCALE_TABLE if scales is None else np.asarray(scales, dtype=np.float64)
        return EntropyTables(gaussian_tables(scales), factorized_tables(self.side_density), scales)


class SideLatentLayout:
    """The side latent's section, written first and read back first."""

    def __init__(self, tables: EntropyTables):
        self.side_channels = len(tables.side)

    def side_section(self, side: np.ndarray) -> Section:
        return Section(SIDE, side, channel_tables(side.shape))

    def read_side(self, decoders: TileDecoders, latent_shape: tuple[int, int]) -> np.ndarray:
        """The side latents (batch x C x h x w) of latents of ``latent_shape``."""
        return decoders.read(SIDE, channel_tables((len(decoders), self.side_channels, *side_size(*latent_shape))))
