"""What reduced precision costs a learned codec: rate and PSNR at bf16 (or fp16) beside fp32, and the speed gained.

For each quality of the checkpoint, on the tiles of a config, the codec (as the harness builds it; torch on one
thread, the codecs' default) codes every tile in fp32 and in each other precision asked for, and the script prints the mean rate
(bytes of the real streams), the mean PSNR (of the normalized tiles) and their change against fp32, with the
analysis and synthesis networks' milliseconds per tile. It then checks that a stream written at the reduced
precision decodes on the CPU in fp32 to the same latent the writing codec reads from it: the means and tables
come from the fixed-point networks, so a stream does not depend on the precision or device it was written with.

    .venv/bin/python benchmarks/precision_quality.py [--device cpu|cuda] [--config benchmarks.yaml | --tiles T.npy]
        [--checkpoint checkpoints/autoencoder-gdn-dct-light-checkerboard.pt] [--qualities 0,4,8]
        [--precisions bf16] [--max-tiles N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from autoencoder_throughput import run_header
from benchmark_tiles import benchmark_tiles
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder

from harness.timing import synchronizer_for

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "autoencoder-gdn-dct-light-checkerboard.pt"


def coded(codec: CheckerboardAutoencoder, tiles: list[np.ndarray]) -> dict[str, object]:
    """Rate, PSNR, streams and per-tile network milliseconds of one precision."""
    coder, synchronize = codec.coder, synchronizer_for(codec.device)
    start = time.perf_counter()
    analyses = coder.analyse(tiles)
    if synchronize:
        synchronize()
    analysis_s = time.perf_counter() - start
    streams = coder.write(analyses)
    readings = coder.read(streams, [tile.shape for tile in tiles])
    start = time.perf_counter()
    decoded = coder.synthesize(readings, [tile.shape for tile in tiles])
    if synchronize:
        synchronize()
    synthesis_s = time.perf_counter() - start
    return {
        "bpp": np.mean([8 * len(stream) / tile.size for stream, tile in zip(streams, tiles)]),
        "psnr": np.mean([10 * np.log10(1 / np.mean((out - tile) ** 2)) for out, tile in zip(decoded, tiles)]),
        "analysis_ms": 1000 * analysis_s / len(tiles),
        "synthesis_ms": 1000 * synthesis_s / len(tiles),
        "streams": streams,
        "latents": [reading.latent for reading in readings],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--tiles", type=Path, default=None,
                        help="tiles saved by benchmark_tiles.py, instead of reading the config's (GPU machines)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--qualities", default="0,4,8")
    parser.add_argument("--precisions", default="bf16", help="comma-separated precisions to set beside fp32")
    parser.add_argument("--max-tiles", type=int, default=None, help="the config's first N tiles only (dry runs)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    tiles = benchmark_tiles(args.config, args.tiles)[: args.max_tiles]
    precisions = ["fp32", *args.precisions.split(",")]
    print(run_header(torch.device(args.device)))
    print(f"{len(tiles)} tiles of {(args.tiles or args.config).name}; {args.checkpoint.name}")
    print(f"{'quality':>7} {'precision':>9} {'bpp':>8} {'rate change':>11} {'PSNR dB':>8} {'PSNR change':>11} "
          f"{'analysis ms':>11} {'synthesis ms':>12} {'decodes on CPU fp32':>19}")
    for quality in (float(value) for value in args.qualities.split(",")):
        cpu_reader = CheckerboardAutoencoder(checkpoint=str(args.checkpoint), quality=quality).coder
        reference = None
        for precision in precisions:
            codec = CheckerboardAutoencoder(checkpoint=str(args.checkpoint), quality=quality, device=args.device,
                                            precision=precision)
            coded(codec, tiles[:1])  # warm-up
            result = coded(codec, tiles)
            reference = reference or result
            readings = cpu_reader.read(result["streams"], [tile.shape for tile in tiles])
            same = all(np.array_equal(reading.latent, latent) for reading, latent in zip(readings, result["latents"]))
            print(f"{quality:7g} {precision:>9} {result['bpp']:8.5f} {result['bpp'] / reference['bpp'] - 1:+11.3%} "
                  f"{result['psnr']:8.4f} {result['psnr'] - reference['psnr']:+11.4f} {result['analysis_ms']:11.1f} "
                  f"{result['synthesis_ms']:12.1f} {'yes' if same else 'NO':>19}")


if __name__ == "__main__":
    main()
