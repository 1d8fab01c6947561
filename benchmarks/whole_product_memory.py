"""Peak memory and throughput of a run over a generated raster of a whole Sentinel-1 scene's size.

An IW GRD scene is about 25,000 x 16,700 pixels in two polarisations. The script writes such a raster (dual-pol
float32 dB with speckle, a swath border and no-data blocks, strip by strip, so it is never in memory), then runs
``python -m harness run`` on it serially and with ``--workers N``, and reports for each run the wall time, the
throughput (coded tile pixels per second, every rate point counted) and the peak resident memory of every process
of the run (the client, each Dask worker, each isolated codec process), sampled every 0.2 s with psutil.

The run takes ``--windows`` windows spread over the whole raster (each read where it lies) and codes them with
JPEG 2000 at four rates, as the default benchmark does; the default 400 windows take over ten minutes serially on
a 2-core machine.

    .venv/bin/python benchmarks/whole_product_memory.py [--windows 400] [--workers 2] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from tiling_memory import write_scene

SCENE_LINES, SCENE_SAMPLES = 16_700, 25_000
TARGET_BYTES = 1 << 30
CONFIG = """\
name: whole-product-memory
dataset:
  kind: geotiff
  paths: [scene.tif]
  bands: {{VV: 1, VH: 2}}
  tile_size: 256
  max_tiles: {windows}
  polarisations: [VV, VH]
normalization:
  VV: [-25, 5]
  VH: [-32, -2]
codecs:
  - name: jpeg2000
    points: [{{bpp: 0.25}}, {{bpp: 0.5}}, {{bpp: 1.0}}, {{bpp: 2.0}}]
timing: {{warmup: 1, repeats: 3, isolate: true}}
"""


class PeakMemory:
    """Samples the resident memory of a process and all its descendants until stopped; keeps each one's peak."""

    def __init__(self, root: int, interval_s: float = 0.2):
        self.root, self.interval_s = psutil.Process(root), interval_s
        self.peaks: dict[int, tuple[int, str]] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    rss, command = process.memory_info().rss, " ".join(process.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                previous = self.peaks.get(process.pid, (0, command))[0]
                self.peaks[process.pid] = (max(previous, rss), command)
            time.sleep(self.interval_s)

    def stop(self) -> dict[int, tuple[int, str]]:
        self.stopped.set()
        self.thread.join()
        return self.peaks


def role(command: str, root_pid: int, pid: int, workers: int | None) -> str:
    if pid == root_pid:
        return "client" if workers else "serial run"
    if "spawn_main" in command or "multiprocessing" in command:
        return "worker or codec process"
    return command[:60]


def run(config: Path, output: Path, workers: int | None) -> None:
    command = [sys.executable, "-m", "harness", "run", str(config), "--output", str(output), "--no-progress",
               "--overwrite"]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = PeakMemory(process.pid)
    _, errors = process.communicate()
    peaks = sampler.stop()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the run failed ({process.returncode}): {errors.strip()[-2000:]}")
    with (output / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    pixels = sum(int(row["height"]) * int(row["width"]) for row in rows if not row["error"])
    errors_count = sum(bool(row["error"]) for row in rows)
    label = f"--workers {workers}" if workers else "serial"
    print(f"{label}: {len(rows)} rows ({errors_count} errors), wall {wall:.0f} s, "
          f"{pixels / 1e6 / wall:.2f} MPix/s coded (all rate points), load average now {os.getloadavg()}")
    for pid, (peak, command) in sorted(peaks.items(), key=lambda item: -item[1][0]):
        if peak > 50 * 2**20:
            print(f"  pid {pid:>7} {role(command, process.pid, pid, workers):<26} peak RSS {peak / 2**20:7.0f} MiB")
    largest = max(peak for peak, _ in peaks.values())
    verdict = "under" if largest < TARGET_BYTES else "OVER"
    print(f"  largest process {largest / 2**20:.0f} MiB: {verdict} the {TARGET_BYTES / 2**20:.0f} MiB bound", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write the raster and runs here instead of a temporary folder")
    parser.add_argument("--lines", type=int, default=SCENE_LINES, help="a smaller raster, to try the script")
    parser.add_argument("--samples", type=int, default=SCENE_SAMPLES)
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        scene = folder / "scene.tif"
        if not scene.exists():
            started = time.perf_counter()
            write_scene(scene, args.lines, args.samples, compress="none")
            print(f"wrote a {args.samples}x{args.lines} dual-pol float32 raster "
                  f"({scene.stat().st_size / 1e9:.1f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
        config = folder / "whole_product.yaml"
        config.write_text(CONFIG.format(windows=args.windows), encoding="utf-8")
        run(config, folder / "serial", None)
        if args.workers:
            run(config, folder / f"workers-{args.workers}", args.workers)


if __name__ == "__main__":
    main()
