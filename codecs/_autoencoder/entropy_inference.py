"""Running an entropy-coded autoencoder: networks on the device, range coding on the CPU.

The work splits into four steps that the throughput benchmark times apart:
``analyse`` (encoder network, and hyper-encoder, on the device), ``write``
(entropy coding on the CPU), ``read`` (entropy decoding on the CPU) and
``synthesize`` (decoder network on the device).

The hyper-decoder, whose output decides which probability table codes each
element, runs on the CPU in float64 on both sides, from the integer side
latent that both sides hold exactly; its float64 output is far from any
table boundary except in the rarest cases, so the decoder picks the same
tables as the encoder whatever device either ran its networks on. It is a
small network at 1/64 of the tile's resolution, so this costs little.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_models import estimated_bits, prior_forward
from harness_codecs._autoencoder.entropy_stream import (
    SymbolCoder,
    new_decoder,
    new_encoder,
    pack_stream,
    unpack_stream,
)
from harness_codecs._autoencoder.entropy_tables import EntropyTables, scale_indexes
from harness_codecs._autoencoder.inference import autocast, group_by_shape, model_inputs
from harness_codecs._autoencoder.model import Autoencoder, latent_size

if TYPE_CHECKING:
    from constriction.stream.queue import RangeDecoder


@dataclass(frozen=True)
class Analysis:
    """One tile's latent ``y`` (float, C x h x w) and, for the hyperprior, its rounded side latent ``z``."""

    latent: np.ndarray
    side: np.ndarray | None


def side_size(height: int, width: int) -> tuple[int, int]:
    """The hyper-encoder halves the latent's size twice, rounding up."""
    return -(-height // 4), -(-width // 4)


class EntropyLatentCoder:
    """A model and its tables, ready to turn tiles into range-coded bytes and back."""

    def __init__(self, model: Autoencoder, tables: EntropyTables, model_id: bytes, device: torch.device,
                 precision: str = "fp32"):
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        self.hyperprior = model.spec.entropy == "hyperprior"
        self.tables = tables
        self.model_id = model_id
        self.device = device
        self.precision = precision
        self.latent_coder = SymbolCoder(tables.latent)
        self.side_coder = SymbolCoder(tables.side) if self.hyperprior else None
        self.exact_hyper_decoder = (copy.deepcopy(model.prior.hyper_decoder).double().cpu().eval()
                                    if self.hyperprior else None)

    def analyse(self, tiles: list[np.ndarray]) -> list[Analysis]:
        analyses: list[Analysis | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            with torch.inference_mode(), autocast(self.device, self.precision):
                latent = self.model.encode(model_inputs([tiles[index] for index in indexes], self.device))
                side = torch.round(self.model.prior.hyper_encoder(latent).float()) if self.hyperprior else None
            latent = latent.float().cpu().numpy()
            side = side.to(torch.int64).cpu().numpy() if side is not None else None
            for position, index in enumerate(indexes):
                analyses[index] = Analysis(latent[position], side[position] if side is not None else None)
        return analyses

    def write(self, analysis: Analysis) -> bytes:
        encoder = new_encoder()
        if not self.hyperprior:
            symbols = np.round(analysis.latent).astype(np.int64)
            for channel, values in enumerate(symbols):
                self.latent_coder.encode(encoder, values.ravel(), channel)
            return pack_stream(self.model_id, encoder.get_compressed())
        for channel, values in enumerate(analysis.side):
            self.side_coder.encode(encoder, values.ravel(), channel)
        means, tables = self._conditionals(analysis.side, analysis.latent.shape[1:])
        symbols = np.round(analysis.latent - means).astype(np.int64)
        for table in np.unique(tables):
            self.latent_coder.encode(encoder, symbols[tables == table], int(table))
        return pack_stream(self.model_id, encoder.get_compressed())

    def read(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        """The dequantized latent (float32, C x h x w) that ``data`` holds for a tile of ``shape``.

        The stream does not record the tile shape (the harness passes it). A
        stream decoded for a smaller latent is refused because data is left
        over; for a larger one, where the range decoder meets data its model
        cannot have written, which it usually but not always does.
        """
        decoder = new_decoder(unpack_stream(data, self.model_id))
        try:
            latent = self._decode_symbols(decoder, latent_size(*shape))
        except AssertionError as exc:  # constriction's report of data its model cannot have written
            raise ValueError(f"entropy-coded autoencoder stream does not decode as a {shape[0]}x{shape[1]} tile "
                             f"({exc}); decode it with the tile shape it was encoded for") from exc
        if not decoder.maybe_exhausted():
            raise ValueError(f"entropy-coded autoencoder stream holds more than a {shape[0]}x{shape[1]} tile needs; "
                             "decode it with the tile shape it was encoded for")
        return latent

    def _decode_symbols(self, decoder: RangeDecoder, latent_shape: tuple[int, int]) -> np.ndarray:
        channels, (height, width) = self.model.spec.latent_channels, latent_shape
        if not self.hyperprior:
            symbols = np.stack([self.latent_coder.decode(decoder, height * width, channel)
                                for channel in range(channels)])
            return symbols.reshape(channels, height, width).astype(np.float32)
        side_channels, side_shape = len(self.tables.side), side_size(height, width)
        side = np.stack([self.side_coder.decode(decoder, side_shape[0] * side_shape[1], channel)
                         for channel in range(side_channels)]).reshape(side_channels, *side_shape)
        means, tables = self._conditionals(side, (height, width))
        symbols = np.empty(tables.shape, dtype=np.int64)
        for table in np.unique(tables):
            selected = tables == table
            symbols[selected] = self.latent_coder.decode(decoder, int(selected.sum()), int(table))
        return (symbols + means).astype(np.float32)

    def _conditionals(self, side: np.ndarray, latent_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Means and table indexes of every latent element, from the integer side latent, in float64 on the CPU."""
        with torch.inference_mode():
            means, scales = self.model.prior.parameters_of(torch.from_numpy(side[None].astype(np.float64)),
                                                           latent_shape, self.exact_hyper_decoder)
        return means[0].numpy(), scale_indexes(scales[0].numpy(), self.tables.scales)

    def synthesize(self, latents: list[np.ndarray], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        tiles: list[np.ndarray | None] = [None] * len(latents)
        for (height, width), indexes in group_by_shape(shapes).items():
            batch = torch.from_numpy(np.stack([latents[index] for index in indexes])).to(self.device)
            with torch.inference_mode(), autocast(self.device, self.precision):
                decoded = self.model.decode(batch.contiguous(memory_format=torch.channels_last))
            pixels = decoded[:, 0, :height, :width].float().clamp(0.0, 1.0).cpu().numpy()
            for position, index in enumerate(indexes):
                tiles[index] = pixels[position]
        return tiles

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        return [self.write(analysis) for analysis in self.analyse(tiles)]

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        return self.synthesize([self.read(data, tuple(shape)) for data, shape in zip(streams, shapes)],
                               [tuple(shape) for shape in shapes])

    def estimated_bpp(self, tiles: list[np.ndarray]) -> list[float]:
        """The prior's own estimate of each tile's rate, ``-sum(log2 p) / pixels``, with rounding as coded."""
        estimates: list[float | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            with torch.inference_mode():
                latent = self.model.encode(model_inputs([tiles[index] for index in indexes], self.device)).float()
                _, likelihoods = prior_forward(self.model.prior, latent, rounded=True)
                bits = estimated_bits(likelihoods).cpu().numpy()
            for position, index in enumerate(indexes):
                estimates[index] = float(bits[position]) / tiles[index].size
        return estimates
