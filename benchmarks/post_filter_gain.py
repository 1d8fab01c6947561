"""What each tile's post-filter gains: a config's tiles coded with the encoder's choice of post-filter and without
any, side by side.

Both columns are real streams of one model and one latent (the same range-coded words; a tile with a filter carries
16 bytes more). For each quality it prints the mean bpp and PSNR (valid pixels, as the harness scores them) of
both, the share of tiles that got a filter, and the encoding and decoding time of both (one torch thread, the
codecs' default; median of ``--repeats`` calls over all tiles, the two taking turns).

    .venv/bin/python benchmarks/post_filter_gain.py [CHECKPOINT] [--config benchmarks.yaml] [--qualities 0,...,8]
        [--repeats 3]
"""

from __future__ import annotations

import numpy as np
from side_by_side import parsed_arguments, without_and_with

from harness.api import MetricInput
from harness.config import load_config
from harness.environment import load_average
from harness.metrics import psnr
from harness.tiles import load_tiles
from harness.timing import time_call


def main() -> None:
    args = parsed_arguments(__doc__.split("\n\n")[0])
    loaded, registry = load_config(args.config)
    loaded_tiles = load_tiles(loaded, registry)
    tiles = [tile.data for tile in loaded_tiles]
    shapes = [tile.shape for tile in tiles]
    pixels = sum(tile.size for tile in tiles)
    print(f"{args.checkpoint.name} on {len(tiles)} tiles of {args.config}; load average {load_average()}")
    print("| quality | bpp without | bpp with | change | PSNR without | PSNR with | change (dB) | tiles filtered "
          "| encode s without | with | decode s without | with |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for quality in [float(value) for value in args.qualities.split(",")]:
        variants = without_and_with(args.checkpoint, quality, lambda coder: coder.without_post_filter())
        codec = variants["with"]
        encode_times: dict[str, list[float]] = {name: [] for name in variants}
        decode_times: dict[str, list[float]] = {name: [] for name in variants}
        streams, decoded = {}, {}
        for _ in range(args.repeats):  # the variants take turns, so that a change in load hits both
            for name, variant in variants.items():
                timed = time_call(lambda variant=variant: variant.encode_batch(tiles), 0, 1)
                streams[name] = timed.result
                encode_times[name].append(timed.seconds)
                timed = time_call(lambda variant=variant, name=name: variant.decode_batch(streams[name], shapes), 0, 1)
                decoded[name] = timed.result
                decode_times[name].append(timed.seconds)
        bpp = {name: 8 * sum(map(len, coded)) / pixels for name, coded in streams.items()}
        quality_db = {name: np.mean([psnr(MetricInput(tile.data, out, tile.mask, tile.db_range))["psnr"]
                                     for tile, out in zip(loaded_tiles, decoded[name])]) for name in variants}
        filtered = np.mean([codec.coder.unpacked(stream)[1].post_filter is not None for stream in streams["with"]])
        print(f"| {quality:g} | {bpp['without']:.4f} | {bpp['with']:.4f} | {100 * (bpp['with'] / bpp['without'] - 1):+.2f} % "
              f"| {quality_db['without']:.3f} | {quality_db['with']:.3f} | {quality_db['with'] - quality_db['without']:+.3f} "
              f"| {100 * filtered:.0f} % | {np.median(encode_times['without']):.2f} | {np.median(encode_times['with']):.2f} "
              f"| {np.median(decode_times['without']):.2f} | {np.median(decode_times['with']):.2f} |", flush=True)


if __name__ == "__main__":
    main()
