"""Encode and decode throughput (MPix/s) of every available codec point of a config, on its tiles.

Each codec point is constructed as the harness constructs it, and each tile's
encode and decode are timed with the harness's own ``time_call`` (median of
repeats after warm-up), so the figures match the report's timing columns but
without the metrics. Reported per point: the median over tiles of MPix/s,
and the mean rate, so speed can be read against what each point buys.
Codecs that are unavailable on this machine are listed and skipped.

    .venv/bin/python benchmarks/codec_throughput.py [benchmarks.yaml] [--codecs a,b]
"""

from __future__ import annotations

import argparse
import statistics

from harness.config import load_config
from harness.environment import cpu_model
from harness.measure import PreparedPoint, prepare_points
from harness.run import resolve_device
from harness.tiles import load_tiles
from harness.timing import synchronizer_for, time_call

WARMUP, REPEATS = 1, 3


def point_throughput(prepared: PreparedPoint, tiles, device: str) -> tuple[float, float, float]:
    """Median encode and decode MPix/s over the tiles, and the mean achieved bits per pixel."""
    synchronize = synchronizer_for(device)
    encode_rates, decode_rates, bpps = [], [], []
    for tile in tiles:
        megapixels = tile.data.size / 1e6
        encoded = time_call(lambda: prepared.codec.encode(tile.data), WARMUP, REPEATS, synchronize)
        decoded = time_call(lambda: prepared.codec.decode(encoded.result, tile.shape), WARMUP, REPEATS, synchronize)
        encode_rates.append(megapixels / encoded.seconds)
        decode_rates.append(megapixels / decoded.seconds)
        bpps.append(8 * len(encoded.result) / tile.data.size)
    return statistics.median(encode_rates), statistics.median(decode_rates), statistics.fmean(bpps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="benchmarks.yaml")
    parser.add_argument("--codecs", help="comma-separated codec names (default: every codec of the config)")
    args = parser.parse_args(argv)
    config, registry = load_config(args.config)
    wanted = set(args.codecs.split(",")) if args.codecs else None
    codecs = [c for c in config.codecs if wanted is None or c.name in wanted]
    available = [c for c in codecs if not registry.codec(c.name).unavailable]
    for skipped in (c for c in codecs if c not in available):
        print(f"skipped {skipped.name}: {registry.codec(skipped.name).unavailable}")
    device = resolve_device(config.device)
    tiles = load_tiles(config, registry)
    print(f"CPU: {cpu_model()}; device: {device}; {len(tiles)} tiles of {tiles[0].shape[0]}x{tiles[0].shape[1]}; "
          f"median of {REPEATS} after {WARMUP} warm-up per tile")
    points = prepare_points(config, available, registry, device)
    width = max(len(prepared.point.label) for prepared in points)
    print(f"{'codec':<14} {'point':<{width}} {'bpp':>7} {'encode MPix/s':>14} {'decode MPix/s':>14}")
    for prepared in points:
        encode, decode, bpp = point_throughput(prepared, tiles, device)
        print(f"{prepared.codec_name:<14} {prepared.point.label:<{width}} {bpp:>7.3f} {encode:>14.2f} {decode:>14.2f}")


if __name__ == "__main__":
    main()
