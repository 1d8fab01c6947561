"""Codec plugins ``autoencoder_factorized`` and ``autoencoder_hyperprior``: the autoencoder with its
latent rounded to integers and range-coded under a learned prior.

Two codec names rather than one, so the report draws each entropy model as
its own rate-distortion curve beside the fixed-length ``autoencoder``. One
rate point is one checkpoint trained with ``python -m harness train
autoencoder --entropy factorized|hyperprior --lmbda X``. The stream is a
9-byte header and a ``constriction`` range-coder payload
(``_autoencoder/entropy_stream.py``); each row also reports the prior's own
rate estimate (``estimated_bpp``) beside the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from harness_codecs._autoencoder.checkpoint import TRAIN_COMMAND, build_model, load_checkpoint, model_id
from harness_codecs._autoencoder.entropy_inference import EntropyLatentCoder
from harness_codecs._autoencoder.entropy_stream import unavailable_reason
from harness_codecs._autoencoder.entropy_tables import EntropyTables
from harness_codecs._autoencoder.options import (
    describe_device,
    parse_device,
    resolve_checkpoint,
    validated_precision,
)

from harness.api import Codec, hookimpl


class EntropyCodedAutoencoder(Codec):
    """Options: ``checkpoint`` (path, relative to the config's folder), ``device`` (filled in by the
    runner), ``precision`` (fp32, or bf16/fp16 on CUDA)."""

    entropy: ClassVar[str]
    unavailable: ClassVar[str | None] = unavailable_reason()

    def __init__(self, checkpoint: str, device: str = "cpu", precision: str = "fp32",
                 base_dir: str | Path | None = None):
        path = resolve_checkpoint(self.name, checkpoint, base_dir)
        loaded = load_checkpoint(path)
        if loaded.spec.entropy != self.entropy:
            codec = "autoencoder" if loaded.spec.entropy == "none" else f"autoencoder_{loaded.spec.entropy}"
            raise ValueError(f"{path} holds a model with entropy model {loaded.spec.entropy!r}; use codec {codec} "
                             f"for it, or train one with `{TRAIN_COMMAND} --entropy {self.entropy}`")
        try:
            tables = EntropyTables.from_tensors(loaded.entropy_tables)
        except (KeyError, AttributeError) as exc:
            raise ValueError(f"{path}: checkpoint lacks its entropy tables ({exc}); "
                             f"make a new one with `{TRAIN_COMMAND} --entropy {self.entropy}`") from exc
        torch_device = parse_device(self.name, device)
        self.precision = validated_precision(self.name, precision, torch_device)
        self.coder = EntropyLatentCoder(build_model(loaded, path), tables, model_id(loaded.state_dict),
                                        torch_device, precision)
        self.device = describe_device(torch_device)

    def encode(self, tile: np.ndarray) -> bytes:
        return self.encode_batch([tile])[0]

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return self.decode_batch([data], [shape])[0]

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        return self.coder.encode_batch(tiles)

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        return self.coder.decode_batch(streams, shapes)

    def estimated_bpp(self, tiles: list[np.ndarray]) -> list[float]:
        return self.coder.estimated_bpp(tiles)


class FactorizedAutoencoder(EntropyCodedAutoencoder):
    name: ClassVar[str] = "autoencoder_factorized"
    description: ClassVar[str] = ("autoencoder, integer latent range-coded under a learned per-channel density "
                                  "(Ballé et al. 2018 factorized prior)")
    entropy: ClassVar[str] = "factorized"


class HyperpriorAutoencoder(EntropyCodedAutoencoder):
    name: ClassVar[str] = "autoencoder_hyperprior"
    description: ClassVar[str] = ("autoencoder, integer latent range-coded under Gaussians whose mean and scale "
                                  "a coded hyper-latent predicts (Minnen et al. 2018 mean-scale hyperprior)")
    entropy: ClassVar[str] = "hyperprior"


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [FactorizedAutoencoder, HyperpriorAutoencoder]
