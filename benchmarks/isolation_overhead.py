"""What running the codecs in a worker process (``timing: {isolate: true}``) costs, measured on a whole run.

The same config runs in-process and isolated, alternating (in, iso, in, iso, ...) so that a drift in the
machine's load hits both alike. Reported: each run's wall time, and per codec the median over its points of
the encode and decode MPix/s (the speeds the report shows), isolated / in-process, with the spread over
rounds. The rows other than timing are checked to be identical.

    .venv/bin/python benchmarks/isolation_overhead.py [benchmarks.yaml] [--rounds 2] [--codecs a,b]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from harness.config import load_config
from harness.results import TIMING_COLUMNS
from harness.run import RunOptions, run_benchmark

SPEEDS = ("encode_mpix_s", "decode_mpix_s")


def run_once(config_path: Path, isolate: bool, codecs: tuple[str, ...] | None, run_dir: Path) -> tuple[float, pd.DataFrame]:
    config, registry = load_config(config_path)
    config = dataclasses.replace(config, timing=dataclasses.replace(config.timing, isolate=isolate))
    started = time.perf_counter()
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, codec_names=codecs, progress=False, visual_tiles=0))
    return time.perf_counter() - started, pd.read_csv(run_dir / "results.csv", keep_default_na=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="benchmarks.yaml", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--codecs", help="comma-separated subset")
    args = parser.parse_args()
    codecs = tuple(args.codecs.split(",")) if args.codecs else None
    print(f"load average at start: {os.getloadavg()}, cores: {os.cpu_count()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    walls: dict[bool, list[float]] = {False: [], True: []}
    speeds: dict[bool, list[pd.DataFrame]] = {False: [], True: []}
    reference = None
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for isolate in (False, True):
                wall, rows = run_once(args.config, isolate, codecs, Path(scratch) / f"{round_index}-{isolate}")
                walls[isolate].append(wall)
                speeds[isolate].append(rows.groupby("codec")[list(SPEEDS)].median())
                measured = rows.drop(columns=list(TIMING_COLUMNS))
                if reference is None:
                    reference = measured
                assert measured.equals(reference), "an isolated run's rows differ from the in-process run's"
                print(f"round {round_index + 1}, {'isolated ' if isolate else 'in-process'}: {wall:6.1f} s wall")
    print(f"load average at end: {os.getloadavg()}")
    print(f"\nwall time: in-process {', '.join(f'{w:.1f}' for w in walls[False])} s; "
          f"isolated {', '.join(f'{w:.1f}' for w in walls[True])} s")
    ratios = [iso / inproc for iso, inproc in zip(speeds[True], speeds[False])]
    table = pd.concat({f"{speed} iso/in ({kind})": getattr(pd.concat([r[speed] for r in ratios], axis=1), kind)(axis=1)
                       for speed in SPEEDS for kind in ("min", "max")}, axis=1)
    print("\nper codec, median speed over points, isolated / in-process (min and max over rounds):")
    print(table.round(2).to_string())
    print(f"\nmedian ratio over codecs: encode {statistics.median(pd.concat(ratios)[SPEEDS[0]]):.2f}, "
          f"decode {statistics.median(pd.concat(ratios)[SPEEDS[1]]):.2f}")


if __name__ == "__main__":
    main()
