"""What a compact weight format costs a learned codec: convert a checkpoint, then measure rate and PSNR of both.

Writes CHECKPOINT with its weights in ``--format`` (``runtime.compact.in_weight_format``: the weights rounded
to the format, the entropy tables computed from exactly those weights) to ``--output``, then codes the first
``--tiles`` tiles of ``--config`` with the original and with the converted checkpoint, through the codec plugin
the harness runs for that checkpoint (``autoencoder``, ``autoencoder_factorized``, ``_hyperprior`` or
``_checkerboard``; torch on one thread, the codecs' default), at each of ``--qualities`` for a variable-rate
model. It prints a markdown table: the mean rate (bytes of the real streams, as the results rows count them)
and the mean PSNR (the harness's ``psnr`` metric, over each tile's valid pixels) of both, their changes, and
both files' sizes.

    .venv/bin/python benchmarks/weight_precision.py CHECKPOINT --format int8 --output OUT.pt
        [--config benchmarks.yaml] [--tiles 8] [--qualities 0,4,8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from harness_codecs._autoencoder.runtime.compact import in_weight_format
from harness_codecs._autoencoder.runtime.weights import WEIGHT_FORMATS

from harness import Codec
from harness.api import MetricInput, Tile
from harness.config import load_config
from harness.metrics import psnr
from harness.tiles import load_tiles

ROOT = Path(__file__).resolve().parents[1]


def codec_name(checkpoint: Checkpoint) -> str:
    """The codec plugin that runs a checkpoint of this entropy model."""
    return "autoencoder" if checkpoint.spec.entropy == "none" else f"autoencoder_{checkpoint.spec.entropy}"


def qualities(checkpoint: Checkpoint, asked: list[float]) -> list[float | None]:
    """The asked qualities within a variable-rate checkpoint's levels; ``[None]`` for a single-rate one."""
    levels = checkpoint.spec.rate_levels
    return [quality for quality in asked if quality <= levels - 1] if levels else [None]


def measured(codec: Codec, tiles: list[Tile]) -> tuple[float, float]:
    """Mean bpp of the real streams and mean PSNR of the decoded tiles."""
    streams = codec.encode_batch([tile.data for tile in tiles])
    decoded = codec.decode_batch(streams, [tile.shape for tile in tiles])
    bpp = np.mean([8 * len(stream) / tile.data.size for stream, tile in zip(streams, tiles)])
    scores = [psnr(MetricInput(tile.data, reconstruction, tile.mask, tile.db_range))["psnr"]
              for tile, reconstruction in zip(tiles, decoded)]
    return float(bpp), float(np.mean(scores))


def megabytes(path: Path) -> float:
    return path.stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--format", required=True, choices=WEIGHT_FORMATS, help="weight format of the output")
    parser.add_argument("--output", type=Path, required=True, help="where to write the converted checkpoint")
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml", help="benchmark whose tiles to code")
    parser.add_argument("--tiles", type=int, default=8, help="the config's first N tiles")
    parser.add_argument("--qualities", default="0,4,8", help="qualities of a variable-rate checkpoint")
    args = parser.parse_args()
    if args.output.resolve() == args.checkpoint.resolve():
        raise SystemExit(f"--output {args.output}: that is the checkpoint being converted; write it elsewhere")

    torch.set_num_threads(1)
    try:
        original = load_checkpoint(args.checkpoint)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    start = time.perf_counter()
    save_checkpoint(in_weight_format(original, args.format), args.output)
    converting_s = time.perf_counter() - start

    config, registry = load_config(args.config)
    tiles = load_tiles(config, registry)[: args.tiles]
    codec_class = registry.codec(codec_name(original))
    print(f"{args.checkpoint} ({original.weight_format}, {megabytes(args.checkpoint):.2f} MB) -> {args.output} "
          f"({args.format}, {megabytes(args.output):.2f} MB) in {converting_s:.1f} s; codec {codec_class.name}, "
          f"{len(tiles)} tiles of {args.config.name}, torch {torch.__version__}, 1 thread\n")
    before, after = (f"{original.weight_format}, {megabytes(args.checkpoint):.2f} MB",
                     f"{args.format}, {megabytes(args.output):.2f} MB")
    print(f"| quality | bpp ({before}) | bpp ({after}) | bpp change | PSNR dB ({before}) | PSNR dB ({after}) "
          "| PSNR change |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for quality in qualities(original, [float(value) for value in args.qualities.split(",")]):
        options = {} if quality is None else {"quality": quality}
        bpp, quality_db = measured(codec_class(checkpoint=str(args.checkpoint), **options), tiles)
        compact_bpp, compact_db = measured(codec_class(checkpoint=str(args.output), **options), tiles)
        print(f"| {'-' if quality is None else f'{quality:g}'} | {bpp:.5f} | {compact_bpp:.5f} "
              f"| {100 * (compact_bpp / bpp - 1):+.3f} % | {quality_db:.4f} | {compact_db:.4f} "
              f"| {compact_db - quality_db:+.4f} dB |")


if __name__ == "__main__":
    main()
