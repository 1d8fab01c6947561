"""Running a trained autoencoder on tiles: network work on the device, bit-packing on the CPU.

The network half (``encode_latents`` / ``decode_latents``) and the byte half
(``write_stream`` / ``read_stream``) are separate functions so the throughput
benchmark can time them apart. Tiles are batched per shape: one forward pass
per distinct tile size.

Determinism: on the CPU the same tile always gives the same bytes. On a GPU
(and under bf16/fp16 autocast) convolution kernels sum in a different order,
so a latent value lying within float rounding of a quantization threshold can
round to the neighbouring code: rare, and harmless for interoperability,
because the decoder needs only the bytes and any stream decodes on any device.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from harness_codecs._autoencoder.model import Autoencoder, latent_size, pad_to_stride
from harness_codecs._autoencoder.quantization import dequantize, quantize

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class LatentCoder:
    """A model ready for inference: weights on ``device``, channels-last, with its quantizer settings."""

    model: Autoencoder
    bits: int
    latent_range: tuple[float, float]
    device: torch.device
    precision: str = "fp32"

    def __post_init__(self) -> None:
        self.model = self.model.to(self.device, memory_format=torch.channels_last).eval()

    def encode_latents(self, tiles: list[np.ndarray]) -> list[np.ndarray]:
        """Integer codes (C x h x w, uint16) for each tile; tiles of equal shape share a forward pass."""
        codes: list[np.ndarray | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            inputs = model_inputs([tiles[index] for index in indexes], self.device)
            with torch.inference_mode(), autocast(self.device, self.precision):
                latent = self.model.encode(inputs)
            batch_codes = quantize(latent, self.latent_range, self.bits).to(torch.int32).cpu().numpy()
            for position, index in enumerate(indexes):
                codes[index] = batch_codes[position].astype(np.uint16)
        return codes

    def decode_latents(self, codes: list[np.ndarray], bits: list[int], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        """Reconstructed float32 tiles in [0, 1], cropped to ``shapes``."""
        tiles: list[np.ndarray | None] = [None] * len(codes)
        groups = group_by_shape([(*shape, depth) for shape, depth in zip(shapes, bits)])
        for (height, width, depth), indexes in groups.items():
            batch = torch.from_numpy(np.stack([codes[index].astype(np.int32) for index in indexes])).to(self.device)
            latent = dequantize(batch, self.latent_range, depth).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(self.device, self.precision):
                decoded = self.model.decode(latent)
            pixels = decoded[:, 0, :height, :width].float().clamp(0.0, 1.0).cpu().numpy()
            for position, index in enumerate(indexes):
                tiles[index] = pixels[position]
        return tiles

    def expected_latent_shape(self, shape: tuple[int, int]) -> tuple[int, int, int]:
        return (self.model.spec.latent_channels, *latent_size(*shape))


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` (``bf16``/``fp16``) on ``device``; nothing for ``fp32``."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def model_inputs(tiles: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Tiles of one shape as an ``(N, 1, H, W)`` channels-last batch on ``device``, padded to the stride."""
    batch = np.stack([pad_to_stride(np.asarray(tile, dtype=np.float32)) for tile in tiles])
    return torch.from_numpy(batch[:, None]).to(device).contiguous(memory_format=torch.channels_last)


def group_by_shape(shapes: list[tuple]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for index, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(index)
    return groups
