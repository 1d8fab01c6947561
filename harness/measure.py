"""Measuring: rate points built once, units of work, the codec calls, and one checked results row per tile.

A unit is one rate point on one batch of tiles. It is coded and timed (in this process, or in a worker process
through ``CodecCalls``), each stream and decoded tile checked, then scored by the metric plugins. A codec that
raises on a tile becomes an error row and the run goes on, because one bad tile must not cost the user the other
codecs' results. A unit is measured with small objects (the point, the tiles, a ``Measuring``), never the whole
config, so that the serial run, an isolated codec process and a Dask worker measure it alike.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.api import Codec, Complexity, MetricColumn, MetricInput, Tile
from harness.config import BenchmarkConfig, CodecConfig, TimingConfig
from harness.errors import CodecFailure, UserError
from harness.plugins import Registry
from harness.rate_matching import knob_value, match_rate
from harness.rate_points import RatePoint, RateTarget
from harness.reconstructions import save_reconstruction
from harness.results import (
    BATCH_SIZE, BPP, BYTES, CLIPPED_COLUMNS, CODEC, COMPLEXITY_COLUMNS, COMPRESSION_RATIO, DATASET, DECODE_MPIX_S,
    DECODE_S, DECODE_SPREAD, DEVICE, ENCODE_MPIX_S, ENCODE_S, ENCODE_SPREAD, ERROR, ESTIMATED_BPP, HEIGHT, LOSSLESS,
    OPTIONS, POINT, POL, PRECISION, RUN, SCENE, STREAM_VERSION, TARGET_BPP, THREADS, TILE_ID, VALID_PIXELS, WIDTH,
)
from harness.timing import synchronizer_for, time_call, torch_threads

REFERENCE_BITS_PER_PIXEL = 16
Row = dict[str, Any]


@dataclass(frozen=True)
class RunIdentity:
    """What every row repeats about its run: the config's name and the dataset's kind."""

    run: str
    dataset: str

    @classmethod
    def of(cls, config: BenchmarkConfig) -> RunIdentity:
        return cls(config.name, config.dataset.kind)


@dataclass(frozen=True)
class PreparedPoint:
    """A constructed rate point; a ``match_bpp`` point also knows how to build its codec at any knob value."""

    codec_name: str
    point: RatePoint
    codec: Codec
    at_knob: Callable[[float], Codec] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """The constructor keywords ``codec`` was built with (the knob left out for a ``match_bpp`` point), so that a
    worker process can build the same codec."""
    complexity: dict[str, float] = field(default_factory=dict)
    """What ``codec.complexity()`` counted, keyed by ``COMPLEXITY_COLUMNS``; empty when it counts nothing."""

    @property
    def target_bpp(self) -> float | None:
        return self.point.target_bpp


def prepare_points(
    config: BenchmarkConfig, codecs: Iterable[CodecConfig], registry: Registry, device: str
) -> list[PreparedPoint]:
    """Construct every rate point up front, so a bad option fails before hours of work, not during."""
    prepared = []
    for index, codec_config in enumerate(codecs):
        codec_class = registry.codec(codec_config.name)
        for point_index, point in enumerate(codec_config.points):
            options = with_context(codec_class, point.codec_options(), device=device, base_dir=config.base_dir)
            at_knob, constructed = None, options
            if point.target is RateTarget.MATCHED_BPP:
                # The search starts from the knob's low end, valid for every instance by the RateKnob contract.
                knob = codec_class.rate_knob
                at_knob = functools.partial(_construct_at, codec_class, options, knob.option)
                constructed = {**options, knob.option: knob_value(knob, 0.0 if knob.more_bits_when_higher else 1.0)}
            try:
                codec = codec_class(**constructed)
            except (ValueError, TypeError) as exc:
                raise UserError(f"{config.path}: codecs[{index}].points[{point_index}] "
                                f"({codec_config.name} {point.label}): {exc}") from exc
            except Exception as exc:  # the contract asks for ValueError; a plugin's other failures still get a line
                raise UserError(f"{config.path}: codecs[{index}].points[{point_index}] ({codec_config.name} "
                                f"{point.label}): the codec failed to start: {type(exc).__name__}: {exc}") from exc
            prepared.append(PreparedPoint(codec_config.name, point, codec, at_knob, options))
    return prepared


def _construct_at(codec_class: type[Codec], options: dict[str, Any], option: str, value: float) -> Codec:
    return codec_class(**options, **{option: value})


def with_context(codec_class: type[Codec], options: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Add the run's context (device, config folder) for the constructor keywords the codec declares."""
    accepted = inspect.signature(codec_class.__init__).parameters
    return {**{key: value for key, value in context.items() if key in accepted}, **options}


def complexity_of(codec: Codec) -> dict[str, float]:
    """The codec's counted complexity, or nothing: a count that fails or answers in other terms costs the run no
    row, only the column (the counts are a description of the codec, not a measurement of this run)."""
    try:
        counted = codec.complexity()
    except Exception:  # third-party code; the rows will show the codec's own error if it is really broken
        return {}
    if not isinstance(counted, Complexity):
        return {}
    return {column: float(value) for column, value in asdict(counted).items()}


@dataclass(frozen=True)
class WorkUnit:
    """One rate point on one batch of tiles: what a run measures at a time, here or on a cluster worker."""

    prepared: PreparedPoint
    tiles: list[Tile]
    chunk: int = 0
    """Which of the run's ``tile_chunks`` the tiles belong to, so that a cluster worker reads that chunk."""


def work_units(points: list[PreparedPoint], tiles: list[Tile], done: set[tuple[str, str, str]],
               batch_size: int | None, chunk: int = 0) -> list[WorkUnit]:
    """Every unit still to measure on one chunk of tiles, in the order the results are written: point by point,
    tiles in order; ``batch_size`` tiles a unit, or None for each codec's ``preferred_batch_size``."""
    units = []
    for prepared in points:
        pending = [tile for tile in tiles if (prepared.codec_name, prepared.point.label, tile.tile_id) not in done]
        # each tile of a match_bpp point gets its own knob value, so such points go one tile at a time
        size = 1 if prepared.target_bpp else batch_size or prepared.codec.preferred_batch_size
        units.extend(WorkUnit(prepared, batch, chunk) for batch in batches(pending, size))
    return units


def batches(tiles: list[Tile], size: int) -> Iterable[list[Tile]]:
    for start in range(0, len(tiles), size):
        yield tiles[start : start + size]


MeasureAll = Callable[[list[WorkUnit]], Iterator[tuple[WorkUnit, list[Row]]]]
"""What measures a run's units and hands back each unit's rows, in the units' order (``harness.run`` chooses one:
this process, or a Dask cluster)."""
Keep = Callable[[PreparedPoint, Tile, np.ndarray], None]


class ReconstructionKeeper:
    """Saves the reconstructions of the first few tiles for the visual comparison (their originals are saved once,
    by the run)."""

    def __init__(self, root: Path, tile_ids: set[str]):
        self.root = root
        self.tile_ids = tile_ids

    def __call__(self, prepared: PreparedPoint, tile: Tile, reconstruction: np.ndarray) -> None:
        if tile.tile_id in self.tile_ids:
            save_reconstruction(self.root, tile, prepared.codec_name, prepared.point.label, reconstruction)


@dataclass(frozen=True)
class CodedBatch:
    streams: list[bytes]
    reconstructions: list[np.ndarray]
    encode_s: float
    decode_s: float
    estimates: list[float | None]
    encode_spread: float = 0.0
    decode_spread: float = 0.0


class CodecCalls:
    """Where codec work runs: in this process (the default), or in a worker (``harness.isolation``)."""

    def code(self, prepared: PreparedPoint, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
        return code_arrays(prepared.codec, arrays, timing)

    def bpp(self, prepared: PreparedPoint, value: float, array: np.ndarray) -> float:
        return bpp_of(prepared.at_knob(value), array)


IN_PROCESS = CodecCalls()


def code_arrays(codec: Codec, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
    """Encode and decode a batch, each timed (warm-up, median of repeats), and the codec's rate estimates."""
    synchronize = synchronizer_for(codec.device)
    shapes = [array.shape for array in arrays]
    encoded = time_call(lambda: codec.encode_batch(arrays), timing.warmup, timing.repeats, synchronize)
    streams = [check_stream(stream) for stream in encoded.result]
    if len(streams) != len(arrays):
        raise ValueError(f"encode_batch returned {len(streams)} streams for {len(arrays)} tiles")
    decoded = time_call(lambda: codec.decode_batch(streams, shapes), timing.warmup, timing.repeats, synchronize)
    reconstructions = [check_reconstruction(array, shape) for array, shape in zip(decoded.result, shapes)]
    estimates = codec.estimated_bpp(arrays)
    if estimates is None:
        estimates = [None] * len(arrays)
    elif len(estimates) != len(arrays):
        raise ValueError(f"estimated_bpp returned {len(estimates)} values for {len(arrays)} tiles")
    return CodedBatch(streams, reconstructions, encoded.seconds, decoded.seconds, [*map(_optional_float, estimates)],
                      encoded.spread, decoded.spread)


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def bpp_of(codec: Codec, array: np.ndarray) -> float:
    """The rate of one untimed encode: what the ``match_bpp`` search probes."""
    (stream,) = codec.encode_batch([array])
    return 8 * len(check_stream(stream)) / array.size


@dataclass(frozen=True)
class Measuring:
    """What measuring a unit takes besides the unit, the same for all units of a run: whose rows they are, how the
    codec calls are timed and where they run, the metrics that score a tile, and which reconstructions to keep."""

    identity: RunIdentity
    timing: TimingConfig
    registry: Registry
    calls: CodecCalls = IN_PROCESS
    keep: Keep | None = None


def measure_unit(unit: WorkUnit, measuring: Measuring) -> list[Row]:
    measure = measure_matched if unit.prepared.target_bpp else measure_batch
    return measure(unit.prepared, unit.tiles, measuring)


def measure_batch(prepared: PreparedPoint, tiles: list[Tile], measuring: Measuring) -> list[Row]:
    """Encode, decode and score tiles as one batch; a failing batch is retried tile by tile.

    Timing is per batch and shared among its tiles in proportion to their
    pixels, so MPix/s is the batch's throughput. Retrying a failed batch one
    tile at a time pins the error row on the tile that caused it.
    """
    try:
        coded = measuring.calls.code(prepared, [tile.data for tile in tiles], measuring.timing)
    except Exception as exc:  # the codec is third-party code: record it and carry on
        if len(tiles) > 1:
            return [row for tile in tiles for row in measure_batch(prepared, [tile], measuring)]
        return [error_row(prepared, tiles[0], measuring.identity, exc)]
    total_pixels = sum(tile.data.size for tile in tiles)
    rows = []
    for tile, stream, reconstruction, estimate in zip(tiles, coded.streams, coded.reconstructions, coded.estimates):
        share = tile.data.size / total_pixels
        encode_s, decode_s = coded.encode_s * share, coded.decode_s * share
        megapixels = tile.data.size / 1e6
        row = identity_columns(prepared, tile, measuring.identity, batch_size=len(tiles))
        row.update(rate_columns(len(stream), tile.shape))
        row[ESTIMATED_BPP] = "" if estimate is None else estimate
        row.update(score(measuring.registry,
                         MetricInput(tile.data, reconstruction, tile.mask, tile.db_range, tile.original_db,
                                     tile.labels, tile.pol)))
        row.update({ENCODE_S: encode_s, DECODE_S: decode_s,
                    ENCODE_MPIX_S: megapixels / encode_s, DECODE_MPIX_S: megapixels / decode_s,
                    ENCODE_SPREAD: coded.encode_spread, DECODE_SPREAD: coded.decode_spread})
        rows.append(row)
        if measuring.keep:
            measuring.keep(prepared, tile, reconstruction)
    return rows


def measure_matched(prepared: PreparedPoint, tiles: list[Tile], measuring: Measuring) -> list[Row]:
    """A ``match_bpp`` point on one tile: search the knob with untimed encodes, then measure the value found.

    The row's ``options`` records the knob value the tile got; its ``point`` stays the target, the key that
    resume and the report group by.
    """
    (tile,) = tiles
    knob = prepared.codec.rate_knob
    try:
        matched = match_rate(lambda value: measuring.calls.bpp(prepared, value, tile.data), knob, prepared.target_bpp)
        tuned = replace(prepared, codec=prepared.at_knob(matched.value),
                        options={**prepared.options, knob.option: matched.value})
    except Exception as exc:  # the codec is third-party code: record it and carry on
        return [error_row(prepared, tile, measuring.identity, exc)]
    rows = measure_batch(tuned, [tile], measuring)
    for row in rows:
        row[OPTIONS] = json.dumps({**prepared.point.as_written, knob.option: matched.value}, sort_keys=True)
    return rows


def error_row(prepared: PreparedPoint, tile: Tile, identity: RunIdentity, exc: Exception) -> Row:
    row = identity_columns(prepared, tile, identity, batch_size=1)
    message = str(exc) if isinstance(exc, CodecFailure) else f"{type(exc).__name__}: {exc}"
    row[ERROR] = message.replace("\n", " ")
    return row


def identity_columns(prepared: PreparedPoint, tile: Tile, identity: RunIdentity, batch_size: int) -> Row:
    height, width = tile.shape
    return {
        RUN: identity.run, DATASET: identity.dataset, SCENE: tile.scene, TILE_ID: tile.tile_id,
        POL: tile.pol, HEIGHT: height, WIDTH: width, VALID_PIXELS: tile.valid_pixels,
        **dict(zip(CLIPPED_COLUMNS, tile.clipped_fractions)),
        CODEC: prepared.codec_name, POINT: prepared.point.label,
        OPTIONS: json.dumps(prepared.point.as_written, sort_keys=True), LOSSLESS: prepared.codec.lossless,
        TARGET_BPP: "" if prepared.target_bpp is None else prepared.target_bpp,
        STREAM_VERSION: "" if prepared.codec.stream_version is None else prepared.codec.stream_version,
        **{column: prepared.complexity.get(column, "") for column in COMPLEXITY_COLUMNS},
        DEVICE: prepared.codec.device, PRECISION: prepared.codec.precision,
        THREADS: "" if prepared.codec.threads is None else prepared.codec.threads, BATCH_SIZE: batch_size,
        ERROR: "",
    }


def rate_columns(byte_count: int, shape: tuple[int, int]) -> dict[str, float]:
    """The rate from the real byte count; compression ratio against 16-bit samples."""
    bpp = 8 * byte_count / (shape[0] * shape[1])
    return {BYTES: byte_count, BPP: bpp,
            COMPRESSION_RATIO: REFERENCE_BITS_PER_PIXEL / bpp if bpp else math.inf}


def check_stream(stream: Any) -> bytes:
    if not isinstance(stream, (bytes, bytearray)):
        raise TypeError(f"encode returned {type(stream).__name__}, not bytes")
    return bytes(stream)


RECONSTRUCTION_BOUNDS = (-1.0, 2.0)
"""Decoded values outside these are no reconstruction of a [0, 1] tile. Inside them a lossy codec may
overshoot [0, 1] (an error-bounded one by up to its bound) and the metrics read such values as the
nearest end of the range."""


def check_reconstruction(decoded: Any, shape: tuple[int, int]) -> np.ndarray:
    """The decoded tile as float32, or an error: scoring NaN or values of 1e6 would give numbers, not a verdict."""
    array = np.asarray(decoded)
    if array.shape != tuple(shape):
        raise ValueError(f"decode returned shape {array.shape}, expected {tuple(shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"decode returned dtype {array.dtype}, expected float in [0, 1]")
    non_finite = np.count_nonzero(~np.isfinite(array))
    if non_finite:
        raise ValueError(f"decode returned {non_finite} non-finite values (NaN or inf); expected floats in [0, 1]")
    low, high = RECONSTRUCTION_BOUNDS
    if array.min(initial=0.0) < low:
        raise ValueError(f"decode returned values down to {array.min():g}; expected floats in [0, 1]")
    if array.max(initial=0.0) > high:
        raise ValueError(f"decode returned values up to {array.max():g}; expected floats in [0, 1]")
    return array.astype(np.float32, copy=False)


METRIC_THREADS = 1
"""torch's thread count while scoring. Fixed, because float32 reductions (SSIM, MS-SSIM) round differently with
another count, and a run on single-threaded Dask workers must score exactly as the serial run does; one thread
also costs nothing here (a tile's metrics take 62 ms with one thread, 58 ms with two) and cannot be
oversubscribed on a loaded machine."""


def score(registry: Registry, pair: MetricInput) -> dict[str, float]:
    values: dict[str, float] = {}
    with torch_threads(METRIC_THREADS):
        for metric in registry.metric_functions():
            values.update(metric(pair))
    return values


def checked_metric_columns(registry: Registry, tile: Tile) -> tuple[MetricColumn, ...]:
    """The metrics' declared columns, after checking on one tile (scored against itself) that each metric
    returns exactly the columns it declares: a mismatch found after hours of coding would cost the run."""
    pair = MetricInput(tile.data, tile.data, tile.mask, tile.db_range, tile.original_db, tile.labels, tile.pol)
    with torch_threads(METRIC_THREADS):
        for metric in registry.metric_functions():
            returned, declared = set(metric(pair)), {column.name for column in metric.columns}
            if returned != declared:
                raise UserError(f"metric {metric.name!r} ({registry.metrics[metric.name].origin}) returned the "
                                f"columns {sorted(returned)} but declares {sorted(declared)}; declare every column "
                                "it returns in its @harness.metric(...)")
    return registry.metric_columns()
