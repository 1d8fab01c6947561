"""Options shared by the autoencoder codec plugins: checkpoint path, device, precision."""

from __future__ import annotations

from pathlib import Path

import torch
from harness_codecs._autoencoder.inference import PRECISIONS


def resolve_checkpoint(codec: str, checkpoint: str, base_dir: str | Path | None) -> Path:
    """Relative paths are relative to the config file's folder, like every path in a config."""
    if not isinstance(checkpoint, (str, Path)) or not str(checkpoint):
        raise ValueError(f"{codec} option checkpoint={checkpoint!r}; expected a file path")
    path = Path(checkpoint).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def parse_device(codec: str, device: str) -> torch.device:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"{codec} option device={device!r}; accepted: cpu, cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{codec} option device=cuda, but torch sees no CUDA device")
    return torch.device(device)


def describe_device(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (GPU name)', so result rows say which GPU produced them."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def validated_precision(codec: str, precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"{codec} option precision={precision!r}; accepted: {', '.join(PRECISIONS)}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(f"{codec} option precision={precision!r} needs device cuda; on the CPU use fp32")
    return precision
