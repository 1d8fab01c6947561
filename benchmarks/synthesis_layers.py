"""The decoder layers that run in another form than they are stored in, timed in both forms on a checkpoint's weights.

Two layers of a gdn-dct decoder are stored as transposed convolutions with one output channel, which oneDNN runs
poorly on a CPU, and run as convolutions followed by a pixel shuffle (``model.block_transform``,
``model.sub_pixel``): the block transform's inverse, and the last layer to the image. For each, on the input a
batch of 256 px tiles gives it, this prints the median time of ``conv_transpose2d`` and of the form the codec runs
(taking turns, after a warm-up) and the largest difference of their outputs; then the whole decoder network both
ways, on a latent drawn at the model's scale.

    .venv/bin/python benchmarks/synthesis_layers.py [CHECKPOINT] [--batch-size 4] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from harness_codecs._autoencoder.model import block_transform
from harness_codecs._autoencoder.model.block_transform import BLOCK
from harness_codecs._autoencoder.model.sub_pixel import SubPixelToImage
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint

from harness.environment import load_average

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "autoencoder-gdn-dct-light-checkerboard.pt"
TILE = 256


def as_stored(layer: torch.nn.ConvTranspose2d, values: torch.Tensor) -> torch.Tensor:
    """The layer as its weights describe it: ``conv_transpose2d`` with its own settings."""
    return F.conv_transpose2d(values, layer.weight, layer.bias, layer.stride, layer.padding, layer.output_padding)


def alternating(first: Callable[[], torch.Tensor], second: Callable[[], torch.Tensor],
                repeats: int) -> tuple[float, float, float]:
    """Median milliseconds of each, called in turns after a warm-up, and the largest difference of their outputs."""
    difference = float((first() - second()).abs().max())
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, spent in zip((first, second), times):
            began = time.perf_counter()
            function()
            spent.append(time.perf_counter() - began)
    first_ms, second_ms = (1e3 * sorted(spent)[len(spent) // 2] for spent in times)
    return first_ms, second_ms, difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, nargs="?", default=SHIPPED)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model(load_checkpoint(args.checkpoint), args.checkpoint).eval()
    synthesis = model.decoder
    last = synthesis.network[-1]
    generator = torch.Generator().manual_seed(0)
    side = TILE // BLOCK
    latent = (4.0 * torch.randn(args.batch_size, model.spec.latent_channels, side, side, generator=generator)
              ).round().contiguous(memory_format=torch.channels_last)
    last_input = torch.randn(args.batch_size, last.in_channels, TILE // 2, TILE // 2, generator=generator
                             ).contiguous(memory_format=torch.channels_last)
    print(f"{args.checkpoint.name}; batch of {args.batch_size} tiles of {TILE} px; torch threads {args.threads}; "
          f"{args.repeats} repeats; load average {load_average()}")
    print("| layer | conv_transpose2d (ms) | as the codec runs it (ms) | largest difference |")
    print("|---|---:|---:|---:|")
    def stored_decoder() -> torch.Tensor:
        with mock.patch.object(SubPixelToImage, "forward", as_stored), \
                mock.patch.object(block_transform, "blocks_from_coefficients",
                                  lambda values, weight: F.conv_transpose2d(values, weight, stride=BLOCK)):
            return synthesis(latent)

    with torch.inference_mode():
        rows = {
            "block transform, inverse": alternating(
                lambda: as_stored(synthesis.linear, latent),
                lambda: block_transform.blocks_from_coefficients(latent, synthesis.linear.weight), args.repeats),
            "last layer, to the image": alternating(lambda: as_stored(last, last_input), lambda: last(last_input),
                                                    args.repeats),
            "whole decoder network": alternating(stored_decoder, lambda: synthesis(latent), args.repeats),
        }
    for name, (stored, running, difference) in rows.items():
        print(f"| {name} | {stored:.2f} | {running:.2f} | {difference:.1e} |")


if __name__ == "__main__":
    main()
