"""Wall time of a whole run in-process against ``--workers N`` (Dask), side by side, and equal results.

Alternates serial and parallel runs (serial, parallel, serial, ...) so that a drift in the machine's load hits
both alike; reports each wall time, the speed-up per round, and checks that the rows equal the serial run's in
every column but the timings.

    .venv/bin/python benchmarks/parallel_speedup.py [benchmarks.yaml] [--workers 2] [--rounds 1] [--codecs a,b]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from harness.config import load_config
from harness.results import TIMING_COLUMNS
from harness.run import RunOptions, run_benchmark


def run_once(config_path: Path, workers: int | None, run_dir: Path,
             codecs: tuple[str, ...] | None) -> tuple[float, pd.DataFrame]:
    config, registry = load_config(config_path)
    started = time.perf_counter()
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False, workers=workers, codec_names=codecs))
    wall = time.perf_counter() - started
    rows = pd.read_csv(run_dir / "results.csv", keep_default_na=False, dtype=str)
    return wall, rows.drop(columns=list(TIMING_COLUMNS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="benchmarks.yaml", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--codecs", help="comma-separated subset")
    args = parser.parse_args()
    codecs = tuple(args.codecs.split(",")) if args.codecs else None
    print(f"load average at start: {os.getloadavg()}, cores: {os.cpu_count()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            serial_s, serial = run_once(args.config, None, Path(scratch) / f"serial-{round_index}", codecs)
            print(f"round {round_index + 1}: serial {serial_s:.1f} s", flush=True)
            parallel_s, parallel = run_once(args.config, args.workers, Path(scratch) / f"parallel-{round_index}", codecs)
            same = parallel.equals(serial)
            print(f"round {round_index + 1}: --workers {args.workers} {parallel_s:.1f} s, "
                  f"speed-up {serial_s / parallel_s:.2f}x, rows equal but for timing: {same}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
