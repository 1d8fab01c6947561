"""Autoencoder throughput: encode and decode MPix/s per preset and batch size, network vs bit-packing.

Each figure is the median of repeats after a warm-up (``harness.timing``,
with CUDA synchronised around every timed call), on 256x256 tiles. The
network half includes padding, host/device copies and (de)quantization; the
packing half is the 12-byte header plus the vectorized numpy bit-packing.
Weights are randomly initialised: the work per pixel does not depend on
their values. On CUDA the peak memory allocated during the timed calls is
reported too.

    .venv/bin/python benchmarks/autoencoder_throughput.py [--device cpu|cuda] [--presets tiny,default]
        [--batch-sizes 1,8,32] [--bits 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass

import numpy as np
import torch
from harness_codecs._autoencoder.bitstream import (
    LatentHeader,
    read_stream,
    write_stream,
)
from harness_codecs._autoencoder.fit import LATENT_RANGE
from harness_codecs._autoencoder.inference import LatentCoder
from harness_codecs._autoencoder.model import Autoencoder, parameter_count, spec_for

from harness.timing import synchronizer_for, time_call

TILE_SIDE = 256
MODEL_ID = b"\x00" * 4


@dataclass(frozen=True)
class Throughput:
    preset: str
    parameters: int
    batch_size: int
    encode_network_s: float
    encode_packing_s: float
    decode_network_s: float
    decode_unpacking_s: float
    peak_memory_mib: float | None
    """None on the CPU, where torch does not track allocations."""

    def row(self, megapixels: float) -> str:
        encode = megapixels / (self.encode_network_s + self.encode_packing_s)
        decode = megapixels / (self.decode_network_s + self.decode_unpacking_s)
        peak = f"{self.peak_memory_mib:9.0f}" if self.peak_memory_mib is not None else f"{'-':>9}"
        return (f"{self.preset:8} {self.parameters / 1e6:6.2f}M {self.batch_size:5d} {encode:9.2f} {decode:9.2f} "
                f"{self.encode_packing_s / (self.encode_network_s + self.encode_packing_s):8.1%} "
                f"{self.decode_unpacking_s / (self.decode_network_s + self.decode_unpacking_s):8.1%} {peak}")


def measure(preset: str, batch_size: int, bits: int, device: torch.device, repeats: int) -> Throughput:
    torch.manual_seed(0)
    model = Autoencoder(spec_for(preset))
    parameters = parameter_count(model)
    coder = LatentCoder(model, bits, LATENT_RANGE, device)
    tiles = list(np.random.default_rng(0).random((batch_size, TILE_SIDE, TILE_SIDE), dtype=np.float32))
    shapes = [tile.shape for tile in tiles]
    synchronize = synchronizer_for(device.type)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    encoded = time_call(lambda: coder.encode_latents(tiles), 1, repeats, synchronize)
    headers = [LatentHeader(MODEL_ID, bits, *codes.shape) for codes in encoded.result]
    packed = time_call(lambda: [write_stream(h, c) for h, c in zip(headers, encoded.result)], 1, repeats)
    unpacked = time_call(lambda: [read_stream(stream)[1] for stream in packed.result], 1, repeats)
    decoded = time_call(lambda: coder.decode_latents(unpacked.result, [bits] * batch_size, shapes), 1, repeats, synchronize)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Throughput(preset, parameters, batch_size, encoded.seconds, packed.seconds, decoded.seconds,
                      unpacked.seconds, peak)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} torch threads)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--presets", default="tiny,default")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {device_name(device)}; torch {torch.__version__}; tiles {TILE_SIDE}x{TILE_SIDE}; bits {args.bits}")
    print("preset    params batch  enc MPix/s dec MPix/s  enc pack dec unpack  peak MiB")
    for preset in args.presets.split(","):
        for batch_size in (int(size) for size in args.batch_sizes.split(",")):
            result = measure(preset, batch_size, args.bits, device, args.repeats)
            print(result.row(batch_size * TILE_SIDE * TILE_SIDE / 1e6), flush=True)


if __name__ == "__main__":
    main()
