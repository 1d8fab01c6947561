"""What the scale shifts save: a config's tiles coded with each tile's chosen shifts and without any, side by side.

Without a shift the encoder writes the streams it wrote before the shift existed (format version 5 or 6, a few
bytes shorter), so the two columns are real streams of one model and one latent; the decoded tiles are identical
(``entropy_coding.scale_shift``). For each quality it prints the mean bpp of both, the change, the spread of the
chosen shifts over the tiles and bands, and the encoding time of both (one torch thread, the codecs' default;
median of ``--repeats`` calls over all tiles, the two taking turns).

    .venv/bin/python benchmarks/scale_shift_gain.py [CHECKPOINT] [--config benchmarks.yaml] [--qualities 0,...,8]
        [--repeats 3]
"""

from __future__ import annotations

import numpy as np
from benchmark_tiles import benchmark_tiles
from side_by_side import parsed_arguments, without_and_with

from harness.environment import load_average
from harness.timing import time_call


def main() -> None:
    args = parsed_arguments(__doc__.split("\n\n")[0])
    tiles = benchmark_tiles(args.config)
    pixels = sum(tile.size for tile in tiles)
    print(f"{args.checkpoint.name} on {len(tiles)} tiles of {args.config}; load average {load_average()}")
    print("| quality | bpp without | bpp with shift | change | shifts (min / median / max) | encode s without | with |")
    print("|---:|---:|---:|---:|---|---:|---:|")
    for quality in [float(value) for value in args.qualities.split(",")]:
        variants = without_and_with(args.checkpoint, quality, lambda coder: coder.without_scale_shift())
        codec = variants["with"]
        times: dict[str, list[float]] = {name: [] for name in variants}
        streams = {}
        for _ in range(args.repeats):  # the variants take turns, so that a change in load hits both
            for name, variant in variants.items():
                timed = time_call(lambda variant=variant: variant.encode_batch(tiles), 0, 1)
                streams[name] = timed.result
                times[name].append(timed.seconds)
        bpp = {name: 8 * sum(map(len, coded)) / pixels for name, coded in streams.items()}
        shifts = [shift for stream in streams["with"] for shift in codec.coder.unpacked(stream)[1].shifts]
        print(f"| {quality:g} | {bpp['without']:.4f} | {bpp['with']:.4f} | "
              f"{100 * (bpp['with'] / bpp['without'] - 1):+.2f} % | {min(shifts)} / {int(np.median(shifts))} / "
              f"{max(shifts)} | {np.median(times['without']):.2f} | {np.median(times['with']):.2f} |", flush=True)


if __name__ == "__main__":
    main()
