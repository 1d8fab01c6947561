"""Running a trained autoencoder on tiles: network, quantization and bit-packing on the device.

Tiles go to the device as one float32 batch per shape, and only packed
payload bytes come back (``encode_payloads``); on decoding, only payload
bytes go to the device (``decode_payloads``). Quantization and bit-packing
are torch operations (``bitstream.pack_code_rows``), so on a GPU the host
never sees the latent. On CUDA the host side of each copy is pinned memory
and the copies are non-blocking; on the CPU the tensors are the numpy
arrays themselves, without a copy.

Determinism: on the CPU the same tile always gives the same bytes. On a GPU
(and under bf16/fp16 autocast) convolution kernels sum in a different order,
so a latent value lying within float rounding of a quantization threshold can
round to the neighbouring code: rare, and harmless for interoperability,
because the decoder needs only the bytes and any stream decodes on any device.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from harness_codecs._autoencoder.runtime.bitstream import pack_code_rows, payload_bytes, unpack_code_rows
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, latent_size, pad_to_stride, padded_size
from harness_codecs._autoencoder.runtime.quantization import dequantize, quantize

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

    def encode_payloads(self, tiles: list[np.ndarray]) -> list[np.ndarray]:
        """Each tile's packed latent codes (uint8, ``bitstream.payload_bytes`` long); tiles of equal shape
        share a forward pass."""
        payloads: list[np.ndarray | None] = [None] * len(tiles)
        for indexes in group_by_shape([tile.shape for tile in tiles]).values():
            inputs = model_inputs([tiles[index] for index in indexes], self.device)
            with torch.inference_mode():
                with autocast(self.device, self.precision):
                    latent = self.model.encode(inputs)
                codes = quantize(latent, self.latent_range, self.bits)
                packed = to_host(pack_code_rows(codes.flatten(1), self.bits))
            for position, index in enumerate(indexes):
                payloads[index] = packed[position]
        return payloads

    def decode_payloads(self, payloads: list[bytes | memoryview], bits: list[int],
                        shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        """Reconstructed float32 tiles in [0, 1], cropped to ``shapes``, from payloads already checked to
        hold the latent of their shape at their ``bits``."""
        tiles: list[np.ndarray | None] = [None] * len(payloads)
        groups = group_by_shape([(*shape, depth) for shape, depth in zip(shapes, bits)])
        for (height, width, depth), indexes in groups.items():
            latent_shape = self.expected_latent_shape((height, width))
            rows = host_buffer((len(indexes), payload_bytes(math.prod(latent_shape), depth)), torch.uint8, self.device)
            for row, index in zip(rows.numpy(), indexes):
                row[:] = np.frombuffer(payloads[index], dtype=np.uint8)
            with torch.inference_mode():
                codes = unpack_code_rows(to_device(rows, self.device), depth, math.prod(latent_shape))
                latent = dequantize(codes.view(len(indexes), *latent_shape), self.latent_range, depth)
                with autocast(self.device, self.precision):
                    decoded = self.model.decode(latent.contiguous(memory_format=torch.channels_last))
                pixels = to_host(decoded[:, 0, :height, :width].float().clamp(0.0, 1.0))
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
    batch = host_buffer((len(tiles), 1, *padded_size(*tiles[0].shape)), torch.float32, device)
    for slot, tile in zip(batch.numpy()[:, 0], tiles):
        slot[:] = pad_to_stride(np.asarray(tile, dtype=np.float32))
    # one channel: the (N, 1, H, W) batch is channels-last already, so this makes no copy
    return to_device(batch, device).contiguous(memory_format=torch.channels_last)


def host_buffer(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An empty host tensor to fill (through its ``numpy()`` view) and hand to ``to_device``: in pinned memory
    for CUDA, so that the copy to the GPU is a direct DMA and can be non-blocking."""
    return torch.empty(shape, dtype=dtype, pin_memory=device.type == "cuda")


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A ``host_buffer`` tensor on ``device``: itself on the CPU, a non-blocking copy on CUDA (kernels queued
    after it on the stream wait for it, and the pinned allocator keeps the buffer until the copy is done)."""
    return tensor.to(device, non_blocking=True) if device.type == "cuda" else tensor


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a numpy array: the tensor's own memory on the CPU; on CUDA a non-blocking copy into
    pinned memory, waited for before the array is returned."""
    if tensor.device.type != "cuda":
        return tensor.numpy()
    pinned = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    pinned.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return pinned.numpy()


def group_by_shape(shapes: list[tuple]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for index, shape in enumerate(shapes):
        groups.setdefault(tuple(shape), []).append(index)
    return groups
