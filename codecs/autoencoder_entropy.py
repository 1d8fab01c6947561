"""Codec plugins ``autoencoder_factorized``, ``autoencoder_hyperprior`` and ``autoencoder_checkerboard``:
the autoencoder with its latent rounded to integers and range-coded under a learned prior.

One codec name per entropy model (per registered latent codec, ``_autoencoder/latent_codecs``), so the report
draws each as its own rate-distortion curve beside the fixed-length ``autoencoder``. A rate point is
a checkpoint trained with ``python -m harness train autoencoder --entropy
factorized|hyperprior|checkerboard --lmbda X``, or, for a variable-rate
checkpoint (``--lmbdas``), a checkpoint and a ``quality``: 0 is its lowest
trained level, ``levels - 1`` its highest, and fractions lie between. The
stream is a 9-byte header (2 bytes more with the quality, 1 more with the
hyperpriors' scale shift) and a ``constriction`` range-coder payload
(``_autoencoder/runtime/entropy_stream.py``); each row also
reports the prior's own rate estimate (``estimated_bpp``) beside the real one.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from harness_codecs._autoencoder.runtime.checkpoint import (
    TRAIN_COMMAND,
    Checkpoint,
    build_model,
    load_checkpoint,
    model_id,
)
from harness_codecs._autoencoder.runtime.complexity import codec_complexity
from harness_codecs._autoencoder.runtime.entropy_coder import EntropyLatentCoder
from harness_codecs._autoencoder.runtime.entropy_stream import QUALITY_SCALE, TRELLIS_OFFSET, format_version
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.latent_codecs import LATENT_CODECS, latent_codec_class
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
from harness_codecs._autoencoder.entropy_coding.symbol_coding import unavailable_reason

from harness import Codec, CodecOption, Complexity, RateKnob, hookimpl, torch_threads


QUANTIZER = CodecOption("quantizer", str, choices=("scalar", "trellis"),
                        description="scalar: the latent rounded; trellis: trellis-coded at the qualities the "
                                    "checkpoint has trellis settings for")
"""The option of the codecs whose latent codec can trellis-code (``LatentCodec.trellis_coded``)."""


class EntropyCodedAutoencoder(Codec):
    """Options: ``checkpoint`` (path, relative to the config's folder), ``quality`` (variable-rate
    checkpoints only: from 0 to levels - 1, in steps of 0.001), ``device`` (filled in by the runner),
    ``precision`` (fp32, bf16, fp16 on CUDA, or auto: bf16 where the device multiplies it natively), ``threads``
    (torch's CPU threads during the calls, default 1), ``range_coding_processes`` (worker processes that
    range-code a batch's tiles in parallel; default 0, in the codec's own process), ``overlap_sub_batches`` (parts
    a batch is cut into, one part's entropy coding overlapping the next part's networks in a second thread;
    default 1, no overlap), and where the latent codec can trellis-code (the checkerboard) ``quantizer``
    (``scalar``, the default, or ``trellis``: trellis-coded quantization at the qualities the checkpoint has
    trellis settings for, ``_autoencoder/entropy_coding/trellis.py``)."""

    entropy: ClassVar[str]
    unavailable: ClassVar[str | None] = unavailable_reason()
    # Variable-rate checkpoints only; each instance sets the top to its checkpoint's highest level.
    rate_knob = RateKnob("quality", low=0, high=0, more_bits_when_higher=True, step=1 / QUALITY_SCALE)
    options = (
        CHECKPOINT,
        CodecOption("quality", float, minimum=0, description="variable-rate checkpoints only: from 0 to the "
                                                             "checkpoint's levels - 1, in steps of 0.001"),
        DEVICE, PRECISION, THREADS,
        CodecOption("range_coding_processes", int, minimum=0, description="worker processes that range-code a "
                                                                          "batch's tiles; 0: the codec's own process"),
        CodecOption("overlap_sub_batches", int, minimum=1, description="parts a batch is cut into, each one's entropy "
                                                                       "coding overlapping the next one's networks; "
                                                                       "1: no overlap"),
    )

    def __init__(self, checkpoint: str, quality: float | None = None, device: str = "cpu", precision: str = "fp32",
                 threads: int = NETWORK_THREADS, range_coding_processes: int = 0, overlap_sub_batches: int = 1,
                 quantizer: str = "scalar", base_dir: str | Path | None = None):
        path = resolve_checkpoint(self.name, checkpoint, base_dir)
        torch_device = parse_device(self.name, device)
        self.precision = validated_precision(self.name, precision, torch_device)
        status = path.stat()
        loaded, coder = _loaded_coder(path, (status.st_ino, status.st_size, status.st_mtime_ns), self.entropy,
                                      str(torch_device), self.precision)
        if quantizer == "trellis" and coder.trellis_settings is None:
            raise ValueError(f"{self.name} option quantizer='trellis': {path} has no trellis settings; write them "
                             "with benchmarks/trellis_settings.py, or leave quantizer out")
        self.coder = coder.configured(_validated_quality(self.name, quality, loaded, path),
                                      range_coding_processes, overlap_sub_batches, quantizer == "trellis")
        self.device = describe_device(torch_device)
        self.preferred_batch_size = preferred_batch_size(torch_device)
        self.threads = threads
        # The format with band shifts; a tile whose bands share one shift is written in its one-shift form.
        trellis_offset = 0 if self.coder.trellis_level() is None else TRELLIS_OFFSET
        self.stream_version = format_version(self.coder.variable_rate, self.coder.shift_chooser is not None,
                                             self.coder.refinement_weighting,
                                             integer_prior=self.coder.integer_prior) + trellis_offset
        levels = loaded.spec.rate_levels
        self.rate_knob = replace(type(self).rate_knob, high=levels - 1) if levels else None

    def encode(self, tile: np.ndarray) -> bytes:
        return self.encode_batch([tile])[0]

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return self.decode_batch([data], [shape])[0]

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        with torch_threads(self.threads):
            return self.coder.encode_batch(tiles)

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        with torch_threads(self.threads):
            return self.coder.decode_batch(streams, shapes)

    def estimated_bpp(self, tiles: list[np.ndarray]) -> list[float] | None:
        """The prior's estimate for the rounded latent; None for a trellis-coded point, which it does not model."""
        if self.coder.trellis_level() is not None:
            return None
        with torch_threads(self.threads):
            return self.coder.estimated_bpp(tiles)

    def complexity(self) -> Complexity:
        """MACs per pixel of encode and decode, counted on a real encode and decode, and the parameters."""
        return codec_complexity(self, self.coder.model)


@functools.lru_cache(maxsize=4)
def _loaded_coder(path: Path, version: tuple[int, int, int], entropy: str, device: str,
                  precision: str) -> tuple[Checkpoint, EntropyLatentCoder]:
    """The checkpoint and a coder of it, built once per file version, device and precision: a ``match_bpp``
    search builds the codec at many qualities, and loading, hashing and preparing 26 MB of weights each time
    would cost more than the coding."""
    loaded = load_checkpoint(path)
    if loaded.spec.entropy != entropy:
        codec = "autoencoder" if loaded.spec.entropy == "none" else f"autoencoder_{loaded.spec.entropy}"
        raise ValueError(f"{path} holds a model with entropy model {loaded.spec.entropy!r}; use codec {codec} "
                         f"for it, or train one with `{TRAIN_COMMAND} --entropy {entropy}`")
    try:
        tables = EntropyTables.from_tensors(loaded.entropy_tables)
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: checkpoint lacks its entropy tables ({exc}); "
                         f"make a new one with `{TRAIN_COMMAND} --entropy {entropy}`") from exc
    single_rate_lmbda = None if loaded.spec.rate_levels else loaded.training.get("lmbda")
    coder = EntropyLatentCoder(build_model(loaded, path), tables, model_id(loaded.state_dict), torch.device(device),
                               precision, trained_lmbda=single_rate_lmbda)
    return loaded, coder


def _validated_quality(codec: str, quality: float | None, loaded: Checkpoint, path: Path) -> float | None:
    """The quality of a variable-rate checkpoint (required, within its levels, in thousandths); None for others."""
    levels = loaded.spec.rate_levels
    if not levels:
        if quality is not None:
            raise ValueError(f"{codec} option quality={quality!r}: {path} is a single-rate model; leave quality out "
                             "(each single-rate checkpoint is one rate point)")
        return None
    if quality is None:
        raise ValueError(f"{codec}: {path} is a variable-rate model; give each point a quality from 0 to {levels - 1}")
    if quality > levels - 1:  # its type and the lower bound are declared
        raise ValueError(f"{codec} option quality={quality!r}: expected a number from 0 to {levels - 1} "
                         f"(the levels of {path})")
    if abs(quality * QUALITY_SCALE - round(quality * QUALITY_SCALE)) > 1e-6:
        raise ValueError(f"{codec} option quality={quality!r}: the stream stores the quality in steps of "
                         f"{1 / QUALITY_SCALE:g}; round it")
    return float(quality)


EXAMPLE_POINTS = {
    "factorized": {"checkpoint": "autoencoder-tiny-factorized-l60.pt"},
    "hyperprior": {"checkpoint": "autoencoder-tiny-hyperprior-l60.pt"},
    "checkerboard": {"checkpoint": "autoencoder-gdn-dct-light-checkerboard.pt", "quality": 2},
}
"""A shipped checkpoint per built-in entropy model, as each codec's example point."""


@functools.cache
def codec_class(entropy: str) -> type[EntropyCodedAutoencoder]:
    """The codec plugin ``autoencoder_<entropy>`` of the latent codec registered as ``entropy``: made from the
    registry, so that a new entropy model needs no codec class of its own (nor an example point, without a shipped
    checkpoint)."""
    latent_codec = latent_codec_class(entropy)
    options = EntropyCodedAutoencoder.options + ((QUANTIZER,) if latent_codec.trellis_coded else ())
    return type(f"{entropy.title()}Autoencoder", (EntropyCodedAutoencoder,), {
        "__module__": __name__, "__doc__": EntropyCodedAutoencoder.__doc__, "name": f"autoencoder_{entropy}",
        "description": f"autoencoder, {latent_codec.description}", "entropy": entropy,
        "example_point": EXAMPLE_POINTS.get(entropy), "options": options})


# The built-in ones by name, for scripts and tests that build a codec directly.
FactorizedAutoencoder = codec_class("factorized")
HyperpriorAutoencoder = codec_class("hyperprior")
CheckerboardAutoencoder = codec_class("checkerboard")


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [codec_class(entropy) for entropy in LATENT_CODECS]
