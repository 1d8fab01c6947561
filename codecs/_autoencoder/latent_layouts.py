"""How each entropy model lays its latent out in the range-coded stream, and reads it back.

A layout gives the *sections* of each tile's stream, its integer side latent
``z`` (where the model has one) and latent ``y``, for a batch of tiles of one
shape at a time; ``range_coding`` codes them, and the layout reads them back
from the tiles' decoders in the same order; ``entropy_stream`` describes the
order in bytes.
Every mean and table is computed from values both sides hold exactly (the
integer ``z``, the decoded anchors) by fixed-point copies of the prior's
networks (``fixed_point``), whose integer arithmetic every device carries out
exactly, so encoder and decoder pick the same tables and means whatever
device either runs on.
"""

from __future__ import annotations

import numpy as np
import torch
from harness_codecs._autoencoder.checkerboard import CheckerboardPrior, anchor_mask
from harness_codecs._autoencoder.entropy_models import FactorizedPrior, HyperPrior
from harness_codecs._autoencoder.entropy_tables import EntropyTables
from harness_codecs._autoencoder.fixed_point import FixedPointCheckerboard, FixedPointHyperPrior
from harness_codecs._autoencoder.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.range_coding import LATENT, SIDE, Section, TileDecoders
from torch import nn


def side_size(height: int, width: int) -> tuple[int, int]:
    """The hyper-encoder halves the latent's size twice, rounding up."""
    return -(-height // 4), -(-width // 4)


def channel_tables(shape: tuple[int, ...]) -> np.ndarray:
    """Each element's table where every channel has its own (the factorized prior's, the side latent's): its
    channel index, for an array of ``shape`` ([batch x] channels x h x w)."""
    return np.broadcast_to(np.arange(shape[-3])[:, None, None], shape)


def coder_tables(tables: EntropyTables) -> dict[str, ProbabilityTables]:
    """The probability tables of each coder a layout's sections name."""
    return {LATENT: tables.latent} if tables.side is None else {LATENT: tables.latent, SIDE: tables.side}


class FactorizedLayout:
    """``y`` channel by channel, each under its channel's table."""

    def __init__(self, prior: FactorizedPrior, tables: EntropyTables, device: torch.device):
        """Nothing to prepare: each channel's table is fixed."""

    def sections(self, latent: np.ndarray, side: np.ndarray | None) -> list[Section]:
        """What the streams of a batch of latents (batch x C x h x w, all of one shape) hold, in order."""
        return [Section(LATENT, np.round(latent).astype(np.int64), channel_tables(latent.shape))]

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        return decoders.read(LATENT, channel_tables((len(decoders), channels, *latent_shape))).astype(np.float32)


class _SideLayout:
    """What the hyperprior and checkerboard layouts share: ``z`` first, channel by channel, then ``y``
    grouped by the Gaussian table of each element.

    Each stream is one tile's, but the networks that pick the tables run once per batch of tiles of one shape
    (one call on a GPU instead of one per tile); the range coding between them goes tile by tile."""

    def __init__(self, tables: EntropyTables):
        self.side_channels = len(tables.side)

    def side_section(self, side: np.ndarray) -> Section:
        return Section(SIDE, side, channel_tables(side.shape))

    def read_side(self, decoders: TileDecoders, latent_shape: tuple[int, int]) -> np.ndarray:
        """The side latents (batch x C x h x w) of latents of ``latent_shape``."""
        return decoders.read(SIDE, channel_tables((len(decoders), self.side_channels, *side_size(*latent_shape))))


class HyperpriorLayout(_SideLayout):
    """``z``, then ``y`` minus its predicted mean, grouped by scale table."""

    def __init__(self, prior: HyperPrior, tables: EntropyTables, device: torch.device):
        super().__init__(tables)
        self.fixed = FixedPointHyperPrior(prior, tables.scales, device)

    def sections(self, latent: np.ndarray, side: np.ndarray) -> list[Section]:
        means, tables = self.fixed.conditionals(side, latent.shape[2:])
        return [self.side_section(side), Section(LATENT, np.round(latent - means).astype(np.int64), tables)]

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        means, tables = self.fixed.conditionals(self.read_side(decoders, latent_shape), latent_shape)
        return (decoders.read(LATENT, tables) + means).astype(np.float32)


class CheckerboardLayout(_SideLayout):
    """``z``; then the anchors of ``y`` (hyperprior only), grouped by table; then the other positions,
    whose Gaussians also see the decoded anchors, grouped by table."""

    def __init__(self, prior: CheckerboardPrior, tables: EntropyTables, device: torch.device):
        super().__init__(tables)
        self.fixed = FixedPointCheckerboard(prior, tables.scales, device)

    def sections(self, latent: np.ndarray, side: np.ndarray) -> list[Section]:
        hyper = self.fixed.hyper(side, latent.shape[2:])
        anchors = anchor_mask(*latent.shape[2:])[0, 0].numpy()
        means, tables = self.fixed.conditionals(hyper, None, anchors)
        anchor_values = np.round(latent[:, :, anchors] - means).astype(np.int64)
        decoded = np.zeros(latent.shape)
        decoded[:, :, anchors] = anchor_values + means
        others_means, others_tables = self.fixed.conditionals(hyper, decoded, ~anchors)
        others = np.round(latent[:, :, ~anchors] - others_means).astype(np.int64)
        return [self.side_section(side), Section(LATENT, anchor_values, tables),
                Section(LATENT, others, others_tables)]

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        hyper = self.fixed.hyper(self.read_side(decoders, latent_shape), latent_shape)
        anchors = anchor_mask(*latent_shape)[0, 0].numpy()
        latent = np.zeros((len(decoders), channels, *latent_shape))
        means, tables = self.fixed.conditionals(hyper, None, anchors)
        latent[:, :, anchors] = decoders.read(LATENT, tables) + means
        means, tables = self.fixed.conditionals(hyper, latent, ~anchors)
        latent[:, :, ~anchors] = decoders.read(LATENT, tables) + means
        return latent.astype(np.float32)


def layout_for(prior: nn.Module, tables: EntropyTables,
               device: torch.device) -> FactorizedLayout | HyperpriorLayout | CheckerboardLayout:
    """The layout of ``prior``'s streams, its fixed-point networks on ``device``."""
    layouts = {FactorizedPrior: FactorizedLayout, HyperPrior: HyperpriorLayout, CheckerboardPrior: CheckerboardLayout}
    return layouts[type(prior)](prior, tables, device)
