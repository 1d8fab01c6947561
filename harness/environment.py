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
    "constriction",
)
GIT_TIMEOUT_S = 5


def collect_environment(config_text: str, device: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """A JSON-ready description of the machine, libraries, code version and config of a run."""
    commit, dirty = git_state(project_dir)
    return {
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
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
