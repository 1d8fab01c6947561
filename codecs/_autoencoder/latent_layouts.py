"""How each entropy model lays its latent out in the range-coded stream, and reads it back.

A layout writes the integer side latent ``z`` (where the model has one) and
the latent ``y`` into one range encoder, and reads them back from the
decoder in the same order; ``entropy_stream`` describes the order in bytes.
Every mean and table is computed from values both sides hold exactly (the
integer ``z``, the decoded anchors) by fixed-point copies of the prior's
networks (``fixed_point``), whose integer arithmetic every device carries out
exactly, so encoder and decoder pick the same tables and means whatever
device either runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from harness_codecs._autoencoder.checkerboard import CheckerboardPrior, anchor_mask
from harness_codecs._autoencoder.entropy_models import FactorizedPrior, HyperPrior
from harness_codecs._autoencoder.entropy_stream import SymbolCoder
from harness_codecs._autoencoder.entropy_tables import EntropyTables
from harness_codecs._autoencoder.fixed_point import FixedPointCheckerboard, FixedPointHyperPrior
from torch import nn

if TYPE_CHECKING:
    from constriction.stream.queue import RangeDecoder, RangeEncoder


def side_size(height: int, width: int) -> tuple[int, int]:
    """The hyper-encoder halves the latent's size twice, rounding up."""
    return -(-height // 4), -(-width // 4)


class FactorizedLayout:
    """``y`` channel by channel, each under its channel's table."""

    def __init__(self, prior: FactorizedPrior, tables: EntropyTables, device: torch.device):
        self.latent_coder = SymbolCoder(tables.latent)

    def write(self, encoder: RangeEncoder, latent: np.ndarray, side: np.ndarray | None) -> None:
        for channel, values in enumerate(np.round(latent).astype(np.int64)):
            self.latent_coder.encode(encoder, values.ravel(), channel)

    def read(self, decoder: RangeDecoder, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        count = latent_shape[0] * latent_shape[1]
        symbols = np.stack([self.latent_coder.decode(decoder, count, channel) for channel in range(channels)])
        return symbols.reshape(channels, *latent_shape).astype(np.float32)


class _SideLayout:
    """What the hyperprior and checkerboard layouts share: ``z`` first, channel by channel, then ``y``
    grouped by the Gaussian table of each element."""

    def __init__(self, tables: EntropyTables):
        self.latent_coder = SymbolCoder(tables.latent)
        self.side_coder = SymbolCoder(tables.side)
        self.side_channels = len(tables.side)

    def write_side(self, encoder: RangeEncoder, side: np.ndarray) -> None:
        for channel, values in enumerate(side):
            self.side_coder.encode(encoder, values.ravel(), channel)

    def read_side(self, decoder: RangeDecoder, latent_shape: tuple[int, int]) -> np.ndarray:
        shape = side_size(*latent_shape)
        side = [self.side_coder.decode(decoder, shape[0] * shape[1], channel) for channel in range(self.side_channels)]
        return np.stack(side).reshape(self.side_channels, *shape)

    def write_grouped(self, encoder: RangeEncoder, symbols: np.ndarray, tables: np.ndarray) -> None:
        """The selected elements' symbols, grouped by table in ascending order, raster order within a group."""
        for table in np.unique(tables):
            self.latent_coder.encode(encoder, symbols[tables == table], int(table))

    def read_grouped(self, decoder: RangeDecoder, tables: np.ndarray) -> np.ndarray:
        symbols = np.empty(tables.shape, dtype=np.int64)
        for table in np.unique(tables):
            selected = tables == table
            symbols[selected] = self.latent_coder.decode(decoder, int(selected.sum()), int(table))
        return symbols


class HyperpriorLayout(_SideLayout):
    """``z``, then ``y`` minus its predicted mean, grouped by scale table."""

    def __init__(self, prior: HyperPrior, tables: EntropyTables, device: torch.device):
        super().__init__(tables)
        self.fixed = FixedPointHyperPrior(prior, tables.scales, device)

    def write(self, encoder: RangeEncoder, latent: np.ndarray, side: np.ndarray) -> None:
        self.write_side(encoder, side)
        means, tables = self.fixed.conditionals(side, latent.shape[1:])
        self.write_grouped(encoder, np.round(latent - means).astype(np.int64), tables)

    def read(self, decoder: RangeDecoder, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        means, tables = self.fixed.conditionals(self.read_side(decoder, latent_shape), latent_shape)
        return (self.read_grouped(decoder, tables) + means).astype(np.float32)


class CheckerboardLayout(_SideLayout):
    """``z``; then the anchors of ``y`` (hyperprior only), grouped by table; then the other positions,
    whose Gaussians also see the decoded anchors, grouped by table."""

    def __init__(self, prior: CheckerboardPrior, tables: EntropyTables, device: torch.device):
        super().__init__(tables)
        self.fixed = FixedPointCheckerboard(prior, tables.scales, device)

    def write(self, encoder: RangeEncoder, latent: np.ndarray, side: np.ndarray) -> None:
        self.write_side(encoder, side)
        hyper = self.fixed.hyper(side, latent.shape[1:])
        anchors = anchor_mask(*latent.shape[1:])[0, 0].numpy()
        means, tables = self.fixed.conditionals(hyper, None, anchors)
        symbols = np.round(latent[:, anchors] - means).astype(np.int64)
        self.write_grouped(encoder, symbols, tables)
        decoded = np.zeros(latent.shape)
        decoded[:, anchors] = symbols + means
        means, tables = self.fixed.conditionals(hyper, decoded, ~anchors)
        self.write_grouped(encoder, np.round(latent[:, ~anchors] - means).astype(np.int64), tables)

    def read(self, decoder: RangeDecoder, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        hyper = self.fixed.hyper(self.read_side(decoder, latent_shape), latent_shape)
        anchors = anchor_mask(*latent_shape)[0, 0].numpy()
        latent = np.zeros((channels, *latent_shape))
        means, tables = self.fixed.conditionals(hyper, None, anchors)
        latent[:, anchors] = self.read_grouped(decoder, tables) + means
        means, tables = self.fixed.conditionals(hyper, latent, ~anchors)
        latent[:, ~anchors] = self.read_grouped(decoder, tables) + means
        return latent.astype(np.float32)


def layout_for(prior: nn.Module, tables: EntropyTables,
               device: torch.device) -> FactorizedLayout | HyperpriorLayout | CheckerboardLayout:
    """The layout of ``prior``'s streams, its fixed-point networks on ``device``."""
    layouts = {FactorizedPrior: FactorizedLayout, HyperPrior: HyperpriorLayout, CheckerboardPrior: CheckerboardLayout}
    return layouts[type(prior)](prior, tables, device)
