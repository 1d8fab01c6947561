"""The tiles a learned-codec benchmark runs on: a config's, or the same saved to a ``.npy`` file.

A GPU machine lent for a few minutes may lack the config's dataset reader: rasterio's wheel (39 MB) does not fit
beside the repository (55 MB) in the 64 MB that travels to it. So the tiles are saved here and read there:

    .venv/bin/python benchmarks/benchmark_tiles.py benchmarks.yaml .gpu/tiles.npy     # here
    benchmarks/entropy_coding_throughput.py --tiles .gpu/tiles.npy ...                 # there

The file holds the tiles as a run builds them (normalized float32, N x H x W), nothing else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.config import load_config
from harness.tiles import load_tiles


def benchmark_tiles(config: Path, saved: Path | None = None) -> list[np.ndarray]:
    """The tiles in ``saved`` when given, else the config's (read with its dataset plugin)."""
    if saved is not None:
        return list(np.load(saved, allow_pickle=False))
    loaded, registry = load_config(config)
    return [tile.data for tile in load_tiles(loaded, registry)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Save a config's tiles to a .npy file for benchmark scripts.")
    parser.add_argument("config", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    tiles = benchmark_tiles(args.config)
    if len({tile.shape for tile in tiles}) != 1:
        raise SystemExit(f"{args.config}: its tiles differ in shape; a .npy file holds tiles of one shape")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.output, np.stack(tiles).astype(np.float32))
    print(f"{len(tiles)} tiles of {tiles[0].shape[0]}x{tiles[0].shape[1]} from {args.config} -> {args.output}")


if __name__ == "__main__":
    main()
