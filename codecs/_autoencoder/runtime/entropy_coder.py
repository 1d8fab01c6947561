"""Running an entropy-coded autoencoder: networks on the device, range coding on the CPU.

The work splits into four steps that the throughput benchmark times apart:
``analyse`` (encoder network, and hyper-encoder, on the device), ``write``
(the networks that pick each element's table, then range coding on the CPU),
``read`` (range decoding on the CPU, between those networks) and
``synthesize`` (decoder network on the device).

The networks that decide each element's mean and probability table (the
hyper-decoder, and the checkerboard's context and parameter networks) run in
fixed point on the device on both sides (``fixed_point``), from values that
both sides hold exactly, so the decoder picks the same tables and means as
the encoder whatever device either ran on. They work at 1/16 or 1/64 of the
tile's resolution.

With ``overlap_sub_batches`` K > 1 a batch is cut into K sub-batches and the
two halves of each call overlap: while encoding, the analysis networks of the
next sub-batch run in a second thread while this one's tables are picked and
range-coded; while decoding, the next sub-batch is range-decoded in the second
thread while this one's decoder network runs. torch's kernels and the pipes
to the range-coding workers release the GIL, so the overlap is real (the
range coding in this process holds the GIL while it runs). Each sub-batch
is a batch of its own for the networks, so the streams are those of the
sub-batches coded one after the other.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import estimated_bits
from harness_codecs._autoencoder.entropy_coding.scale_shift import (
    SHIFT_LIMIT,
    ShiftChooser,
    ShiftedDecoders,
    family_rows,
    shifted_by_tile,
)
from harness_codecs._autoencoder.runtime.entropy_stream import (
    QUALITY_SCALE,
    StreamHeader,
    pack_stream,
    quality_code,
    unpack_stream,
)
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.entropy_coding.trellis import (
    DOUBLE_STEP_UNITS,
    SMALLEST_DOUBLE_STEP_CODE,
    TrellisLevel,
)
from harness_codecs._autoencoder.runtime.fixed_length_coder import autocast, group_by_shape, model_inputs
from harness_codecs._autoencoder.model.refinement import corrected
from harness_codecs._autoencoder.runtime.refinement_weight import chosen_code, weight_of
from harness_codecs._autoencoder.runtime.post_filter import PostFilter, PostFilters, fitted, worth_its_bytes
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, latent_size
from harness_codecs._autoencoder.runtime.pipelining import even_parts, pipelined
from harness_codecs._autoencoder.entropy_coding.range_coding import (
    LATENT,
    SCALE_CODERS,
    TRELLIS,
    PooledRangeCoding,
    RangeCoding,
    Section,
    range_coding,
)


@dataclass(frozen=True)
class Analysis:
    """One tile's latent ``y`` (float, C x h x w), where the prior has one its rounded side latent ``z``, and the
    tile itself (its post-filter is fitted to it)."""

    latent: np.ndarray
    side: np.ndarray | None
    tile: np.ndarray


class CodedGroup(NamedTuple):
    """Tiles whose latents have one shape, as their streams code them: their indexes among the analyses, the
    sections, each tile's scale shifts (tiles x bands; None: the model has none) and the dequantized latents the
    decoder reads."""

    indexes: list[int]
    sections: list[Section]
    shifts: np.ndarray | None
    dequantized: np.ndarray


@dataclass(frozen=True)
class Reading:
    """What a stream holds: the dequantized latent, the quality it was coded at (None: single-rate), the tile's
    post-filter (None: none) and its refinement weight (None: the model's refinement at the trained weight, or
    none)."""

    latent: np.ndarray
    quality: float | None
    post_filter: PostFilter | None = None
    refinement_weight: float | None = None


class EntropyLatentCoder:
    """A model and its tables, ready to turn tiles into range-coded bytes and back.

    ``quality`` (variable-rate models only) is the level the encoder codes at;
    the decoder reads each stream's own quality from its header.
    ``range_coding`` codes the tiles in this process or in worker processes,
    and ``sub_batches`` sets how many overlapped parts a batch is cut into
    (``configured``).
    """

    def __init__(self, model: Autoencoder, tables: EntropyTables, model_id: bytes, device: torch.device,
                 precision: str = "fp32", quality: float | None = None, trained_lmbda: float | None = None):
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        self.variable_rate = model.spec.rate_levels > 0
        self.layout = model.prior.layout(tables, device)
        self.model_id = model_id
        self.device = device
        self.precision = precision
        self.quality = quality
        self.tables = tables.coders()
        self.shift_chooser = ShiftChooser(tables.latent, tables.scales) if tables.scales is not None else None
        """Picks each tile's scale shifts where ``y`` is coded under Gaussian tables (``scale_shift``); None for the
        factorized prior, whose tables are its channels'."""
        self.integer_prior = tables.scales is not None
        """Whether fixed-point networks pick ``y``'s tables (not the factorized prior's): ``INTEGER_PRIOR_FLAG``."""
        self.trellis_settings = tables.trellis
        self.trellis_coding = False
        """Whether the encoder trellis-codes the qualities the checkpoint has trellis settings for (``configured``)."""
        self.trellis_shift_chooser = (ShiftChooser(self.tables[TRELLIS], tables.scales, families=2)
                                      if TRELLIS in self.tables else None)
        self.trained_lmbda = trained_lmbda
        """A single-rate model's trade-off (a variable-rate model's are in its spec): the encoder weighs a
        post-filter's bytes with it."""
        self.post_filtering = self.shift_chooser is not None and (self.variable_rate or trained_lmbda is not None)
        """Whether the encoder fits each tile's post-filter: where the stream has a tile byte to flag it, and the
        model's trade-off is known."""
        self.post_filters = PostFilters()
        self.range_coding: RangeCoding | PooledRangeCoding = range_coding(self.tables, 0)
        self.range_codings = {0: self.range_coding}
        """Every process count's range coding, shared by the copies ``configured`` makes."""
        self.sub_batches = 1
        self.overlap = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlapped-sub-batch")
        """The second thread of overlapped sub-batches (started at its first use), shared by the copies: the
        runner makes one call at a time, and each call waits for its sub-batches."""

    def configured(self, quality: float | None, processes: int = 0, sub_batches: int = 1,
                   trellis: bool = False) -> EntropyLatentCoder:
        """The same coder (sharing model, tables and layout) encoding at ``quality``, range-coding in
        ``processes`` worker processes (0: in this one), overlapping ``sub_batches`` parts of each batch
        (1: none), trellis-coding where the checkpoint has settings for the quality (``trellis``)."""
        coder = copy.copy(self)
        coder.quality = quality
        coder.sub_batches = sub_batches
        coder.trellis_coding = trellis
        if processes not in self.range_codings:
            self.range_codings[processes] = range_coding(self.tables, processes)
        coder.range_coding = self.range_codings[processes]
        return coder

    def without_scale_shift(self) -> EntropyLatentCoder:
        """The same coder writing (and reading) streams without a scale shift (nor a post-filter), as encoders
        did before it existed (formats 5 and 6): what the shift saves is measured against it."""
        coder = self.without_post_filter()
        coder.shift_chooser = None
        return coder

    def without_post_filter(self) -> EntropyLatentCoder:
        """The same coder writing streams whose tiles have no post-filter: what the filter gains is measured
        against it."""
        coder = copy.copy(self)
        coder.post_filtering = False
        return coder

    @property
    def refinement_weighting(self) -> bool:
        """Whether each tile's stream carries its refinement weight: a model with a refinement, whose streams
        have a tile byte (Gaussian tables)."""
        return self.model.refinement is not None and self.shift_chooser is not None

    def lmbda(self) -> float:
        """The trade-off ``lmbda * MSE + bpp`` the model was trained for at the coder's quality."""
        if not self.variable_rate:
            return float(self.trained_lmbda)
        return float(self.model.lmbda(torch.tensor([self.quality]))[0])

    def _qualities(self, values: list[float | None]) -> torch.Tensor | None:
        return torch.tensor(values, device=self.device) if self.variable_rate else None

    def analyse(self, tiles: list[np.ndarray]) -> list[Analysis]:
        analyses: list[Analysis | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            inputs = model_inputs([tiles[index] for index in indexes], self.device)
            with torch.inference_mode(), autocast(self.device, self.precision):
                latent = self.model.encode(inputs, self._qualities([self.quality] * len(indexes))).float()
                side = self.model.prior.side(latent)
            latent = latent.cpu().numpy()
            side = side.to(torch.int64).cpu().numpy() if side is not None else None
            for position, index in enumerate(indexes):
                analyses[index] = Analysis(latent[position], side[position] if side is not None else None,
                                           tiles[index])
        return analyses

    def sections(self, analyses: list[Analysis]) -> list[CodedGroup]:
        """What the streams hold, per group of tiles whose latents have one shape, with each tile's scale shift
        already applied to its latent's tables: the table-picking networks run once per group."""
        groups = []
        for indexes in group_by_shape([analysis.latent.shape for analysis in analyses]).values():
            latent = np.stack([analyses[index].latent for index in indexes])
            sides = [analyses[index].side for index in indexes]
            side = np.stack(sides) if sides[0] is not None else None
            level = self.trellis_level()
            sections, dequantized = self.layout.sections(latent, side, *([] if level is None else [level]))
            groups.append(CodedGroup(indexes, *self.shifted_sections(sections), dequantized))
        return groups

    def trellis_level(self) -> TrellisLevel | None:
        """The trellis settings of the coder's quality, where it trellis-codes it (None: it rounds)."""
        return self.trellis_settings.at(self.quality) if self.trellis_coding else None

    def shifted_sections(self, sections: list[Section]) -> tuple[list[Section], np.ndarray | None]:
        """``sections`` with each tile's latent tables moved by the shifts that code the tile in the fewest bits,
        and the shifts (tiles x bands)."""
        if self.shift_chooser is None:
            return sections, None
        latent = [section for section in sections if section.coder in SCALE_CODERS]
        chooser = self.trellis_shift_chooser if latent[0].coder == TRELLIS else self.shift_chooser
        rows = [family_rows(section, chooser.table_count) for section in latent]
        shifts = np.stack([
            chooser.best(np.concatenate([section.values[tile].ravel() for section in latent]),
                         np.concatenate([section_rows[tile].ravel() for section_rows in rows]))
            for tile in range(len(sections[0].values))])
        edges, table_count = self.shift_chooser.edges, len(self.tables[LATENT])
        return [Section(section.coder, section.values, shifted_by_tile(section.tables, shifts, edges, table_count))
                if section.coder in SCALE_CODERS else section for section in sections], shifts

    def write(self, analyses: list[Analysis]) -> list[bytes]:
        """One stream per tile: the ``sections``, range-coded tile by tile, and the tile's post-filter."""
        streams: list[bytes | None] = [None] * len(analyses)
        code = quality_code(self.quality) if self.variable_rate else None
        level = self.trellis_level()
        double_step_code = None if level is None else level.double_step_code
        for group in self.sections(analyses):
            weights, filters = self.tile_corrections([analyses[index].tile for index in group.indexes],
                                                     group.dequantized)
            for position, (index, words) in enumerate(zip(group.indexes, self.range_coding.encode(group.sections))):
                shifts = None if group.shifts is None else tuple(int(shift) for shift in group.shifts[position])
                streams[index] = pack_stream(self.model_id, words, code, shifts, filters[position], weights[position],
                                             double_step_code, self.integer_prior)
        return streams

    def tile_corrections(self, tiles: list[np.ndarray],
                         dequantized: np.ndarray) -> tuple[list[int | None], list[PostFilter | None]]:
        """Each tile's refinement weight code (None where the streams carry none) and post-filter: the filter is
        fitted to the decoder network's output at the chosen weight, and kept where it lowers the tile's
        rate-distortion cost (None elsewhere, and for every tile where the coder fits none)."""
        codes: list[int | None] = [None] * len(tiles)
        if not (self.post_filtering or self.refinement_weighting):
            return codes, [None] * len(tiles)
        qualities = self._qualities([self.quality] * len(tiles))
        with torch.inference_mode(), autocast(self.device, self.precision):
            decoded = self.model.synthesized(self.device_latents(dequantized), qualities)
            correction = self.model.correction(decoded, qualities) if self.refinement_weighting else None
            if correction is not None:
                codes = [chosen_code(tile, decoded[position, 0, :tile.shape[0], :tile.shape[1]],
                                     correction[position, 0, :tile.shape[0], :tile.shape[1]])
                         for position, tile in enumerate(tiles)]
                weights = torch.tensor([weight_of(code) for code in codes], device=self.device)
                decoded = corrected(decoded, correction, weights)
        decoded = decoded.float().cpu()
        return codes, self.chosen_post_filters(tiles, decoded)

    def chosen_post_filters(self, tiles: list[np.ndarray], decoded: torch.Tensor) -> list[PostFilter | None]:
        """Each tile's post-filter for the decoder network's output ``decoded`` (N x 1 x H x W, on the CPU)."""
        if not self.post_filtering:
            return [None] * len(tiles)
        lmbda = self.lmbda()
        chosen = []
        for position, tile in enumerate(tiles):
            output = decoded[position:position + 1, :, :tile.shape[0], :tile.shape[1]]
            candidate = fitted(tile, output[0, 0].numpy())
            keep = worth_its_bytes(tile, output, candidate, lmbda, self.post_filters)
            chosen.append(candidate if keep else None)
        return chosen

    def unpacked(self, stream: bytes) -> tuple[np.ndarray, StreamHeader]:
        """A stream's range-coder words and header, refused (``ValueError``) where the header claims a quality or
        a shift this model cannot have written."""
        words, header = unpack_stream(stream, self.model_id, self.variable_rate, self.shift_chooser is not None,
                                      self.refinement_weighting, TRELLIS in self.tables, self.integer_prior)
        if header.double_step_code is not None and header.double_step_code < SMALLEST_DOUBLE_STEP_CODE:
            raise ValueError(f"entropy-coded autoencoder stream claims a double step of {header.double_step_code}/"
                             f"{SMALLEST_DOUBLE_STEP_CODE}, below the format's 1")
        if header.quality is not None and header.quality > (self.model.spec.rate_levels - 1) * QUALITY_SCALE:
            raise ValueError(f"entropy-coded autoencoder stream claims quality {header.quality / QUALITY_SCALE}, "
                             f"beyond this model's {self.model.spec.rate_levels - 1}")
        beyond = [shift for shift in header.shifts if abs(shift) > SHIFT_LIMIT]
        if beyond:
            raise ValueError(f"entropy-coded autoencoder stream claims a scale shift of {beyond[0]}, beyond the "
                             f"format's +-{SHIFT_LIMIT}")
        return words, header

    def read(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[Reading]:
        """The dequantized latent (float32, C x h x w) that each stream holds for a tile of its shape.

        The stream does not record the tile shape (the harness passes it). A
        stream decoded for a smaller latent is refused because data is left
        over; for a larger one, where the range decoder meets data its model
        cannot have written, which it usually but not always does. One
        refused stream fails the batch of its shape.
        """
        readings: list[Reading | None] = [None] * len(streams)
        unpacked = [self.unpacked(stream) for stream in streams]
        steps = [header.double_step_code for _, header in unpacked]
        for (shape, step), indexes in group_by_shape(list(zip(shapes, steps))).items():
            headers = [unpacked[index] for index in indexes]
            decoders = self.range_coding.decoders([words for words, _ in headers])
            if self.shift_chooser is not None:
                decoders = ShiftedDecoders(decoders, np.array([header.shifts for _, header in headers]),
                                           self.shift_chooser.edges, len(self.tables[LATENT]))
            try:
                latent = self.layout.read(decoders, self.model.spec.latent_channels, latent_size(*shape),
                                          *(() if step is None else (step / DOUBLE_STEP_UNITS,)))
                exhausted = decoders.exhausted()
            except AssertionError as exc:  # constriction's report of data its model cannot have written
                raise ValueError(f"entropy-coded autoencoder stream does not decode as a {shape[0]}x{shape[1]} "
                                 f"tile ({exc}); decode it with the tile shape it was encoded for") from exc
            finally:
                decoders.close()
            for position, (index, done, (_, header)) in enumerate(zip(indexes, exhausted, headers)):
                if not done:
                    raise ValueError(f"entropy-coded autoencoder stream holds more than a {shape[0]}x{shape[1]} "
                                     "tile needs; decode it with the tile shape it was encoded for")
                quality = None if header.quality is None else header.quality / QUALITY_SCALE
                weight = None if header.refinement_weight is None else weight_of(header.refinement_weight)
                readings[index] = Reading(latent[position], quality, header.post_filter, weight)
        return readings

    def network_output(self, latents: np.ndarray, qualities: list[float | None],
                       weights: list[float | None] | None = None) -> torch.Tensor:
        """The decoder network's output (float32, N x 1 x H x W, on the coder's device) for dequantized latents,
        each tile's refinement correction at its weight (``weights`` None, or None each: at the trained weight),
        before the post-filter and the clip to [0, 1], at the latents' full size (a multiple of 16 pixels)."""
        refinement_weight = None if weights is None or weights[0] is None else torch.tensor(weights, device=self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            decoded = self.model.decode(self.device_latents(latents), self._qualities(qualities), refinement_weight)
        return decoded.float()

    def device_latents(self, latents: np.ndarray) -> torch.Tensor:
        """Dequantized latents as the synthesis reads them: on the coder's device, channels last."""
        return torch.from_numpy(latents).to(self.device).contiguous(memory_format=torch.channels_last)

    def synthesize(self, readings: list[Reading], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        tiles: list[np.ndarray | None] = [None] * len(readings)
        for (height, width), indexes in group_by_shape(shapes).items():
            decoded = self.network_output(np.stack([readings[index].latent for index in indexes]),
                                          [readings[index].quality for index in indexes],
                                          [readings[index].refinement_weight for index in indexes])
            with torch.inference_mode():
                filtered = self.post_filters(decoded[:, :, :height, :width].contiguous(),
                                             [readings[index].post_filter for index in indexes])
            pixels = filtered[:, 0].clamp(0.0, 1.0).cpu().numpy()
            for position, index in enumerate(indexes):
                tiles[index] = pixels[position]
        return tiles

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        return pipelined(even_parts(tiles, self.sub_batches), self.analyse, self.write, self.overlap)

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        shapes = [tuple(shape) for shape in shapes]

        def read(part: Sequence[int]) -> tuple[list[Reading], list[tuple[int, int]]]:
            part_shapes = [shapes[index] for index in part]
            return self.read([streams[index] for index in part], part_shapes), part_shapes

        def synthesize(done: tuple[list[Reading], list[tuple[int, int]]]) -> list[np.ndarray]:
            return self.synthesize(*done)

        return pipelined(even_parts(range(len(streams)), self.sub_batches), read, synthesize, self.overlap)

    def estimated_bpp(self, tiles: list[np.ndarray]) -> list[float]:
        """The prior's own estimate of each tile's rate, ``-sum(log2 p) / pixels``, with rounding as coded."""
        estimates: list[float | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            with torch.inference_mode():
                inputs = model_inputs([tiles[index] for index in indexes], self.device)
                latent = self.model.encode(inputs, self._qualities([self.quality] * len(indexes))).float()
                _, likelihoods = self.model.prior.coded(latent, rounded=True)
                bits = estimated_bits(likelihoods).cpu().numpy()
            for position, index in enumerate(indexes):
                estimates[index] = float(bits[position]) / tiles[index].size
        return estimates
