"""Runs on a Dask cluster (``--workers N``) give the serial run's results, survive a killed client, retry a unit
whose worker died once, and keep one codec's crash from costing another codec's rows."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.config import load_config
from harness.distributed import Cluster, _client, unit_resources
from harness.results import TIMING_COLUMNS
from harness.run import RunOptions, run_benchmark
from tests.conftest import IN_PROCESS, MINIMAL_CONFIG

CRASHER = '''
import os
import signal

import numpy as np
from harness import Codec, Complexity, hookimpl


class Crasher(Codec):
    """8-bit bytes; decoding kills the process, as a native crash would, on tiles whose first pixel is bright
    (3 of the 6 test tiles)."""
    name = "crasher"

    def encode(self, tile):
        return bytes([int(tile[0, 0] > 0.6)]) + (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        if data[0]:
            os.kill(os.getpid(), signal.SIGSEGV)
        return np.frombuffer(data, dtype=np.uint8, offset=1).reshape(shape) / np.float32(255)


class DiesOnce(Crasher):
    """Never crashes but on the first tile it decodes anywhere: then it kills its process, having written the
    process id to ``marker``. Its precision column shows the process that built it (in-process: that decoded)."""
    name = "dies_once"

    def __init__(self, marker=""):
        self.marker = marker
        self.precision = f"pid {os.getpid()}"

    def encode(self, tile):
        return bytes([0]) + (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        if not os.path.exists(self.marker):
            with open(self.marker, "w") as handle:
                handle.write(f"pid {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().decode(data, shape)


class Counted(Crasher):
    """Never crashes; counts its complexity, which the client counts and the workers' rows carry."""
    name = "counted"

    def encode(self, tile):
        return bytes([0]) + (tile * 255).round().astype(np.uint8).tobytes()

    def complexity(self):
        return Complexity(encode_macs_per_pixel=12.5, decode_macs_per_pixel=7, parameters=321)


@hookimpl
def harness_codecs():
    return [Crasher, DiesOnce, Counted]
'''
CODECS = """\
  - name: quantize
    points: [{bits: 4}, {bits: 8}]
  - name: jpeg2000
    points: [{bpp: 1.0}]
  - name: quantize_zlib
    points: [{match_bpp: 3.0}]
  - name: counted
    points: [{}]
"""

SEES_GPUS = '''
import os

import numpy as np
from harness import Codec, hookimpl


class SeesGpus(Codec):
    """8-bit bytes; its precision column shows which GPUs the process that coded the tile could see."""
    name = "sees_gpus"

    def __init__(self):
        self.precision = "sees:" + os.environ.get("CUDA_VISIBLE_DEVICES", "all")

    def encode(self, tile):
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape) / np.float32(255)


class ClaimsGpu(SeesGpus):
    """A GPU codec to the client (the process that sees every GPU); a CPU codec where it codes, as CUDA is
    not there to synchronize on."""
    name = "claims_gpu"

    def __init__(self):
        super().__init__()
        self.device = "cuda" if "CUDA_VISIBLE_DEVICES" not in os.environ else "cpu"


@hookimpl
def harness_codecs():
    return [SeesGpus, ClaimsGpu]
'''


@pytest.fixture
def config(tmp_path, dual_pol_geotiff, write_config) -> Path:
    (tmp_path / "crasher.py").write_text(CRASHER)
    return write_config(MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n" + CODECS + "plugins: [crasher.py]\n"
                        f"timing: {{warmup: 0, repeats: 1, {IN_PROCESS}}}\n")


def harness(config: Path, run_dir: Path, *flags: str, **environment: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "harness", "run", str(config), "--output", str(run_dir), "--no-progress", *flags]
    return subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True, timeout=600)


def measured(run_dir: Path) -> list[dict[str, str]]:
    """The rows in file order, without the timing columns, which differ from run to run."""
    with (run_dir / "results.csv").open(newline="") as handle:
        return [{key: value for key, value in row.items() if key not in TIMING_COLUMNS}
                for row in csv.DictReader(handle)]


def test_two_workers_write_the_serial_runs_rows_in_its_order(tmp_path, config):
    assert harness(config, tmp_path / "serial").returncode == 0
    assert harness(config, tmp_path / "cluster", "--workers", "2").returncode == 0

    serial, cluster = measured(tmp_path / "serial"), measured(tmp_path / "cluster")
    assert len(serial) == 5 * 6 and cluster == serial
    assert {row["parameters"] for row in cluster if row["codec"] == "counted"} == {"321.0"}


def test_a_client_killed_mid_run_resumes_on_workers_to_the_uninterrupted_result(tmp_path, config):
    assert harness(config, tmp_path / "whole", "--workers", "2").returncode == 0
    killed = harness(config, tmp_path / "run", "--workers", "2", HARNESS_TEST_KILL_AT="row:7")
    assert killed.returncode == -signal.SIGKILL

    assert harness(config, tmp_path / "run", "--workers", "2", "--resume").returncode == 0

    assert measured(tmp_path / "run") == measured(tmp_path / "whole")


@pytest.mark.parametrize("isolation, crash", [
    ("", "the codec's worker process died (signal SIGSEGV)"),  # the default: a crash costs the codec's process
    (f", {IN_PROCESS}", "KilledWorker"),  # a crash costs the Dask worker, twice: the unit is retried once
])
def test_a_crashing_codec_gives_error_rows_to_its_crashing_tiles_alone_on_two_workers(tmp_path, config, isolation,
                                                                                      crash):
    codecs = "codecs:\n  - name: crasher\n  - name: quantize\n    points: [{bits: 4}]\nplugins: [crasher.py]\n"
    # breaker_after: 4, so that the crasher's 3 crashes stop none of its other tiles
    config.write_text(config.read_text().split("codecs:")[0] + codecs +
                      f"timing: {{warmup: 0, repeats: 1, breaker_after: 4{isolation}}}\n")

    assert harness(config, tmp_path / "run", "--workers", "2").returncode == 0

    rows = measured(tmp_path / "run")
    crashed = [row["error"] for row in rows if row["codec"] == "crasher" and row["error"]]
    assert len(rows) == 12 and len(crashed) == 3 and all(crash in error for error in crashed)
    assert all(not row["error"] for row in rows if row["codec"] != "crasher")


def test_a_unit_whose_worker_dies_is_measured_again_on_another_worker(tmp_path, config):
    marker = tmp_path / "died"
    codecs = f"codecs:\n  - name: dies_once\n    points: [{{marker: {marker}}}]\nplugins: [crasher.py]\n"
    config.write_text(config.read_text().split("codecs:")[0] + codecs +
                      f"timing: {{warmup: 0, repeats: 1, {IN_PROCESS}}}\n")

    run_benchmark(*load_config(config), RunOptions(run_dir=tmp_path / "run", progress=False, report=False, workers=2))

    rows = measured(tmp_path / "run")
    assert len(rows) == 6 and all(not row["error"] for row in rows)
    assert marker.read_text() not in {row["precision"] for row in rows}  # the dead worker gave no row


def test_the_workers_measure_the_config_the_caller_passes_not_the_file_it_came_from(tmp_path, config):
    loaded, registry = load_config(config)
    renamed = dataclasses.replace(loaded, name="renamed-in-code", codecs=loaded.codecs[:1])

    run_benchmark(renamed, registry, RunOptions(run_dir=tmp_path / "run", progress=False, workers=2))

    rows = measured(tmp_path / "run")
    assert len(rows) == 2 * 6 and {row["run"] for row in rows} == {"renamed-in-code"}


def test_workers_read_the_tile_chunks_the_client_measures_and_only_the_manifests_tiles(tmp_path, config,
                                                                                        monkeypatch):
    loaded, registry = load_config(config)
    monkeypatch.setattr("harness.run.TILE_CHUNK_PIXELS", 2 * 32 * 32)  # one window's two polarisations
    run_benchmark(loaded, registry, RunOptions(run_dir=tmp_path / "serial", progress=False, report=False))
    run_benchmark(loaded, registry, RunOptions(run_dir=tmp_path / "cluster", progress=False, report=False, workers=2,
                                               manifest=tmp_path / "serial" / "tiles.csv"))

    assert measured(tmp_path / "cluster") == measured(tmp_path / "serial")


def test_local_workers_allocate_memory_as_a_serial_run_does(tmp_path, config):
    """Dask's default MALLOC_TRIM_THRESHOLD_ makes every large allocation a fresh mapping: slower coding."""
    with _client(Cluster(workers=1)) as client:
        settings = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert list(settings.values()) == [os.environ.get("MALLOC_TRIM_THRESHOLD_")] == [None]


@pytest.mark.parametrize("flags, message", [
    (["--workers", "0"], "expected a whole number of workers of at least 1, got '0'"),
    (["--workers", "2", "--scheduler", "tcp://localhost:8786"], "not allowed with argument"),
])
def test_bad_cluster_flags_are_one_line(config, capsys, flags, message):
    with pytest.raises(SystemExit) as exited:
        main(["run", str(config), *flags])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def _by_worker_name(client, values: dict) -> dict:
    names = {address: worker["name"] for address, worker in client.scheduler_info()["workers"].items()}
    return {names[address]: value for address, value in values.items()}


def test_a_local_cluster_adds_a_worker_per_gpu_that_sees_only_its_gpu(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with _client(Cluster(workers=2), gpus=2) as client:
        seen = _by_worker_name(client, client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES")))
        resources = {worker["name"]: worker["resources"] for worker in client.scheduler_info()["workers"].values()}
    assert seen == {"cpu-0": "", "cpu-1": "", "gpu-0": "0", "gpu-1": "1"}
    assert resources == {"cpu-0": {"CPU": 1}, "cpu-1": {"CPU": 1}, "gpu-0": {"GPU": 1}, "gpu-1": {"GPU": 1}}


def test_gpu_workers_get_the_gpus_the_run_was_restricted_to(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    with _client(Cluster(workers=1), gpus=2) as client:
        seen = _by_worker_name(client, client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES")))
    assert seen == {"cpu-0": "", "gpu-0": "5", "gpu-1": "7"}


def test_a_local_cluster_without_gpus_declares_no_resources_and_hides_nothing(tmp_path):
    with _client(Cluster(workers=2)) as client:
        seen = set(client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES")).values())
        resources = [worker["resources"] for worker in client.scheduler_info()["workers"].values()]
    assert seen == {os.environ.get("CUDA_VISIBLE_DEVICES")} and resources == [{}, {}]


@pytest.mark.parametrize("device, declared, wanted", [
    ("cuda", {"GPU", "CPU"}, {"GPU": 1}),
    ("cuda:1", {"GPU"}, {"GPU": 1}),
    ("cpu", {"GPU", "CPU"}, {"CPU": 1}),
    ("cpu", {"GPU"}, None),
    ("cuda", set(), None),
])
def test_a_unit_asks_for_its_codecs_device_only_where_a_worker_declares_it(device, declared, wanted):
    prepared = types.SimpleNamespace(codec=types.SimpleNamespace(device=device))
    assert unit_resources(prepared, frozenset(declared)) == wanted


def test_units_of_gpu_codecs_run_on_the_gpu_worker_and_the_others_on_cpu_workers(tmp_path, dual_pol_geotiff,
                                                                                 write_config, monkeypatch):
    (tmp_path / "sees_gpus.py").write_text(SEES_GPUS)
    config = write_config(MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n  - name: sees_gpus\n    points: [{}]\n"
                          "  - name: claims_gpu\n    points: [{}]\nplugins: [sees_gpus.py]\n"
                          f"timing: {{warmup: 0, repeats: 1, {IN_PROCESS}}}\n")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("harness.distributed.local_gpu_workers", lambda device: 1)
    loaded, registry = load_config(config)

    run_benchmark(loaded, registry, RunOptions(run_dir=tmp_path / "run", progress=False, report=False, workers=2))

    rows = measured(tmp_path / "run")
    assert {row["precision"] for row in rows if row["codec"] == "claims_gpu"} == {"sees:0"}
    assert {row["precision"] for row in rows if row["codec"] == "sees_gpus"} == {"sees:"}
    execution = json.loads((tmp_path / "run" / "environment.json").read_text())["execution"]
    assert execution["gpu_workers"] == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_machine_the_learned_codec_codes_on_the_gpu_workers(tmp_path, dual_pol_geotiff, write_config):
    checkpoint = Path(__file__).resolve().parents[1] / "checkpoints" / "autoencoder-tiny-c16-b4.pt"
    config = write_config(MINIMAL_CONFIG.split("codecs:")[0] + "device: cuda\ncodecs:\n"
                          "  - name: quantize\n    points: [{bits: 4}]\n"
                          f"  - name: autoencoder\n    points: [{{checkpoint: {checkpoint}}}]\n"
                          "timing: {warmup: 0, repeats: 1}\n")
    loaded, registry = load_config(config)

    run_benchmark(loaded, registry, RunOptions(run_dir=tmp_path / "run", progress=False, report=False, workers=1))

    rows = measured(tmp_path / "run")
    assert all(not row["error"] for row in rows)
    # every GPU worker sees its one GPU as cuda:0
    assert all(row["device"].startswith("cuda:0 (") for row in rows if row["codec"] == "autoencoder")
    assert {row["device"] for row in rows if row["codec"] == "quantize"} == {"cpu"}
    execution = json.loads((tmp_path / "run" / "environment.json").read_text())["execution"]
    assert execution["gpu_workers"] == torch.cuda.device_count()
