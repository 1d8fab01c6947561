"""Harness overhead for JPEG 2000: the codec plugin as the harness times it vs glymur called directly.

Both sides code the same default tiles at the same rate points with the same
OpenJPEG settings, each call timed as the median of repeats after a warm-up.
"direct" is the least a user could write: quantize to uint16, write a
codestream with glymur to /dev/shm, read the bytes; write the bytes, read them
back with glymur. The ratio says what the plugin layer (scratch folders,
comment stripping, validation, scaling) costs on top of OpenJPEG itself.

Also reported, for transparency: the harness's full time per row, which adds
the metrics (not part of any codec timing).

    .venv/bin/python benchmarks/jpeg2000_overhead.py [benchmarks.yaml]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import glymur
import numpy as np

from harness.config import CodecConfig, load_config
from harness.rate_points import RatePoint
from harness.measure import Measuring, RunIdentity, measure_batch, prepare_points
from harness.tiles import load_tiles
from harness.timing import time_call
from harness_codecs.jpeg2000 import RESOLUTIONS, SCRATCH_DIR, Jpeg2000

RATES = (0.25, 0.5, 1.0, 2.0)
WARMUP, REPEATS = 1, 5


def direct_encode(tile: np.ndarray, bpp: float, path: Path) -> bytes:
    samples = np.round(tile * 65535).astype(np.uint16)
    glymur.Jp2k(path, data=samples, numres=RESOLUTIONS, irreversible=True, cratios=[16 / bpp])
    return path.read_bytes()


def direct_decode(stream: bytes, path: Path) -> np.ndarray:
    path.write_bytes(stream)
    return glymur.Jp2k(path)[:] / np.float32(65535)


def per_tile_seconds(tiles, encode, decode) -> float:
    """Median over tiles of (encode + decode), each the median of REPEATS after WARMUP."""
    totals = []
    for tile in tiles:
        encoded = time_call(lambda: encode(tile.data), WARMUP, REPEATS)
        decoded = time_call(lambda: decode(encoded.result, tile.shape), WARMUP, REPEATS)
        totals.append(encoded.seconds + decoded.seconds)
    return statistics.median(totals)


def main(config_path: str = "benchmarks.yaml") -> None:
    config, registry = load_config(config_path)
    tiles = load_tiles(config, registry)
    megapixels = tiles[0].data.size / 1e6
    print(f"{len(tiles)} tiles of {tiles[0].shape[0]}x{tiles[0].shape[1]}, glymur {glymur.__version__}, "
          f"OpenJPEG {glymur.version.openjpeg_version}")
    print(f"{'bpp':>5} {'direct ms':>10} {'harness ms':>11} {'overhead':>9} {'row incl. metrics ms':>21}")
    with tempfile.TemporaryDirectory(dir=SCRATCH_DIR) as folder:
        path = Path(folder) / "tile.j2k"
        for bpp in RATES:
            codec = Jpeg2000(bpp=bpp)
            direct = per_tile_seconds(tiles, lambda tile: direct_encode(tile, bpp, path),
                                      lambda stream, shape: direct_decode(stream, path))
            harness = per_tile_seconds(tiles, codec.encode, codec.decode)
            row_seconds = full_row_seconds(config, registry, tiles, bpp)
            print(f"{bpp:>5} {direct * 1e3:>10.2f} {harness * 1e3:>11.2f} {harness / direct - 1:>+9.1%} "
                  f"{row_seconds * 1e3:>21.1f}")
    print(f"(encode+decode per tile; {megapixels:.3f} MPix per tile)")


def full_row_seconds(config, registry, tiles, bpp: float) -> float:
    """Wall time of the run's whole row (warm-up, timed repeats, metrics) per tile."""
    codec_config = CodecConfig("jpeg2000", (RatePoint({"bpp": bpp}),))
    prepared = prepare_points(config, [codec_config], registry, "cpu")[0]
    measuring = Measuring(RunIdentity.of(config), config.timing, registry)
    start = time.perf_counter()
    for tile in tiles:
        measure_batch(prepared, [tile], measuring)
    return (time.perf_counter() - start) / len(tiles)


if __name__ == "__main__":
    main(*sys.argv[1:])
