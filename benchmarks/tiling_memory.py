"""Peak memory while the geotiff plugin selects 64 windows from a 20,000 x 20,000 float32 scene.

A real GRD scene is about 25,000 x 16,000 pixels; loading one whole as
float64 would take over 3 GB. The plugin reads one window at a time, so its
peak should stay far below the 1 GB target whatever the scene size. The
scene is written tiled and deflate-compressed (as COGs are), dual-pol, with
NaN no-data blocks, in a temporary folder, by a child process: GDAL's block
cache fills while it compresses, and that must not count against tiling.

Reported: peak RSS of the process that builds the tiles
(``resource.getrusage``: Python, numpy and GDAL's block cache together) and
the peak of Python allocations while tiling (``tracemalloc``).

    .venv/bin/python benchmarks/tiling_memory.py [--size 20000] [--windows 64]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from harness import DatasetSettings
from harness_datasets.geotiff import GeoTiffDataset

STRIP_ROWS = 512
TARGET_BYTES = 1 << 30


def write_scene(path: Path, height: int, width: int, seed: int = 0, compress: str = "deflate") -> None:
    """A dual-pol dB scene with speckle and no-data blocks, written strip by strip (never whole in memory)."""
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 2, "dtype": "float32",
               "crs": "EPSG:32631", "transform": from_origin(500_000, 5_000_000, 10, 10), "nodata": float("nan"),
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": compress, "BIGTIFF": "IF_SAFER"}
    with rasterio.open(path, "w", **profile) as raster:
        for row in range(0, height, STRIP_ROWS):
            rows = min(STRIP_ROWS, height - row)
            for band, mean_db in ((1, -11.0), (2, -18.0)):
                strip = (mean_db + 10 * np.log10(rng.gamma(4.4, 1 / 4.4, (rows, width)))).astype(np.float32)
                strip[:, : width // 10] = np.nan  # swath border
                if (row // STRIP_ROWS) % 7 == 3:
                    strip[:, width // 2 : width // 2 + width // 5] = np.nan  # a no-data block
                raster.write(strip, band, window=Window(0, row, width, rows))


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--tile-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scene.tif"
        started = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(target=write_scene, args=(path, args.size, args.size))
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise SystemExit(f"writing the scene failed (exit code {writer.exitcode})")
        print(f"wrote {args.size}x{args.size} dual-pol float32 ({path.stat().st_size / 1e6:.0f} MB on disk) "
              f"in {time.perf_counter() - started:.0f} s; peak RSS before tiling {peak_rss_bytes() / 2**20:.0f} MiB")
        settings = DatasetSettings(tile_size=args.tile_size, max_tiles=args.windows, polarisations=("VV", "VH"),
                                   normalization={"VV": (-25.0, 5.0), "VH": (-32.0, -2.0)}, seed=0,
                                   min_valid_fraction=0.9, base_dir=Path(folder), cache_dir=Path(folder))
        tracemalloc.start()
        started = time.perf_counter()
        tiles = list(GeoTiffDataset(settings, paths=[str(path)], units="db", bands={"VV": 1, "VH": 2}).tiles())
        elapsed = time.perf_counter() - started
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = peak_rss_bytes()
    print(f"{len(tiles)} tiles ({len(tiles) // 2} windows of {args.tile_size}px) in {elapsed:.1f} s")
    print(f"peak RSS {rss / 2**20:.0f} MiB (target < {TARGET_BYTES / 2**20:.0f} MiB); "
          f"peak Python allocations while tiling {traced_peak / 2**20:.1f} MiB")
    return 0 if rss < TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
