"""A benchmark run: config -> tiles -> units -> rows -> report.

The run builds every rate point up front, reads the tiles as a stream, one chunk at a time (``harness.tiles``),
and hands each chunk's units to what measures them: this process (``harness.measure``, the codec calls in a
worker process unless ``timing.isolate`` is off: ``harness.isolation``), or a Dask cluster (``harness.distributed``).
Rows are appended to ``results.csv`` in the units' order and flushed the moment they exist, so an interrupted run
loses nothing and ``--resume`` continues where it stopped. The report is built from the finished run folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from harness.api import MetricColumn, Tile
from harness.config import BenchmarkConfig, CodecConfig, resolved_config_yaml
from harness.curves import read_compressai_json
from harness.environment import collect_environment, load_average, timing_warnings
from harness.errors import UserError
from harness.isolation import codec_calls, isolation_record
from harness.manifest import manifest_writer
from harness.measure import (
    MeasureAll, Measuring, PreparedPoint, ReconstructionKeeper, RunIdentity, checked_metric_columns, complexity_of,
    measure_unit, prepare_points, work_units,
)
from harness.plugins import Registry
from harness.reconstructions import save_original
from harness.reporting import BuiltReport, build_report
from harness.reporting.settings import ReportSettings
from harness.results import ERROR, RESULTS_FORMAT_VERSION, SPREAD_COLUMNS, RunFolder, results_columns
from harness.results_file import ResultsWriter, check_format_version, drop_error_rows
from harness.tiles import TILE_CHUNK_PIXELS, handed_over, no_tiles, tile_chunks, tile_stream

if TYPE_CHECKING:
    from harness.distributed import Cluster


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

    @property
    def cluster(self) -> Cluster | None:
        """The Dask cluster the run measures on; None: this process. ``harness.distributed`` is imported here, by the
        runs that use it: importing Dask costs about 0.2 s, which every command would pay otherwise."""
        if not (self.workers or self.scheduler):
            return None
        from harness.distributed import Cluster

        return Cluster(self.workers, self.scheduler)


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    rows_written: int
    rows_skipped: int
    error_rows: int
    timing_warnings: tuple[str, ...] = ()
    report: BuiltReport | None = None
    """None when ``RunOptions.report`` is off."""


def run_benchmark(config: BenchmarkConfig, registry: Registry, options: RunOptions) -> RunOutcome:
    """Run every selected codec point on every tile, appending rows to ``results.csv``."""
    folder = RunFolder(options.run_dir)
    if options.resume:
        _check_resumable(config, folder)
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
    chunks = tile_chunks(handed_over(head, tiles), TILE_CHUNK_PIXELS)
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
    environment["results_format_version"] = RESULTS_FORMAT_VERSION
    environment["execution"] = options.cluster.execution(device) if options.cluster else {"mode": "in-process"}
    environment["isolation"] = isolation_record(config.timing)
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
    report = _report(config, registry, folder) if options.report else None
    return RunOutcome(options.run_dir, written, skipped, errors, tuple(environment["timing_warnings"]), report)


@contextlib.contextmanager
def _executor(config: BenchmarkConfig, registry: Registry, options: RunOptions, keep: ReconstructionKeeper,
              device: str) -> Iterator[MeasureAll]:
    """What measures the units and hands back their rows in order: this process, or a Dask cluster."""
    if options.cluster:
        from harness.distributed import cluster_executor  # a run on a cluster only (see RunOptions.cluster)

        with cluster_executor(options.cluster, config, device, run_dir=options.run_dir, manifest=options.manifest,
                              visual_tile_ids=keep.tile_ids, chunk_pixels=TILE_CHUNK_PIXELS) as measure_all:
            yield measure_all
        return
    with codec_calls(config) as calls:
        measuring = Measuring(RunIdentity.of(config), config.timing, registry, calls, keep)
        yield lambda units: ((unit, measure_unit(unit, measuring)) for unit in units)


def _report(config: BenchmarkConfig, registry: Registry, folder: RunFolder) -> BuiltReport:
    references = tuple(read_compressai_json(Path(path)) for path in config.references)
    return build_report(folder, ReportSettings(anchors=config.anchors, references=references), registry)


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


def _check_resumable(config: BenchmarkConfig, folder: RunFolder) -> None:
    """Refuse a resume that cannot continue the run in ``folder``, before a codec is built or a tile read: the
    folder is missing, or its results were written with another config or in another results format."""
    if not folder.path.exists():
        raise UserError(f"--resume: {folder.path} does not exist, so there is no run to continue; give the "
                        "interrupted run's folder with --output, or leave out --resume to start a new run")
    if not folder.results.exists():
        return
    if folder.config.exists() and folder.config.read_text(encoding="utf-8") != config.text:
        raise UserError(f"{config.path} differs from the config of the run in {folder.path}; "
                        "resume with the same config, or --overwrite")
    check_format_version(folder.results)


def _prepare_run_dir(config: BenchmarkConfig, options: RunOptions, folder: RunFolder) -> set[tuple[str, str, str]]:
    """Start the run folder; on resume return the finished (codec, point, tile) keys."""
    if folder.results.exists() and not (options.resume or options.overwrite):
        raise UserError(f"{folder.results} already exists; pass --resume to continue that run, "
                        "--overwrite to start again, or --output for a new folder")
    if options.resume and folder.results.exists():
        return drop_error_rows(folder.results)
    if folder.results.exists():
        # Kept until this run finishes: a run that crashes on its first tile must not cost the old results.
        os.replace(folder.results, folder.previous_results)
    shutil.rmtree(folder.reconstructions, ignore_errors=True)
    folder.config.write_text(config.text, encoding="utf-8")
    folder.resolved_config.write_text(resolved_config_yaml(config), encoding="utf-8")
    return set()
