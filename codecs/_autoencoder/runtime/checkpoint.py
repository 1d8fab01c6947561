"""Checkpoint files: the weights plus everything needed to rebuild and use the model.

A checkpoint is a plain dict of tensors, dicts, lists, strings and numbers,
so ``torch.load(..., weights_only=True)`` reads it without executing code from
the file. Every way a file can be unusable (missing, not ours, another format
version, damaged stored weights, weights that do not fit the spec) is one
``ValueError`` line that names the file and the command that makes a good one.

The weights are stored in one of ``runtime.weights.WEIGHT_FORMATS`` (float32, float16, or int8 with compressed
codes, which makes the shipped model's file a third of its float16 size); whatever the format, a loaded
checkpoint holds them in float32, exactly as the file gives them back. Format version 2 records the weight format;
version 1 files (plain float32 or float16 tensors, as shipped) are still read, and give the same weights as before.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch
from harness_codecs._autoencoder.runtime.bitstream import MODEL_ID_BYTES
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, ModelSpec
from harness_codecs._autoencoder.runtime.weights import (
    format_of,
    loaded_weights,
    rounded_weights,
    stored_bits,
    stored_weights,
)

CHECKPOINT_KIND = "sar-codec-harness/autoencoder"
CHECKPOINT_VERSION = 2
"""Version 2 added ``weight_format``: a version-1 reader would take an int8 file's stored codes for weights."""
READABLE_VERSIONS = (1, 2)
TRAIN_COMMAND = "python -m harness train autoencoder --output PATH"


@dataclass
class Checkpoint:
    """The contents of one checkpoint file, typed."""

    spec: ModelSpec
    bits: int
    latent_range: tuple[float, float]
    normalization: dict[str, tuple[float, float]]
    state_dict: dict[str, torch.Tensor]
    training: dict = field(default_factory=dict)
    git_commit: str = ""
    step: int = 0
    validation_loss: float = float("nan")
    validation_psnr: float = float("nan")
    entropy_tables: dict[str, torch.Tensor] = field(default_factory=dict)
    """The range coder's probability tables (``entropy_coding.tables.EntropyTables``), for entropy-coded models."""
    validation_levels: list = field(default_factory=list)
    """A variable-rate model's validation (estimated bpp, PSNR) at each of its levels."""
    weight_format: str = ""
    """How the file stores the weights (``runtime.weights.WEIGHT_FORMATS``); empty: as the given tensors are
    (float16 when all are, as ``--fp16-weights`` gives them, else float32)."""
    weight_bits: dict[str, int] = field(default_factory=dict)
    """For ``int8``: the bits of each quantized weight (``runtime.weight_plan``); the other tensors are float16."""

    def __post_init__(self) -> None:
        """Round the weights to the format at once, so that ``state_dict`` always holds, in float32, exactly
        the weights the file will give back: entropy tables and model ids computed from it fit the file."""
        self.weight_format = self.weight_format or format_of(self.state_dict)
        self.state_dict = rounded_weights(self.state_dict, self.weight_format, self.weight_bits)

    def to_dict(self) -> dict:
        return {
            "kind": CHECKPOINT_KIND,
            "format_version": CHECKPOINT_VERSION,
            "model": self.spec.to_dict(),
            "bits": self.bits,
            "latent_range": list(self.latent_range),
            "normalization": {pol: list(bounds) for pol, bounds in self.normalization.items()},
            "training": self.training,
            "git_commit": self.git_commit,
            "step": self.step,
            "validation_loss": self.validation_loss,
            "validation_psnr": self.validation_psnr,
            "weight_format": self.weight_format,
            "state_dict": stored_weights(self.state_dict, self.weight_format, self.weight_bits),
            "entropy_tables": self.entropy_tables,
            "validation_levels": [list(level) for level in self.validation_levels],
        }


def save_checkpoint(checkpoint: Checkpoint, path: Path, extra: dict | None = None) -> None:
    """Write atomically (temporary file, then rename), so an interrupted save never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    torch.save({**checkpoint.to_dict(), **(extra or {})}, temporary)
    temporary.replace(path)


def read_checkpoint_file(path: Path) -> dict:
    """The raw dict, checked to be an autoencoder checkpoint of the version this code reads."""
    if not path.is_file():
        raise ValueError(f"autoencoder checkpoint {path} not found; make one with `{TRAIN_COMMAND}`")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"{path} is not a readable autoencoder checkpoint ({type(exc).__name__}); "
                         f"make one with `{TRAIN_COMMAND}`") from exc
    if not isinstance(raw, dict) or raw.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path} is not an autoencoder checkpoint; make one with `{TRAIN_COMMAND}`")
    if raw.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"{path} has checkpoint format version {raw.get('format_version')!r}, this code reads "
                         f"versions {' and '.join(map(str, READABLE_VERSIONS))}; "
                         f"make a new one with `{TRAIN_COMMAND}`")
    return raw


def load_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint, its weights in float32 whatever format the file stores them in."""
    raw = read_checkpoint_file(path)
    weight_format, weights, bits = _weights(raw, path)
    try:
        return Checkpoint(
            spec=ModelSpec(**raw["model"]),
            bits=int(raw["bits"]),
            latent_range=(float(raw["latent_range"][0]), float(raw["latent_range"][1])),
            normalization={pol: (float(low), float(high)) for pol, (low, high) in raw["normalization"].items()},
            state_dict=weights,
            training=raw.get("training", {}),
            git_commit=raw.get("git_commit", ""),
            step=int(raw.get("step", 0)),
            validation_loss=float(raw.get("validation_loss", float("nan"))),
            validation_psnr=float(raw.get("validation_psnr", float("nan"))),
            entropy_tables=raw.get("entropy_tables", {}),
            validation_levels=[tuple(level) for level in raw.get("validation_levels", [])],
            weight_format=weight_format,
            weight_bits=bits,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: incomplete autoencoder checkpoint ({type(exc).__name__}: {exc}); "
                         f"make a new one with `{TRAIN_COMMAND}`") from exc


def _weights(raw: dict, path: Path) -> tuple[str, dict[str, torch.Tensor], dict[str, int]]:
    """The file's weight format, its weights in float32 and, for int8, the bits of each quantized weight.
    A version-1 file holds plain tensors, in the format its tensors are in."""
    if "state_dict" not in raw:
        raise ValueError(f"{path}: incomplete autoencoder checkpoint (no weights); make a new one with "
                         f"`{TRAIN_COMMAND}`")
    stored = raw["state_dict"]
    try:
        weight_format = raw["weight_format"] if raw["format_version"] >= 2 else format_of(stored)
        weights = loaded_weights(stored, weight_format)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, (KeyError, AttributeError)) else str(exc)
        raise ValueError(f"{path}: unusable weights ({detail}); make a new one with `{TRAIN_COMMAND}`") from exc
    return weight_format, weights, stored_bits(stored) if weight_format == "int8" else {}


def build_model(checkpoint: Checkpoint, path: Path) -> Autoencoder:
    """The network with the checkpoint's weights, in eval mode on the CPU.

    The model the spec describes is first built on the ``meta`` device, which allocates nothing, and its
    tensor shapes compared with the stored weights: a damaged spec (``latent_channels: 1e8`` asked for
    115 GB) is refused before any memory is spent on it.
    """
    _check_spec_matches_weights(checkpoint, path)
    model = Autoencoder(checkpoint.spec)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the {checkpoint.spec.preset!r} model they claim "
                         f"({str(exc).splitlines()[0]}); make a new one with `{TRAIN_COMMAND}`") from exc
    return model.eval()


def _check_spec_matches_weights(checkpoint: Checkpoint, path: Path) -> None:
    try:
        with torch.device("meta"):
            expected = {name: tuple(tensor.shape) for name, tensor in Autoencoder(checkpoint.spec).state_dict().items()}
    except Exception as exc:  # any nonsense in the spec (negative sizes, wrong types) fails in the constructors
        raise ValueError(f"{path}: its model spec does not describe a network ({type(exc).__name__}: {exc}); "
                         f"make a new one with `{TRAIN_COMMAND}`") from exc
    stored = {name: tuple(getattr(tensor, "shape", ())) for name, tensor in checkpoint.state_dict.items()}
    if expected != stored:
        differing = sorted(set(expected.items()) ^ set(stored.items()))[0][0]
        raise ValueError(f"{path}: weights do not fit the {checkpoint.spec.preset!r} model its spec describes "
                         f"(first difference: {differing}); make a new one with `{TRAIN_COMMAND}`")


def model_id(state_dict: dict[str, torch.Tensor]) -> bytes:
    """A short fingerprint of the weights, written in every stream to catch decoding with the wrong model."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().float().numpy().tobytes())
    return digest.digest()[:MODEL_ID_BYTES]


def git_commit(folder: Path) -> str:
    """The commit of the code that trained a checkpoint, or '' outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
