"""Measuring on a Dask cluster: single-threaded worker processes that read their own tiles.

``harness run CONFIG --workers N`` starts a local Dask cluster of N worker processes of one thread each
(Dask's nanny sets ``OMP_NUM_THREADS=1`` and friends, so torch and BLAS use one thread too, and the timed
calls do not fight over cores); ``--scheduler ADDRESS`` uses a cluster that is already
running. Codecs that run on a GPU get workers of their own: the local cluster adds one worker per visible GPU,
which sees only that GPU (``CUDA_VISIBLE_DEVICES``) and declares the Dask resource ``GPU``, while the CPU workers
declare ``CPU`` and see no GPU; a unit then asks for the resource of its codec's device, so GPU units queue for the
GPU workers and the CPU workers keep coding on their cores. (On a cluster started by hand, workers declare the same
resources with ``--resources``; units ask only for resources that some worker declared when the run started.)
The unit of work is one rate point on one batch of tiles (``measure.WorkUnit``). A worker gets
the config, the chunk and the tile ids, never pixels: it loads the config's plugins once and reads the
dataset itself, one chunk of tiles at a time (``tiles.tile_chunks``), keeping both for the units that
follow. The client writes each unit's rows to ``results.csv`` in the serial run's order as soon as every
unit before it is done, so ``--resume``, error rows and the progress bar behave as in-process, and the
file equals the serial run's but for timing.

A worker runs the codecs isolated (``harness.isolation``) unless the config turns that off, so a codec that
crashes costs its own call, not the worker. A unit whose worker dies all the same (killed, out of memory, or a
crashing codec with ``isolate: false``) is retried once on another worker (Dask's ``allowed-failures``, 1), then
its tiles become error rows naming the lost worker; the nanny starts a fresh worker. A worker is sent only the
unit it runs (``worker-saturation``, 1.0, where Dask queues units on the scheduler), so that a worker's death
costs no unit queued behind. Client and workers must see the same files:
on one machine they do; across machines, put the config, its data and the run folder on a shared
filesystem (see docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dask
import torch
from distributed import Client, Nanny, Scheduler, SpecCluster, as_completed

from harness.api import Tile
from harness.config import BenchmarkConfig, CodecConfig
from harness.isolation import codec_calls
from harness.measure import (
    MeasureAll,
    Measuring,
    PreparedPoint,
    ReconstructionKeeper,
    Row,
    RunIdentity,
    WorkUnit,
    error_row,
    measure_unit,
    prepare_points,
)
from harness.plugins import Registry, build_registry
from harness.rate_points import RatePoint
from harness.results import RunFolder
from harness.tiles import tile_chunks, tile_stream


@dataclass(frozen=True)
class Cluster:
    """Which Dask cluster measures a run: a local one of ``workers`` single-threaded worker processes (and one per
    visible GPU when the run's device is CUDA), or the running one whose scheduler listens at ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None

    def execution(self, device: str) -> dict[str, Any]:
        """How the run was executed, for ``environment.json``."""
        if self.scheduler:
            return {"mode": "dask", "scheduler": self.scheduler}
        return {"mode": "dask", "workers": self.workers, "threads_per_worker": 1,
                "gpu_workers": local_gpu_workers(device)}


@contextlib.contextmanager
def cluster_executor(cluster: Cluster, config: BenchmarkConfig, device: str, *, run_dir: Path, manifest: Path | None,
                     visual_tile_ids: set[str], chunk_pixels: int) -> Iterator[MeasureAll]:
    """Measure units on ``cluster``, yielding (unit, rows) in the units' order. The workers read the tiles of
    ``config`` (only ``manifest``'s when given) and cut them into chunks of ``chunk_pixels``, as the client does;
    they keep the reconstructions of ``visual_tile_ids`` in ``run_dir``."""
    job = _Job(uuid.uuid4().hex, config, device, str(run_dir.resolve()), frozenset(visual_tile_ids),
               manifest.resolve() if manifest else None, chunk_pixels)
    identity = RunIdentity.of(config)
    with _client(cluster, local_gpu_workers(device)) as client:
        declared = _declared_resources(client)

        def measure_all(units: list[WorkUnit]) -> Iterator[tuple[WorkUnit, list[Row]]]:
            futures = [client.submit(_measure_on_worker, job, unit.prepared.codec_name, unit.prepared.point,
                                     unit.prepared.complexity, unit.chunk, [tile.tile_id for tile in unit.tiles],
                                     resources=unit_resources(unit.prepared, declared), pure=False)
                       for unit in units]
            position = {future.key: index for index, future in enumerate(futures)}
            finished: dict[int, list[Row]] = {}
            next_to_write = 0
            for future in as_completed(futures):
                index = position[future.key]
                finished[index] = _rows(future, units[index], identity)
                future.release()
                while next_to_write in finished:
                    yield units[next_to_write], finished.pop(next_to_write)
                    next_to_write += 1

        yield measure_all


LOOPBACK = "127.0.0.1"
GPU_RESOURCE = "GPU"
"""The Dask resource of a worker that owns one GPU; units of codecs that run on CUDA ask for it."""
CPU_RESOURCE = "CPU"
"""The Dask resource of a worker that codes on a CPU core; the other units ask for it where workers declare it."""


def local_gpu_workers(device: str) -> int:
    """How many GPU workers a local cluster adds: one per visible GPU when the run's device is CUDA."""
    return torch.cuda.device_count() if device.startswith("cuda") else 0


def unit_resources(prepared: PreparedPoint, declared: frozenset[str]) -> dict[str, int] | None:
    """The resource a unit of ``prepared`` asks for: its codec's device's, if some worker declares it (a unit
    asking for a resource no worker has would wait forever)."""
    wanted = GPU_RESOURCE if prepared.codec.device.startswith("cuda") else CPU_RESOURCE
    return {wanted: 1} if wanted in declared else None


def _declared_resources(client: Client) -> frozenset[str]:
    return frozenset(name for worker in client.scheduler_info()["workers"].values()
                     for name in worker.get("resources", {}))


MALLOC_TRIM_SETTING = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
"""Dask sets this glibc variable in its workers by default, which turns off glibc's dynamic mmap threshold: every
large array is then mapped and unmapped afresh. The learned codec coded 1.3 times slower so (three times the system
time, 2.5 times the page faults), so a local cluster's workers allocate as a serial run does."""


@contextlib.contextmanager
def _client(cluster: Cluster, gpus: int = 0) -> Iterator[Client]:
    # A unit lost with its worker is tried once more, then is an error row, not a unit to retry on every worker it
    # would kill; a worker holds only the unit it runs, so that no other unit dies with it; and workers are not
    # daemons, so that `timing.isolate` can start its codec process inside them. (A cluster of your own runs its
    # scheduler's settings.)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.daemon": False,
                          "distributed.worker.profile.enabled": False,
                          MALLOC_TRIM_SETTING: None}):
        if cluster.scheduler:
            with Client(cluster.scheduler) as client:
                yield client
            return
        with _local_cluster(cluster.workers or 1, gpus) as local, Client(local) as client:
            yield client


def _local_cluster(cpu_workers: int, gpus: int) -> SpecCluster:
    """``cpu_workers`` single-threaded worker processes on this machine, and one per GPU for ``gpus`` GPUs.

    Built as ``LocalCluster`` builds its own (a ``SpecCluster`` of nannies on the loopback interface, no
    dashboard, the machine's memory shared out between the workers), with a spec per worker because GPU workers
    differ in what they see. Without GPUs no worker declares a resource, so units go wherever a worker is free."""
    common = {"host": LOOPBACK, "nthreads": 1, "dashboard": False, "dashboard_address": None,
              "memory_limit": 1 / (cpu_workers + gpus), "silence_logs": logging.ERROR}
    cpu = {"resources": {CPU_RESOURCE: 1}, "env": {"CUDA_VISIBLE_DEVICES": ""}} if gpus else {}
    workers = {f"cpu-{index}": {"cls": Nanny, "options": {**common, **cpu}} for index in range(cpu_workers)}
    workers.update({f"gpu-{index}": {"cls": Nanny, "options": {**common, "resources": {GPU_RESOURCE: 1},
                                                               "env": {"CUDA_VISIBLE_DEVICES": gpu}}}
                    for index, gpu in enumerate(_visible_gpus(gpus))})
    scheduler = {"cls": Scheduler, "options": {"host": LOOPBACK, "dashboard": False, "dashboard_address": None}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)


def _visible_gpus(count: int) -> list[str]:
    """The ids of the ``count`` GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` names them: a run restricted
    to GPUs 2 and 3 gives its workers GPU 2 and GPU 3, not the machine's first two."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[:count] if visible else [str(index) for index in range(count)]


def _rows(future: Any, unit: WorkUnit, identity: RunIdentity) -> list[Row]:
    """The unit's rows, or an error row per tile when the worker could not give them (it died, say)."""
    try:
        return future.result()
    except Exception as exc:  # the worker's or the cluster's failure: record it and carry on
        return [error_row(unit.prepared, tile, identity, exc) for tile in unit.tiles]


@dataclass(frozen=True)
class _Job:
    """What every unit of a run shares, sent to the workers instead of pixels; ``key`` tells runs apart."""

    key: str
    config: BenchmarkConfig
    device: str
    run_dir: str
    visual_tile_ids: frozenset[str]
    manifest: Path | None
    """``--manifest``, whose tiles alone the run measures."""
    chunk_pixels: int
    """How the client cuts the tile stream into chunks (``tiles.TILE_CHUNK_PIXELS``): a worker must cut the same."""


@dataclass
class _WorkerState:
    """A worker's config, plugins, current chunk of tiles and rate points for one run, kept across that run's units.

    The client measures the run's tile chunks in order, so a worker reads the same stream of tiles forward and holds
    one chunk at a time, whatever the size of the test set."""

    job: _Job
    registry: Registry
    chunks: Iterator[list[Tile]]
    chunk: int
    tiles: dict[str, Tile]
    measuring: Measuring
    resources: contextlib.ExitStack
    """What to close when the worker moves on to another run (the codec process of ``timing.isolate``)."""
    points: dict[str, PreparedPoint] = field(default_factory=dict)


_STATES: dict[str, _WorkerState] = {}


def _measure_on_worker(job: _Job, codec_name: str, point: RatePoint, complexity: dict[str, float],
                       chunk: int, tile_ids: list[str]) -> list[Row]:
    if job.key not in _STATES:
        for previous in _STATES.values():  # a worker of a long-lived cluster keeps only the run it serves now
            previous.resources.close()
        _STATES.clear()
        _STATES[job.key] = _load(job)
    state = _STATES[job.key]
    key = repr((codec_name, sorted(point.as_written.items())))
    if key not in state.points:
        codec = CodecConfig(codec_name, (point,))
        prepared = prepare_points(job.config, [codec], state.registry, job.device)[0]
        state.points[key] = replace(prepared, complexity=complexity)
    tiles = _chunk_tiles(state, chunk)
    unit = WorkUnit(state.points[key], [tiles[tile_id] for tile_id in tile_ids], chunk)
    return measure_unit(unit, state.measuring)


def _chunk_tiles(state: _WorkerState, chunk: int) -> dict[str, Tile]:
    """The tiles of chunk ``chunk``, by id, reading the stream forward to it (from the start again if it lies behind,
    as for a unit retried on a fresh worker)."""
    if chunk < state.chunk:
        state.chunks, state.chunk = _chunks(state.job, state.registry), -1
    while state.chunk < chunk:
        state.tiles = {}  # let the last chunk go before reading the next
        state.tiles = {tile.tile_id: tile for tile in next(state.chunks)}
        state.chunk += 1
    return state.tiles


def _chunks(job: _Job, registry: Registry) -> Iterator[list[Tile]]:
    return tile_chunks(tile_stream(job.config, registry, job.manifest), job.chunk_pixels)


def _load(job: _Job) -> _WorkerState:
    registry = build_registry(job.config.plugins, job.config.base_dir)
    resources = contextlib.ExitStack()
    calls = resources.enter_context(codec_calls(job.config))
    keep = ReconstructionKeeper(RunFolder(Path(job.run_dir)).reconstructions, set(job.visual_tile_ids))
    measuring = Measuring(RunIdentity.of(job.config), job.config.timing, registry, calls, keep)
    return _WorkerState(job, registry, _chunks(job, registry), -1, {}, measuring, resources)
