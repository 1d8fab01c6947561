"""A stored copy of what the default benchmark produces on its first two tiles: every stream's SHA-256 and every row's
non-timing results, with the library versions and the CPU they were made with.

Refactoring must not change a result: ``test_stored_results.py`` runs benchmarks.yaml's codecs and points on the
first 256 px window of the default test set (VV and VH) and compares the streams and rows with this copy. A change
that is meant to change results (a new codec point, a retrained checkpoint, a metric fixed) rewrites the copy, in
the same commit, with

    .venv/bin/python -m tests.stored_results

and the diff of ``tests/stored/`` shows what changed.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import yaml

from harness.config import load_config
from harness.environment import cpu_model, package_versions
from harness.measure import prepare_points
from harness.results import DEVICE, THREADS, TIMING_COLUMNS
from harness.run import RunOptions, run_benchmark
from harness.tiles import load_tiles

ROOT = Path(__file__).resolve().parents[1]
STORED = Path(__file__).resolve().parent / "stored"
STREAMS = STORED / "default-streams.csv"
RESULTS = STORED / "default-results.csv"
VERSIONS = STORED / "default-versions.json"
LIBRARIES = ("numpy", "scipy", "scikit-image", "torch", "glymur", "imagecodecs", "pillow-heif", "constriction",
             "pytorch-msssim")
"""What the streams and scores are computed with: a copy made with other versions may differ for that reason."""
MACHINE_COLUMNS = (*TIMING_COLUMNS, DEVICE, THREADS)
"""Columns that describe the machine and its speed, not the result."""


def subset_config(folder: Path) -> Path:
    """benchmarks.yaml cut to its first window (``max_tiles: 1``, both polarisations), timed once and measured in
    this process, its ``precision: auto`` points in fp32 (auto follows the CPU), written to ``folder``."""
    raw = yaml.safe_load((ROOT / "benchmarks.yaml").read_text())
    raw["dataset"]["max_tiles"] = 1
    raw["dataset"]["paths"] = [str(ROOT / path) for path in raw["dataset"]["paths"]]
    raw["dataset"]["labels"]["folder"] = str(ROOT / raw["dataset"]["labels"]["folder"])
    for codec in raw["codecs"]:
        for point in codec["points"]:
            if "checkpoint" in point:
                point["checkpoint"] = str(ROOT / point["checkpoint"])
            if point.get("precision") == "auto":
                point["precision"] = "fp32"
    raw["timing"] = {"warmup": 0, "repeats": 1, "isolate": False}
    path = folder / "default-subset.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def stream_digests(config_path: Path) -> list[dict[str, str]]:
    """Each point's stream of each tile, coded as the runner codes them (one batch per point), by SHA-256."""
    config, registry = load_config(config_path)
    tiles = load_tiles(config, registry)
    records = []
    for prepared in prepare_points(config, config.codecs, registry, "cpu"):
        streams = prepared.codec.encode_batch([tile.data for tile in tiles])
        for tile, stream in zip(tiles, streams):
            records.append({"codec": prepared.codec_name, "point": prepared.point.label, "tile_id": tile.tile_id,
                            "bytes": str(len(stream)), "sha256": hashlib.sha256(stream).hexdigest()})
    return [_rooted(record) for record in records]


def result_rows(config_path: Path, run_dir: Path) -> list[dict[str, str]]:
    """The subset run's results.csv rows as written, without the machine's columns."""
    config, registry = load_config(config_path)
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False, report=False))
    with (run_dir / "results.csv").open(newline="") as file:
        rows = [{key: value for key, value in row.items() if key not in MACHINE_COLUMNS} for row in csv.DictReader(file)]
    return [_rooted(row) for row in rows]


def _rooted(record: dict[str, str]) -> dict[str, str]:
    """The record with this checkout's folder written ``<root>``: the subset config names checkpoints by absolute
    path, which a point's label and options repeat."""
    return {key: value.replace(str(ROOT), "<root>") for key, value in record.items()}


def read_records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def made_with() -> dict[str, str | None]:
    """The versions of ``LIBRARIES`` here, of the OpenJPEG that glymur calls, and the CPU: numpy's and torch's
    kernels differ between CPUs (AVX-512 or not), and so do the last bits of float32 results."""
    import glymur

    return {**package_versions(LIBRARIES), "openjpeg": glymur.version.openjpeg_version, "cpu": cpu_model()}


def _write(path: Path, records: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)


def store(folder: Path) -> None:
    """Rewrite the stored copy from this working tree."""
    config_path = subset_config(folder)
    STORED.mkdir(exist_ok=True)
    _write(STREAMS, stream_digests(config_path))
    _write(RESULTS, result_rows(config_path, folder / "run"))
    VERSIONS.write_text(json.dumps(made_with(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        store(Path(scratch))
    print(f"wrote {STREAMS.relative_to(ROOT)}, {RESULTS.relative_to(ROOT)}, {VERSIONS.relative_to(ROOT)}")
