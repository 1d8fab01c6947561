"""Options shared by the autoencoder codec plugins: checkpoint path, device, precision, threads, their declarations
(``harness.CodecOption``: the harness checks names, types and ranges), and the checks a declaration cannot say."""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

import torch
from harness_codecs._autoencoder.runtime.fixed_length_coder import PRECISIONS

from harness import CodecOption


SHIPPED_CHECKPOINTS = "harness_checkpoints"
"""The package that installs the trained checkpoints of ``checkpoints/`` with the project."""


def resolve_checkpoint(codec: str, checkpoint: str, base_dir: str | Path | None) -> Path:
    """Relative paths are relative to the config file's folder, like every path in a config (to the working
    folder for a codec built without one, ``base_dir`` None).

    A bare file name that is not there names a shipped checkpoint, so that a config works
    from an installed wheel too, where ``checkpoints/`` is not beside it, and so does a codec's example point.
    """
    if not isinstance(checkpoint, (str, Path)) or not str(checkpoint):
        raise ValueError(f"{codec} option checkpoint={checkpoint!r}; expected a file path")
    path = Path(checkpoint).expanduser()
    if path.is_absolute():
        return path
    beside_config = Path(base_dir or ".") / path
    if beside_config.exists() or len(path.parts) > 1:
        return beside_config
    shipped = shipped_checkpoint(path.name)
    return shipped if shipped is not None else beside_config


def shipped_checkpoint(name: str) -> Path | None:
    """The installed checkpoint of that file name, if the project ships one."""
    candidate = files(SHIPPED_CHECKPOINTS) / name
    return Path(str(candidate)) if candidate.is_file() else None


PREFERRED_BATCH_SIZES = {"cpu": 4, "cuda": 32}
"""Tiles per ``encode_batch``/``decode_batch`` call of the learned codecs when the config leaves
``timing.batch_size`` out (``Codec.preferred_batch_size``). On a 2-core Xeon VM the shipped tiny models code
256x256 tiles fastest 4 at a time: 1.2 to 1.6 times the speed of single tiles, while at 8 and more the
activations outgrow the CPU's caches and the speed falls below that of single tiles (docs/performance.md). A GPU
needs larger batches to fill its cores; 32 is a first choice, not yet measured on one."""


def preferred_batch_size(device: torch.device) -> int:
    return PREFERRED_BATCH_SIZES[device.type]


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


NETWORK_THREADS = 1
"""torch's CPU threads during a learned codec's calls, by default: one, like every library codec here, so that a speed
means the same on every machine, compares with the other codecs' and parallel runs split the cores between workers.
A point may set ``threads`` to measure a multi-threaded deployment."""


CHECKPOINT = CodecOption("checkpoint", str, required=True,
                         description="checkpoint file, relative to the config's folder, or a shipped one's file name")
DEVICE = CodecOption("device", str, description="cpu, cuda or cuda:N; the run's device when left out")
AUTO_PRECISION = "auto"
PRECISION = CodecOption("precision", str, choices=(*PRECISIONS, AUTO_PRECISION),
                        description="fp16 on CUDA only; auto: bf16 where the device multiplies it natively, else fp32")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""The /proc/cpuinfo flags of a CPU that multiplies bf16 in hardware (AVX-512 BF16: Zen 4, Cooper Lake and later
Xeons; AMX: Sapphire Rapids and later). Elsewhere oneDNN emulates bf16 and runs it slower than fp32."""
THREADS = CodecOption("threads", int, minimum=1, description="torch's CPU threads during the calls")


def validated_precision(codec: str, precision: str, device: torch.device) -> str:
    """fp32, or an autocast type: bf16 on CUDA or the CPU (where AMX or AVX-512 BF16 make it fast: on a Sapphire
    Rapids core the GDN checkerboard's networks ran 2.6 to 3.3 times faster, within 0.0005 dB and 0.05 % of the
    rate of fp32; on a Zen 4 core 2.5 to 3.0 times, within 0.0033 dB and 0.03 %), fp16 on CUDA only (the CPU has no
    fast fp16 path); ``auto`` becomes the one of fp32 and bf16 that ``device`` runs fastest (``native_precision``),
    and the codec's rows record which. The choices are declared (``PRECISION``)."""
    if precision == AUTO_PRECISION:
        return native_precision(device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"{codec} option precision={precision!r} needs device cuda; on the CPU use fp32 or bf16")
    return precision


def native_precision(device: torch.device) -> str:
    """bf16 where ``device`` multiplies it in hardware (a CUDA device that supports it; a CPU whose flags say AVX-512
    BF16 or AMX), fp32 elsewhere, including a CPU whose flags cannot be read (not Linux)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if BF16_CPU_FLAGS & cpu_flags() else "fp32"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from Linux's /proc/cpuinfo; empty where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
