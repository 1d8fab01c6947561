"""What a run ran on, recorded next to its results as ``environment.json``.

Speeds and even bitstreams depend on the machine, the library versions (the
OpenJPEG inside glymur, the GDAL inside rasterio) and the code itself, so a
report that omits them cannot be compared with another or reproduced. Every
probe here degrades to ``None`` instead of raising: a missing optional
package or a copy of the project outside git must never cost a finished run.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "torch",
    "pytorch-msssim",
    "rasterio",
    "glymur",
    "scikit-image",
    "matplotlib",
    "pluggy",
    "imagecodecs",
    "pillow-heif",
    "constriction",
    "distributed",
)
GIT_TIMEOUT_S = 5
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
WIDE_SPREAD = 0.5
"""A codec whose timed repeats differ, at the median row, by more than this share of their median is flagged."""


def collect_environment(config_text: str, device: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """A JSON-ready description of the machine, libraries, code version and config of a run."""
    commit, dirty = git_state(project_dir)
    return {
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "load_average_start": load_average(),
        "threads": thread_settings(),
        "memory_total_gib": total_memory_gib(),
        "packages": package_versions(PACKAGES),
        "gdal": _module_attribute("rasterio", "__gdal_version__"),
        "openjpeg": _module_attribute("glymur.version", "openjpeg_version"),
        "cuda_available": cuda_available(),
        "gpus": gpu_names(),
        "device": device,
        "git_commit": commit,
        "git_dirty": dirty,
        "config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
    }


def cpu_model() -> str | None:
    """The marketing name from /proc/cpuinfo: ``platform.processor()`` is often just ``x86_64`` on Linux."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: above the core count, other work competed with the timed calls."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def thread_settings() -> dict[str, Any]:
    """The thread counts the timed calls ran with: torch's pools and the OpenMP/BLAS variables (unset: None)."""
    settings: dict[str, Any] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        import torch
    except ImportError:
        return settings
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            **settings}


def timing_warnings(environment: dict[str, Any], spreads: dict[str, list[float]]) -> list[str]:
    """Why a run's speeds may not be trustworthy: the machine was loaded, or a codec's repeats spread widely.

    ``spreads`` holds, per codec, each good row's larger repeat spread (``harness.timing.Timed.spread``).
    """
    warnings = []
    cores = environment.get("logical_cores")
    loads = [load[0] for load in (environment.get("load_average_start"), environment.get("load_average_end")) if load]
    if cores and loads and max(loads) > cores:
        warnings.append(f"the load average reached {max(loads):g} on {cores} cores: other work competed with the "
                        "timed calls, so the speeds are not trustworthy; rerun on an idle machine")
    for codec, values in spreads.items():
        median = statistics.median(values) if values else 0.0
        if median > WIDE_SPREAD:
            warnings.append(f"{codec}: the timed repeats of a call differ by {median:.0%} of their median at the "
                            "median row, so its speeds are not trustworthy; raise timing.repeats or rerun idle")
    return warnings


def total_memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Installed distribution versions, read from metadata so nothing heavy is imported."""
    return {name: _distribution_version(name) for name in names}


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _module_attribute(module_name: str, attribute: str) -> str | None:
    """A version string only the imported module knows (the C library it bundles).

    Any exception counts as "unknown": a broken native library can fail to
    import with errors other than ``ImportError``, and that must not end a run.
    """
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except Exception:
        return None
    return str(value) if value is not None else None


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_names() -> list[str]:
    if not cuda_available():
        return []
    import torch

    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def git_state(project_dir: Path) -> tuple[str | None, bool | None]:
    """The commit checked out in ``project_dir`` and whether the tree has changes, or ``(None, None)``.

    ``None`` covers every way of not knowing: git missing, not a checkout, a
    checkout without commits, or git refusing the folder's owner.
    """
    commit = _git(project_dir, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(project_dir, "status", "--porcelain")
    return commit, (bool(status) if status is not None else None)


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()
