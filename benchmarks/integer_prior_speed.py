"""The fixed-point prior's int8 products against float64 sums of the same layers, side by side in one process.

An int8 checkpoint's prior layers run on the CPU as int8 products of its codes and the activations' 7-bit digits
(``fixed_point.integer_products``); the same layers summed in float64 (the kernels a CUDA device runs) give the same
integers, so the streams must be byte-identical either way (checked on every round). The two take turns within each
round, encoding and then decoding every tile in batches, at the codec's torch threads; MPix/s as median [slowest,
fastest] over the rounds.

    .venv/bin/python benchmarks/integer_prior_speed.py [--config benchmarks.yaml] [--checkpoint C] [--rounds 5]
        [--qualities 0,4,8] [--trellis-qualities 3,4,6,8] [--precision auto] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from benchmark_tiles import benchmark_tiles
from harness_codecs._autoencoder.fixed_point import networks
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder

from harness.environment import load_average
from harness.timing import torch_threads

ROOT = Path(__file__).resolve().parents[1]
WHERE_INT8_RUNS = networks.integer_products_on


def use_int8_products(enabled: bool) -> None:
    """Switch the fixed-point layers between int8 products (as shipped) and float64 sums (as on CUDA)."""
    networks.integer_products_on = WHERE_INT8_RUNS if enabled else (lambda device: False)


def timed_rounds(codec: CheckerboardAutoencoder, batches: list[list[np.ndarray]],
                 rounds: int) -> dict[str, list[float]]:
    """Seconds of encoding and decoding every batch, per round, with int8 products and float64 sums in turn."""
    seconds: dict[str, list[float]] = {f"{kind} {step}": [] for kind in ("int8", "float64")
                                       for step in ("encode", "decode")}
    reference = None
    for _ in range(rounds):
        for kind in ("int8", "float64"):
            use_int8_products(kind == "int8")
            start = time.perf_counter()
            streams = [codec.encode_batch(batch) for batch in batches]
            seconds[f"{kind} encode"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for batch_streams, batch in zip(streams, batches):
                codec.decode_batch(batch_streams, [tile.shape for tile in batch])
            seconds[f"{kind} decode"].append(time.perf_counter() - start)
            joined = b"".join(stream for batch_streams in streams for stream in batch_streams)
            reference = reference or joined
            if joined != reference:
                raise SystemExit("int8 products and float64 sums wrote different streams")
    use_int8_products(True)
    return seconds


def cell(megapixels: float, seconds: list[float]) -> str:
    speeds = sorted(megapixels / value for value in seconds)
    return f"{speeds[len(speeds) // 2]:5.2f} [{speeds[0]:.2f}-{speeds[-1]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--checkpoint", type=Path,
                        default=ROOT / "checkpoints" / "autoencoder-gdn-dct-light-checkerboard.pt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--qualities", default="0,4,8", help="rounded qualities (comma-separated; empty: none)")
    parser.add_argument("--trellis-qualities", default="3,4,6,8",
                        help="trellis-coded qualities (comma-separated; empty: none)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    tiles = benchmark_tiles(args.config)
    batches = [tiles[start:start + args.batch_size] for start in range(0, len(tiles), args.batch_size)]
    megapixels = sum(tile.size for tile in tiles) / 1e6
    points = [(float(quality), quantizer) for quantizer, qualities in (("scalar", args.qualities),
                                                                        ("trellis", args.trellis_qualities))
              for quality in qualities.split(",") if quality]
    print(f"{len(tiles)} tiles of {args.config.name}, batches of {args.batch_size}, {args.rounds} rounds, precision "
          f"{args.precision}; load average {load_average()}; MPix/s median [slowest-fastest]")
    print(f"{'point':14} {'int8 encode':>19} {'float64 encode':>19} {'int8 decode':>19} {'float64 decode':>19}")
    for quality, quantizer in points:
        codec = CheckerboardAutoencoder(checkpoint=str(args.checkpoint), quality=quality, precision=args.precision,
                                        quantizer=quantizer)
        with torch_threads(codec.threads):
            seconds = timed_rounds(codec, batches, args.rounds)
        print(f"{quantizer} q{quality:g}".ljust(14) + "".join(
            f" {cell(megapixels, seconds[column]):>19}"
            for column in ("int8 encode", "float64 encode", "int8 decode", "float64 decode")), flush=True)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
