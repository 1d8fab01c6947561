"""Codec plugin ``autoencoder``: a learned convolutional codec, and its trainer.

One rate point is one checkpoint (optionally with a different ``bits``). The
encoder maps the normalized tile to a latent at 1/16 resolution, the latent
is uniformly quantized and bit-packed behind a 12-byte header; the decoder
needs only those bytes and the checkpoint. Checkpoints are made with
``python -m harness train autoencoder`` (see ``_autoencoder/training.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from harness_codecs._autoencoder.runtime.bitstream import (
    FORMAT_VERSION,
    MAX_BITS,
    LatentHeader,
    read_stream,
    write_stream,
)
from harness_codecs._autoencoder.runtime.checkpoint import (
    build_model,
    load_checkpoint,
    model_id,
)
from harness_codecs._autoencoder.runtime.complexity import codec_complexity
from harness_codecs._autoencoder.runtime.fixed_length_coder import LatentCoder
from harness_codecs._autoencoder.runtime.options import (
    CHECKPOINT,
    DEVICE,
    NETWORK_THREADS,
    PRECISION,
    THREADS,
    describe_device,
    parse_device,
    preferred_batch_size,
    resolve_checkpoint,
    validated_precision,
)
from harness_codecs._autoencoder.training.trainer import AutoencoderTrainer

from harness import Codec, CodecOption, Complexity, hookimpl, torch_threads


class AutoencoderCodec(Codec):
    """Options: ``checkpoint`` (path, relative to the config's folder), ``bits`` (default: the
    checkpoint's), ``device`` (filled in by the runner), ``precision`` (fp32, bf16, fp16 on CUDA, or auto), ``threads``
    (torch's CPU threads during the calls, default 1)."""

    name: ClassVar[str] = "autoencoder"
    description: ClassVar[str] = "convolutional autoencoder, latent at 1/16 resolution, uniformly quantized and bit-packed"
    options = (CHECKPOINT,
               CodecOption("bits", int, minimum=1, maximum=MAX_BITS,
                           description="bits per latent element; the checkpoint's when left out"),
               DEVICE, PRECISION, THREADS)
    example_point = {"checkpoint": "autoencoder-tiny-c32-b4.pt"}
    stream_version = FORMAT_VERSION

    def __init__(self, checkpoint: str, bits: int | None = None, device: str = "cpu",
                 precision: str = "fp32", threads: int = NETWORK_THREADS, base_dir: str | Path | None = None):
        path = resolve_checkpoint(self.name, checkpoint, base_dir)
        loaded = load_checkpoint(path)
        if loaded.spec.entropy != "none":
            raise ValueError(f"{path} holds an entropy-coded ({loaded.spec.entropy}) model; "
                             f"use codec autoencoder_{loaded.spec.entropy} for it")
        torch_device = parse_device(self.name, device)
        self.bits = loaded.bits if bits is None else bits
        self.precision = validated_precision(self.name, precision, torch_device)
        self.model_id = model_id(loaded.state_dict)
        self.coder = LatentCoder(build_model(loaded, path), self.bits, loaded.latent_range, torch_device,
                                 self.precision)
        self.device = describe_device(torch_device)
        self.preferred_batch_size = preferred_batch_size(torch_device)
        self.threads = threads

    def encode(self, tile: np.ndarray) -> bytes:
        return self.encode_batch([tile])[0]

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return self.decode_batch([data], [shape])[0]

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        with torch_threads(self.threads):
            payloads = self.coder.encode_payloads(tiles)
        return [write_stream(LatentHeader(self.model_id, self.bits, *self.coder.expected_latent_shape(tile.shape)),
                             payload.data)
                for tile, payload in zip(tiles, payloads)]

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        payloads, bits = [], []
        for data, shape in zip(streams, shapes):
            header, payload = read_stream(data)
            self._check_fits(header, tuple(shape))
            payloads.append(payload)
            bits.append(header.bits)
        with torch_threads(self.threads):
            return self.coder.decode_payloads(payloads, bits, [tuple(shape) for shape in shapes])

    def complexity(self) -> Complexity:
        """MACs per pixel of encode and decode, counted on a real encode and decode, and the parameters."""
        return codec_complexity(self, self.coder.model)

    def _check_fits(self, header: LatentHeader, shape: tuple[int, int]) -> None:
        if header.model_id != self.model_id:
            raise ValueError(f"autoencoder stream was made by model {header.model_id.hex()}, "
                             f"this checkpoint is model {self.model_id.hex()}: decode it with the checkpoint that encoded it")
        expected = self.coder.expected_latent_shape(shape)
        if (header.channels, header.height, header.width) != expected:
            raise ValueError(f"autoencoder stream holds a {header.channels}x{header.height}x{header.width} latent; "
                             f"a {shape[0]}x{shape[1]} tile needs {'x'.join(map(str, expected))}")


@hookimpl
def harness_codecs():
    return [AutoencoderCodec]


@hookimpl
def harness_trainers():
    return [AutoencoderTrainer]
