"""The benchmark loop: codec x rate point x tile, timed, one results row each.

Rows are appended to ``results.csv`` and flushed the moment they exist, so an
interrupted run loses nothing and ``--resume`` continues where it stopped. A
codec that raises on a tile becomes an error row; the run goes on, because one
bad tile must not cost the user the other codecs' results.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from harness.api import Codec, Complexity, DatasetSettings, MetricColumn, MetricInput, Tile
from harness.config import (BenchmarkConfig, CodecConfig, CodecPoint, DatasetConfig, TimingConfig,
                            resolved_config_yaml)
from harness.environment import collect_environment, load_average, timing_warnings
from harness.errors import CodecFailure, UserError
from harness.manifest import manifest_writer, read_manifest, restrict_to_manifest
from harness.plugins import Registry
from harness.rate_matching import MATCH_OPTION, knob_value, match_rate
from harness.reconstructions import save_original, save_reconstruction
from harness.reporting import BuiltReport, build_report
from harness.reporting.compressai import read_compressai_json
from harness.reporting.settings import ReportSettings
from harness.results import (
    BATCH_SIZE, BPP, BYTES, CLIPPED_COLUMNS, CODEC, COMPLEXITY_COLUMNS, COMPRESSION_RATIO, DATASET, DECODE_MPIX_S,
    DECODE_S, DECODE_SPREAD, DEVICE, ENCODE_MPIX_S, ENCODE_S, ENCODE_SPREAD, ERROR, ESTIMATED_BPP, HEIGHT, LOSSLESS,
    OPTIONS, POINT, POL, PRECISION, RUN, SCENE, SPREAD_COLUMNS, TARGET_BPP, THREADS, TILE_ID, VALID_PIXELS, WIDTH,
    ResultsWriter, RunFolder, drop_error_rows, results_columns,
)
from harness.timing import synchronizer_for, time_call, torch_threads

REFERENCE_BITS_PER_PIXEL = 16


@dataclass(frozen=True)
class RunOptions:
    """What the command line adds to the config for one run."""

    run_dir: Path
    manifest: Path | None = None
    resume: bool = False
    overwrite: bool = False
    codec_names: tuple[str, ...] | None = None
    device: str | None = None
    progress: bool = True
    visual_tiles: int = 2
    workers: int | None = None
    """Measure on a local Dask cluster of this many single-threaded worker processes (``harness.distributed``)."""
    scheduler: str | None = None
    """Measure on the Dask cluster whose scheduler listens at this address."""
    report: bool = True
    """Write the report (``harness.reporting.build_report``) when the run has finished."""


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    rows_written: int
    rows_skipped: int
    error_rows: int
    timing_warnings: tuple[str, ...] = ()
    report: BuiltReport | None = None
    """None when ``RunOptions.report`` is off."""


@dataclass(frozen=True)
class PreparedPoint:
    """A constructed rate point; a ``match_bpp`` point also knows how to build its codec at any knob value."""

    codec_name: str
    point: CodecPoint
    codec: Codec
    at_knob: Callable[[float], Codec] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """The constructor keywords ``codec`` was built with (the knob left out for a ``match_bpp`` point), so that a
    worker process can build the same codec."""
    complexity: dict[str, float] = field(default_factory=dict)
    """What ``codec.complexity()`` counted, keyed by ``COMPLEXITY_COLUMNS``; empty when it counts nothing."""

    @property
    def target_bpp(self) -> float | None:
        return self.point.options.get(MATCH_OPTION)


def run_benchmark(config: BenchmarkConfig, registry: Registry, options: RunOptions) -> RunOutcome:
    """Run every selected codec point on every tile, appending rows to ``results.csv``."""
    device = resolve_device(options.device or config.device)
    codecs = select_codecs(config.codecs, options.codec_names)
    # Counted once per point here; Dask workers get the counts with each unit instead of counting again.
    points = [replace(point, complexity=complexity_of(point.codec))
              for point in prepare_points(config, codecs, registry, device)]
    tiles = tile_stream(config, registry, options.manifest)
    head = list(itertools.islice(tiles, max(1, options.visual_tiles)))
    if not head:
        raise no_tiles(config)
    metric_columns = checked_metric_columns(registry, head[0])
    visual_tiles = head[: options.visual_tiles]
    chunks = tile_chunks(_handed_over(head, tiles), TILE_CHUNK_PIXELS)
    folder = RunFolder(options.run_dir)
    with folder.locked():
        return _run_locked(config, registry, options, points, chunks, visual_tiles, device, folder, metric_columns)


def _run_locked(config: BenchmarkConfig, registry: Registry, options: RunOptions, points: list[PreparedPoint],
                chunks: Iterator[list[Tile]], visual_tiles: list[Tile], device: str, folder: RunFolder,
                metric_columns: tuple[MetricColumn, ...]) -> RunOutcome:
    done = _prepare_run_dir(config, options, folder)
    folder.write_metric_columns(metric_columns)
    for tile in visual_tiles:
        save_original(folder.reconstructions, tile)
    keep = ReconstructionKeeper(folder.reconstructions, {tile.tile_id for tile in visual_tiles})
    columns = results_columns([column.name for column in metric_columns])
    environment = collect_environment(config.text, device)
    environment["execution"] = _execution(options, device)
    folder.write_environment(environment)
    written = errors = skipped = 0
    spreads: dict[str, list[float]] = {}
    progress = tqdm(total=0, disable=not options.progress, unit="tile", dynamic_ncols=True)
    with (ResultsWriter(folder.results, columns) as writer, manifest_writer(folder.manifest) as write_manifest,
          _executor(config, registry, options, keep, device) as measure):
        for index, chunk in enumerate(chunks):
            write_manifest(chunk)
            units = work_units(points, chunk, done, config.timing.batch_size, index)
            chunk_skipped = len(points) * len(chunk) - sum(len(unit.tiles) for unit in units)
            skipped += chunk_skipped
            progress.total += len(points) * len(chunk)
            progress.update(chunk_skipped)
            for unit, rows in measure(units):
                progress.set_description(f"{unit.prepared.codec_name} {unit.prepared.point.label}")
                for row in rows:
                    writer.write(row)
                    written += 1
                    errors += bool(row[ERROR])
                    if not row[ERROR]:
                        spreads.setdefault(unit.prepared.codec_name, []).append(max(row[c] for c in SPREAD_COLUMNS))
                progress.update(len(unit.tiles))
    progress.close()
    folder.previous_results.unlink(missing_ok=True)
    environment["load_average_end"] = load_average()
    environment["timing_warnings"] = timing_warnings(environment, spreads)
    folder.write_environment(environment)
    report = None
    if options.report:
        references = tuple(read_compressai_json(Path(path)) for path in config.references)
        report = build_report(folder, ReportSettings(anchors=config.anchors, references=references), registry)
    return RunOutcome(options.run_dir, written, skipped, errors, tuple(environment["timing_warnings"]), report)


@dataclass(frozen=True)
class WorkUnit:
    """One rate point on one batch of tiles: what the runner measures at a time, here or on a cluster worker."""

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


def measure_unit(unit: WorkUnit, config: BenchmarkConfig, registry: Registry,
                 keep: Callable[[PreparedPoint, Tile, np.ndarray], None] | None = None,
                 calls: CodecCalls | None = None) -> list[dict[str, Any]]:
    measure = measure_matched if unit.prepared.target_bpp else measure_batch
    return measure(unit.prepared, unit.tiles, config, registry, keep, calls)


MeasureAll = Callable[[list[WorkUnit]], Iterator[tuple[WorkUnit, list[dict[str, Any]]]]]


@contextlib.contextmanager
def _executor(config: BenchmarkConfig, registry: Registry, options: RunOptions, keep: ReconstructionKeeper,
              device: str) -> Iterator[MeasureAll]:
    """What measures the units and hands back their rows in order: this process, or a Dask cluster."""
    if options.workers or options.scheduler:
        from harness.distributed import cluster_executor  # it builds on this module

        with cluster_executor(config, options, keep.tile_ids, device, TILE_CHUNK_PIXELS) as measure_all:
            yield measure_all
        return
    with codec_calls(config) as calls:
        yield lambda units: ((unit, measure_unit(unit, config, registry, keep, calls)) for unit in units)


def _execution(options: RunOptions, device: str) -> dict[str, Any]:
    if options.scheduler:
        return {"mode": "dask", "scheduler": options.scheduler}
    if options.workers:
        from harness.distributed import local_gpu_workers  # it builds on this module

        return {"mode": "dask", "workers": options.workers, "threads_per_worker": 1,
                "gpu_workers": local_gpu_workers(device)}
    return {"mode": "in-process"}


def batches(tiles: list[Tile], size: int) -> Iterable[list[Tile]]:
    for start in range(0, len(tiles), size):
        yield tiles[start : start + size]


def resolve_device(requested: str) -> str:
    """``auto`` means CUDA when a GPU is usable, else CPU; asking for CUDA without one is a user error."""
    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise UserError("device: cuda requested but torch sees no CUDA device; use --device cpu or auto")
    return "cpu"


def select_codecs(codecs: tuple[CodecConfig, ...], names: tuple[str, ...] | None) -> tuple[CodecConfig, ...]:
    if names is None:
        return codecs
    configured = [codec.name for codec in codecs]
    unknown = [name for name in names if name not in configured]
    if unknown:
        raise UserError(f"--codecs: {', '.join(unknown)} not in the config (configured: {', '.join(configured)})")
    return tuple(codec for codec in codecs if codec.name in names)


def _prepare_run_dir(config: BenchmarkConfig, options: RunOptions, folder: RunFolder) -> set[tuple[str, str, str]]:
    """Start the run folder; on resume return the finished (codec, point, tile) keys."""
    if folder.results.exists() and not (options.resume or options.overwrite):
        raise UserError(f"{folder.results} already exists; pass --resume to continue that run, "
                        "--overwrite to start again, or --output for a new folder")
    if options.resume and folder.results.exists():
        if folder.config.exists() and folder.config.read_text(encoding="utf-8") != config.text:
            raise UserError(f"{config.path} differs from the config of the run in {folder.path}; "
                            "resume with the same config, or --overwrite")
        return drop_error_rows(folder.results)
    if folder.results.exists():
        # Kept until this run finishes: a run that crashes on its first tile must not cost the old results.
        os.replace(folder.results, folder.previous_results)
    shutil.rmtree(folder.reconstructions, ignore_errors=True)
    folder.config.write_text(config.text, encoding="utf-8")
    folder.resolved_config.write_text(resolved_config_yaml(config), encoding="utf-8")
    return set()


def dataset_settings(config: BenchmarkConfig) -> DatasetSettings:
    return settings_for(config.dataset, config.normalization, config.seed, config.base_dir)


def settings_for(dataset: DatasetConfig, normalization: dict[str, tuple[float, float]], seed: int,
                 base_dir: Path) -> DatasetSettings:
    """What a dataset plugin is constructed with, for a dataset section of any file (benchmark or training)."""
    return DatasetSettings(
        tile_size=dataset.tile_size,
        max_tiles=dataset.max_tiles,
        polarisations=dataset.polarisations,
        normalization=normalization,
        seed=seed,
        min_valid_fraction=dataset.min_valid_fraction,
        base_dir=base_dir,
        cache_dir=dataset.cache_dir,
    )


TILE_CHUNK_PIXELS = 1 << 24
"""How many tile pixels a run holds at once: 16.8 MPix, 256 tiles of 256x256, about 170 MB with their masks and dB
originals. The run measures every point on one chunk of tiles before it reads the next, so its memory does not
grow with the test set: a whole Sentinel-1 product (some 13,000 such tiles) is measured like a sample of it."""


def tile_stream(config: BenchmarkConfig, registry: Registry, manifest: Path | None = None) -> Iterator[Tile]:
    """The run's tiles, read-only, in the dataset's order as it reads them; only the manifest's when given."""
    tiles = map(_read_only, dataset_tiles(config.dataset, dataset_settings(config), registry))
    return restrict_to_manifest(tiles, read_manifest(manifest), manifest) if manifest else tiles


def tile_chunks(tiles: Iterable[Tile], pixels: int) -> Iterator[list[Tile]]:
    """Consecutive tiles of about ``pixels`` pixels in all (at least one tile), read only as each chunk is asked for."""
    chunk: list[Tile] = []
    size = 0
    for tile in tiles:
        chunk.append(tile)
        size += tile.data.size
        if size >= pixels:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _handed_over(head: list[Tile], rest: Iterator[Tile]) -> Iterator[Tile]:
    """``head`` then ``rest``, emptying ``head`` as it goes: a tile the run has measured must not stay referenced,
    or the memory of a whole-product run would grow with it."""
    while head:
        yield head.pop(0)
    yield from rest


def _read_only(tile: Tile) -> Tile:
    # Every codec point sees the same arrays: a codec writing into its input would corrupt the others' scores.
    tile.data.setflags(write=False)
    tile.mask.setflags(write=False)
    return tile


def load_tiles(config: BenchmarkConfig, registry: Registry) -> list[Tile]:
    """Every tile of the run at once: for the trainer, which refuses to train on them, and the benchmark scripts."""
    tiles = list(tile_stream(config, registry))
    if not tiles:
        raise no_tiles(config)
    return tiles


def no_tiles(config: BenchmarkConfig) -> UserError:
    return UserError(f"{config.path}: dataset {config.dataset.kind!r} produced no tiles")


def read_dataset(dataset: DatasetConfig, settings: DatasetSettings, registry: Registry) -> list[Tile]:
    """Every tile the dataset section's plugin yields with these settings."""
    return list(dataset_tiles(dataset, settings, registry))


def dataset_tiles(dataset: DatasetConfig, settings: DatasetSettings, registry: Registry) -> Iterator[Tile]:
    """The tiles the dataset section's plugin yields with these settings, as it reads them."""
    return iter(registry.dataset(dataset.kind)(settings, **dataset.options).tiles())


def prepare_points(
    config: BenchmarkConfig, codecs: Iterable[CodecConfig], registry: Registry, device: str
) -> list[PreparedPoint]:
    """Construct every rate point up front, so a bad option fails before hours of work, not during."""
    prepared = []
    for index, codec_config in enumerate(codecs):
        codec_class = registry.codec(codec_config.name)
        for point_index, point in enumerate(codec_config.points):
            options = with_context(codec_class, point.options, device=device, base_dir=config.base_dir)
            at_knob, constructed = None, options
            if MATCH_OPTION in options:
                # The search starts from the knob's low end, valid for every instance by the RateKnob contract.
                knob = codec_class.rate_knob
                options = {key: value for key, value in options.items() if key != MATCH_OPTION}
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


def _construct_at(codec_class: type[Codec], options: dict[str, Any], option: str, value: float) -> Codec:
    return codec_class(**options, **{option: value})


def with_context(codec_class: type[Codec], options: dict[str, Any], **context: Any) -> dict[str, Any]:
    """Add the run's context (device, config folder) for the constructor keywords the codec declares."""
    accepted = inspect.signature(codec_class.__init__).parameters
    return {**{key: value for key, value in context.items() if key in accepted}, **options}


def checked_metric_columns(registry: Registry, tile: Tile) -> tuple[MetricColumn, ...]:
    """The metrics' declared columns, after checking on one tile (scored against itself) that each metric
    returns exactly the columns it declares: a mismatch found after hours of coding would cost the run."""
    pair = MetricInput(tile.data, tile.data, tile.mask, tile.db_range, tile.original_db)
    with torch_threads(METRIC_THREADS):
        for metric in registry.metric_functions():
            returned, declared = set(metric(pair)), {column.name for column in metric.columns}
            if returned != declared:
                raise UserError(f"metric {metric.name!r} ({registry.metrics[metric.name].origin}) returned the "
                                f"columns {sorted(returned)} but declares {sorted(declared)}; declare every column "
                                "it returns in its @harness.metric(...)")
    return registry.metric_columns()


class ReconstructionKeeper:
    """Saves the reconstructions of the first few tiles for the visual comparison (their originals are saved once,
    by the run)."""

    def __init__(self, root: Path, tile_ids: set[str]):
        self.root = root
        self.tile_ids = tile_ids

    def __call__(self, prepared: PreparedPoint, tile: Tile, reconstruction: np.ndarray) -> None:
        if tile.tile_id in self.tile_ids:
            save_reconstruction(self.root, tile, prepared.codec_name, prepared.point.label, reconstruction)


def measure_batch(
    prepared: PreparedPoint,
    tiles: list[Tile],
    config: BenchmarkConfig,
    registry: Registry,
    keep: Callable[[PreparedPoint, Tile, np.ndarray], None] | None = None,
    calls: CodecCalls | None = None,
) -> list[dict[str, Any]]:
    """Encode, decode and score tiles as one batch; a failing batch is retried tile by tile.

    Timing is per batch and shared among its tiles in proportion to their
    pixels, so MPix/s is the batch's throughput. Retrying a failed batch one
    tile at a time pins the error row on the tile that caused it.
    """
    calls = calls or IN_PROCESS
    try:
        coded = calls.code(prepared, [tile.data for tile in tiles], config.timing)
    except Exception as exc:  # the codec is third-party code: record it and carry on
        if len(tiles) > 1:
            return [row for tile in tiles for row in measure_batch(prepared, [tile], config, registry, keep, calls)]
        return [error_row(prepared, tiles[0], config, exc)]
    total_pixels = sum(tile.data.size for tile in tiles)
    rows = []
    for tile, stream, reconstruction, estimate in zip(tiles, coded.streams, coded.reconstructions, coded.estimates):
        share = tile.data.size / total_pixels
        encode_s, decode_s = coded.encode_s * share, coded.decode_s * share
        megapixels = tile.data.size / 1e6
        row = identity_columns(prepared, tile, config, batch_size=len(tiles))
        row.update(rate_columns(len(stream), tile.shape))
        row[ESTIMATED_BPP] = "" if estimate is None else estimate
        row.update(score(registry, MetricInput(tile.data, reconstruction, tile.mask, tile.db_range, tile.original_db)))
        row.update({ENCODE_S: encode_s, DECODE_S: decode_s,
                    ENCODE_MPIX_S: megapixels / encode_s, DECODE_MPIX_S: megapixels / decode_s,
                    ENCODE_SPREAD: coded.encode_spread, DECODE_SPREAD: coded.decode_spread})
        rows.append(row)
        if keep:
            keep(prepared, tile, reconstruction)
    return rows


def measure_matched(
    prepared: PreparedPoint,
    tiles: list[Tile],
    config: BenchmarkConfig,
    registry: Registry,
    keep: Callable[[PreparedPoint, Tile, np.ndarray], None] | None = None,
    calls: CodecCalls | None = None,
) -> list[dict[str, Any]]:
    """A ``match_bpp`` point on one tile: search the knob with untimed encodes, then measure the value found.

    The row's ``options`` records the knob value the tile got; its ``point`` stays the target, the key that
    resume and the report group by.
    """
    (tile,) = tiles
    calls = calls or IN_PROCESS
    knob = prepared.codec.rate_knob
    try:
        matched = match_rate(lambda value: calls.bpp(prepared, value, tile.data), knob, prepared.target_bpp)
        tuned = replace(prepared, codec=prepared.at_knob(matched.value),
                        options={**prepared.options, knob.option: matched.value})
    except Exception as exc:  # the codec is third-party code: record it and carry on
        return [error_row(prepared, tile, config, exc)]
    rows = measure_batch(tuned, [tile], config, registry, keep, calls)
    for row in rows:
        row[OPTIONS] = json.dumps({**prepared.point.options, knob.option: matched.value}, sort_keys=True)
    return rows


def bpp_of(codec: Codec, array: np.ndarray) -> float:
    """The rate of one untimed encode: what the ``match_bpp`` search probes."""
    (stream,) = codec.encode_batch([array])
    return 8 * len(check_stream(stream)) / array.size


@contextlib.contextmanager
def codec_calls(config: BenchmarkConfig) -> Iterator[CodecCalls]:
    """In this process, or in a worker process when the config asks for isolation."""
    if not config.timing.isolate:
        yield IN_PROCESS
        return
    from harness.isolation import worker_calls  # it builds on this module

    with worker_calls(config.plugins, config.base_dir, config.timing.timeout_s) as calls:
        yield calls


class CodecCalls:
    """Where codec work runs: in this process (the default), or in a worker (``harness.isolation``)."""

    def code(self, prepared: PreparedPoint, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
        return code_arrays(prepared.codec, arrays, timing)

    def bpp(self, prepared: PreparedPoint, value: float, array: np.ndarray) -> float:
        return bpp_of(prepared.at_knob(value), array)


IN_PROCESS = CodecCalls()


@dataclass(frozen=True)
class CodedBatch:
    streams: list[bytes]
    reconstructions: list[np.ndarray]
    encode_s: float
    decode_s: float
    estimates: list[float | None]
    encode_spread: float = 0.0
    decode_spread: float = 0.0


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


def error_row(prepared: PreparedPoint, tile: Tile, config: BenchmarkConfig, exc: Exception) -> dict[str, Any]:
    row = identity_columns(prepared, tile, config, batch_size=1)
    message = str(exc) if isinstance(exc, CodecFailure) else f"{type(exc).__name__}: {exc}"
    row[ERROR] = message.replace("\n", " ")
    return row


def check_stream(stream: Any) -> bytes:
    if not isinstance(stream, (bytes, bytearray)):
        raise TypeError(f"encode returned {type(stream).__name__}, not bytes")
    return bytes(stream)


def identity_columns(prepared: PreparedPoint, tile: Tile, config: BenchmarkConfig, batch_size: int) -> dict[str, Any]:
    height, width = tile.shape
    return {
        RUN: config.name, DATASET: config.dataset.kind, SCENE: tile.scene, TILE_ID: tile.tile_id,
        POL: tile.pol, HEIGHT: height, WIDTH: width, VALID_PIXELS: tile.valid_pixels,
        **dict(zip(CLIPPED_COLUMNS, tile.clipped_fractions)),
        CODEC: prepared.codec_name, POINT: prepared.point.label,
        OPTIONS: json.dumps(prepared.point.options, sort_keys=True), LOSSLESS: prepared.codec.lossless,
        TARGET_BPP: "" if prepared.target_bpp is None else prepared.target_bpp,
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
