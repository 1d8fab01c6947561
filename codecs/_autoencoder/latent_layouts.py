"""How each entropy model lays its latent out in the range-coded stream, and reads it back.

A layout writes the integer side latent ``z`` (where the model has one) and
the latent ``y`` into one range encoder, and reads them back from the
decoder in the same order; ``entropy_stream`` describes the order in bytes.
Every probability that decides a table is computed from values both sides
hold exactly (the integer ``z``, the decoded anchors) by a float64 copy of
the prior's networks on the CPU, so encoder and decoder pick the same tables
whatever device ran the transforms.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from harness_codecs._autoencoder.checkerboard import CheckerboardPrior, anchor_mask
from harness_codecs._autoencoder.entropy_models import FactorizedPrior, HyperPrior
from harness_codecs._autoencoder.entropy_stream import SymbolCoder
from harness_codecs._autoencoder.entropy_tables import EntropyTables, scale_indexes
from torch import nn

if TYPE_CHECKING:
    from constriction.stream.queue import RangeDecoder, RangeEncoder


def side_size(height: int, width: int) -> tuple[int, int]:
    """The hyper-encoder halves the latent's size twice, rounding up."""
    return -(-height // 4), -(-width // 4)


class FactorizedLayout:
    """``y`` channel by channel, each under its channel's table."""

    def __init__(self, prior: FactorizedPrior, tables: EntropyTables):
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

    def __init__(self, prior: nn.Module, tables: EntropyTables):
        self.latent_coder = SymbolCoder(tables.latent)
        self.side_coder = SymbolCoder(tables.side)
        self.scales = tables.scales
        self.side_channels = len(tables.side)
        self.exact = copy.deepcopy(prior).double().cpu().eval()

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

    def table_indexes(self, scales: torch.Tensor) -> np.ndarray:
        return scale_indexes(scales[0].numpy(), self.scales)


class HyperpriorLayout(_SideLayout):
    """``z``, then ``y`` minus its predicted mean, grouped by scale table."""

    def write(self, encoder: RangeEncoder, latent: np.ndarray, side: np.ndarray) -> None:
        self.write_side(encoder, side)
        means, tables = self._conditionals(side, latent.shape[1:])
        self.write_grouped(encoder, np.round(latent - means).astype(np.int64), tables)

    def read(self, decoder: RangeDecoder, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        means, tables = self._conditionals(self.read_side(decoder, latent_shape), latent_shape)
        return (self.read_grouped(decoder, tables) + means).astype(np.float32)

    def _conditionals(self, side: np.ndarray, latent_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            means, scales = self.exact.parameters_of(torch.from_numpy(side[None].astype(np.float64)), latent_shape)
        return means[0].numpy(), self.table_indexes(scales)


class CheckerboardLayout(_SideLayout):
    """``z``; then the anchors of ``y`` (hyperprior only), grouped by table; then the other positions,
    whose Gaussians also see the decoded anchors, grouped by table."""

    def write(self, encoder: RangeEncoder, latent: np.ndarray, side: np.ndarray) -> None:
        self.write_side(encoder, side)
        hyper = self._hyper(side, latent.shape[1:])
        anchors = np.broadcast_to(anchor_mask(*latent.shape[1:])[0].numpy(), latent.shape)
        means, scales = self._gaussian(hyper, None)
        tables = self.table_indexes(scales)
        symbols = np.round(latent - means).astype(np.int64)
        self.write_grouped(encoder, symbols[anchors], tables[anchors])
        decoded_anchors = np.where(anchors, symbols + means, 0.0)
        means, scales = self._gaussian(hyper, decoded_anchors)
        tables = self.table_indexes(scales)
        others = ~anchors
        self.write_grouped(encoder, np.round(latent - means).astype(np.int64)[others], tables[others])

    def read(self, decoder: RangeDecoder, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        hyper = self._hyper(self.read_side(decoder, latent_shape), latent_shape)
        anchors = np.broadcast_to(anchor_mask(*latent_shape)[0].numpy(), (channels, *latent_shape))
        latent = np.zeros((channels, *latent_shape))
        means, scales = self._gaussian(hyper, None)
        latent[anchors] = self.read_grouped(decoder, self.table_indexes(scales)[anchors]) + means[anchors]
        means, scales = self._gaussian(hyper, latent)
        others = ~anchors
        latent[others] = self.read_grouped(decoder, self.table_indexes(scales)[others]) + means[others]
        return latent.astype(np.float32)

    def _hyper(self, side: np.ndarray, latent_shape: tuple[int, int]) -> torch.Tensor:
        with torch.inference_mode():
            return self.exact.hyper(torch.from_numpy(side[None].astype(np.float64)), latent_shape)

    def _gaussian(self, hyper: torch.Tensor, decoded_anchors: np.ndarray | None) -> tuple[np.ndarray, torch.Tensor]:
        anchors = None if decoded_anchors is None else torch.from_numpy(decoded_anchors[None].astype(np.float64))
        with torch.inference_mode():
            means, scales = self.exact.gaussian(hyper, anchors)
        return means[0].numpy(), scales


def layout_for(prior: nn.Module, tables: EntropyTables) -> FactorizedLayout | HyperpriorLayout | CheckerboardLayout:
    layouts = {FactorizedPrior: FactorizedLayout, HyperPrior: HyperpriorLayout, CheckerboardPrior: CheckerboardLayout}
    return layouts[type(prior)](prior, tables)
