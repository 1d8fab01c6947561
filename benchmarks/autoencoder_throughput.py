"""Autoencoder throughput: the harness path beside the network alone, per preset and batch size.

Two things are timed side by side on the same 256x256 tiles, in one run:

- the **network alone**: ``model.encode`` / ``model.decode`` on tensors
  already on the device (the ceiling the codec could reach);
- the **harness path**, exactly as the harness calls it: the ``autoencoder``
  codec's ``encode_batch`` (float32 numpy tiles in, bytes out) and
  ``decode_batch`` (bytes in, numpy tiles out), padding, host/device copies,
  quantization, bit-packing and headers included.

Each timed call goes through ``--tiles`` distinct tiles in batches, as a
run goes through a test set: single calls of a few milliseconds spread
too widely on a shared machine. The four calls take turns within each repeat (after one warm-up each), so a
change in the machine's load hits them alike; each figure gives the slowest,
median and fastest repeat in MPix/s, and ``ratio`` is the harness path's
median over the network's. The header records the torch thread count and the
load average, the footer the load average at the end. Then, per preset, the
harness path's decode on the CPU with one torch thread (a ground segment's
view), and the codec's MACs per pixel and parameters (``Codec.complexity``).
Weights are randomly initialised: the work per pixel does not depend on their
values. On CUDA the peak memory allocated is reported too.

    .venv/bin/python benchmarks/autoencoder_throughput.py [--device cpu|cuda] [--presets tiny,default]
        [--batch-sizes 1,8,32] [--bits 4] [--precision fp32|bf16|fp16] [--repeats 5] [--tiles 32] [--threads N]
        [--single-thread-batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.training.loop import LATENT_RANGE
from harness_codecs._autoencoder.runtime.fixed_length_coder import autocast, model_inputs
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, spec_for
from harness_codecs._autoencoder.runtime.options import PREFERRED_BATCH_SIZES
from harness_codecs._autoencoder.runtime.quantization import dequantize, quantize
from harness_codecs.autoencoder import AutoencoderCodec

from harness.environment import cpu_model, load_average
from harness.timing import synchronizer_for, time_call

TILE_SIDE = 256


@dataclass(frozen=True)
class Speeds:
    """MPix/s of each repeat of one call."""

    repeats: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.repeats)

    def cell(self) -> str:
        return f"{min(self.repeats):7.3g} {self.median:7.3g} {max(self.repeats):7.3g}"


def interleaved(calls: dict[str, Callable[[], object]], megapixels: float, repeats: int,
                synchronize: Callable[[], None] | None) -> dict[str, Speeds]:
    """Each call warmed up once, then timed ``repeats`` times, the calls taking turns within a repeat."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            seconds[name].append(time_call(call, 0, 1, synchronize).seconds)
    return {name: Speeds([megapixels / value for value in values]) for name, values in seconds.items()}


def random_codec(preset: str, bits: int, folder: Path, device: str, precision: str) -> AutoencoderCodec:
    """The ``autoencoder`` codec on a randomly initialised model of the preset, through a checkpoint file as a
    user's would be."""
    torch.manual_seed(0)
    spec = spec_for(preset)
    path = folder / f"{preset}-{device}.pt"
    save_checkpoint(Checkpoint(spec=spec, bits=bits, latent_range=LATENT_RANGE, normalization={},
                               state_dict=Autoencoder(spec).state_dict()), path)
    return AutoencoderCodec(checkpoint=str(path), device=device, precision=precision)


def tiles_of(batch_size: int) -> list[np.ndarray]:
    return list(np.random.default_rng(0).random((batch_size, TILE_SIDE, TILE_SIDE), dtype=np.float32))


def measure(codec: AutoencoderCodec, batch_size: int, tile_count: int, repeats: int) -> dict[str, Speeds]:
    """Network alone and harness path, encode and decode, each timed call going through ``tile_count``
    distinct tiles (at least one batch) in batches of ``batch_size``, as a run goes through a test set."""
    coder, device = codec.coder, codec.coder.device
    batches = batched(tiles_of(max(tile_count, batch_size)), batch_size)
    shapes = [[tile.shape for tile in batch] for batch in batches]
    streams = [codec.encode_batch(batch) for batch in batches]
    inputs = [model_inputs(batch, device) for batch in batches]
    with torch.inference_mode():
        with autocast(device, codec.precision):
            latents = [coder.model.encode(batch) for batch in inputs]
        decoder_inputs = [dequantize(quantize(latent, coder.latent_range, coder.bits), coder.latent_range, coder.bits)
                          .contiguous(memory_format=torch.channels_last) for latent in latents]

    def network(function: Callable[[torch.Tensor], torch.Tensor], arguments: list[torch.Tensor]) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode(), autocast(device, codec.precision):
                return [function(argument) for argument in arguments]
        return call

    calls = {"network encode": network(coder.model.encode, inputs),
             "harness encode": lambda: [codec.encode_batch(batch) for batch in batches],
             "network decode": network(coder.model.decode, decoder_inputs),
             "harness decode": lambda: [codec.decode_batch(*pair) for pair in zip(streams, shapes)]}
    megapixels = sum(len(batch) for batch in batches) * TILE_SIDE**2 / 1e6
    return interleaved(calls, megapixels, repeats, synchronizer_for(device.type))


def batched(tiles: list[np.ndarray], batch_size: int) -> list[list[np.ndarray]]:
    return [tiles[start:start + batch_size] for start in range(0, len(tiles), batch_size)]


def single_thread_decode(codec: AutoencoderCodec, batch_size: int, repeats: int) -> Speeds:
    """The harness path's decode on the CPU with one torch thread."""
    tiles = tiles_of(batch_size)
    streams = codec.encode_batch(tiles)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return interleaved({"decode": lambda: codec.decode_batch(streams, [tile.shape for tile in tiles])},
                           batch_size * TILE_SIDE**2 / 1e6, repeats, None)["decode"]
    finally:
        torch.set_num_threads(threads)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model() or "unknown CPU"


def run_header(device: torch.device) -> str:
    """The machine, torch and its threads, and the load: what the figures below depend on."""
    return (f"device: {device_name(device)}; torch {torch.__version__}; torch threads {torch.get_num_threads()} "
            f"(inter-op {torch.get_num_interop_threads()}); load average {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--presets", default="tiny,default")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="autocast precision of the networks (bf16/fp16 on CUDA only)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiles", type=int, default=32,
                        help="distinct tiles each timed call goes through, in batches (at least one batch)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the side-by-side timing (default: torch's, one per core)")
    parser.add_argument("--single-thread-batch", type=int, default=PREFERRED_BATCH_SIZES["cpu"],
                        help="batch size of the single-thread CPU decode (0: skip it)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    presets = args.presets.split(",")
    print(run_header(device))
    print(f"{args.tiles} tiles of {TILE_SIDE}x{TILE_SIDE} per timed call; bits {args.bits}; precision {args.precision}; {args.repeats} repeats; "
          "MPix/s as slowest median fastest repeat; ratio = harness median / network median")
    print(f"{'preset':8} {'params':>7} {'batch':>5} | {'network encode':^23} | {'harness encode':^23} | {'ratio':>5} "
          f"| {'network decode':^23} | {'harness decode':^23} | {'ratio':>5} | {'peak MiB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        codecs = {preset: random_codec(preset, args.bits, Path(folder), args.device, args.precision)
                  for preset in presets}
        for preset, codec in codecs.items():
            parameters = codec.complexity().parameters
            for batch_size in (int(size) for size in args.batch_sizes.split(",")):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                speeds = measure(codec, batch_size, args.tiles, args.repeats)
                peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:8.0f}" if device.type == "cuda" else f"{'-':>8}"
                encode_ratio = speeds["harness encode"].median / speeds["network encode"].median
                decode_ratio = speeds["harness decode"].median / speeds["network decode"].median
                print(f"{preset:8} {parameters / 1e6:6.2f}M {batch_size:5d} | {speeds['network encode'].cell()} | "
                      f"{speeds['harness encode'].cell()} | {encode_ratio:5.2f} | {speeds['network decode'].cell()} | "
                      f"{speeds['harness decode'].cell()} | {decode_ratio:5.2f} | {peak}", flush=True)
        print(f"\nper preset: complexity (MACs per pixel of a 256x256 tile), and the harness path's decode on the "
              f"CPU with one torch thread at batch {args.single_thread_batch} (MPix/s as above)")
        for preset in presets:
            cpu_codec = codecs[preset] if device.type == "cpu" else random_codec(preset, args.bits, Path(folder),
                                                                                "cpu", "fp32")
            complexity = cpu_codec.complexity()
            single = (single_thread_decode(cpu_codec, args.single_thread_batch, args.repeats).cell()
                      if args.single_thread_batch else "skipped")
            print(f"{preset:8} encode {complexity.encode_macs_per_pixel:,.0f} MAC/px, decode "
                  f"{complexity.decode_macs_per_pixel:,.0f} MAC/px, {complexity.parameters:,} parameters; "
                  f"single-thread decode {single}", flush=True)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
