"""A rate-distortion curve of a reference codec, and the CompressAI JSON file that holds one.

CompressAI's plotting and the learned-compression literature exchange curves
as ``{"name", "description", "results": {"bpp": [...], "psnr": [...],
"ms-ssim": [...]}}``, one value per rate point. The config reads such files
as references (checked before the run), the report draws and BD-rates them, and
``harness.reporting.compressai`` writes the run's own curves in the same shape.
The format sits here, below the config and the report, so that neither
imports the other for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.results import BPP

# Our column name -> CompressAI's key, where they differ.
EXPORT_KEYS = {"ms_ssim": "ms-ssim"}
# CompressAI's keys (including its RGB variants) -> our column name.
IMPORT_ALIASES = {"ms-ssim": "ms_ssim", "ms-ssim-rgb": "ms_ssim", "psnr-rgb": "psnr"}


@dataclass(frozen=True)
class ReferenceCurve:
    """One codec's curve: its name, a description, and values per point keyed by our column names."""

    name: str
    description: str
    results: dict[str, tuple[float, ...]]


def write_compressai_json(curve: ReferenceCurve, path: Path) -> None:
    """Write in CompressAI's layout; NaN (a metric undefined on a point) becomes ``null``."""
    results = {EXPORT_KEYS.get(key, key): [None if math.isnan(value) else value for value in values]
               for key, values in curve.results.items()}
    document = {"name": curve.name, "description": curve.description, "results": results}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_compressai_json(path: Path) -> ReferenceCurve:
    """Read and check a CompressAI result file; every problem is one line naming the file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: reference file not found") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read reference file: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a JSON object with name and results, got {type(document).__name__}")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{path}: name: expected a non-empty string")
    description = document.get("description", "")
    if not isinstance(description, str):
        raise UserError(f"{path}: description: expected a string")
    return ReferenceCurve(name, description, _results(path, document.get("results")))


def _results(path: Path, raw: object) -> dict[str, tuple[float, ...]]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: results: expected an object of lists keyed by metric (bpp, psnr, ms-ssim, ...)")
    if BPP not in raw:
        raise UserError(f"{path}: results.bpp: missing; a reference curve needs its rates in bits per pixel")
    results = {IMPORT_ALIASES.get(key, key): _numbers(path, f"results.{key}", values) for key, values in raw.items()}
    points = len(results[BPP])
    for key, values in raw.items():
        if len(values) != points:
            raise UserError(f"{path}: results.{key}: has {len(values)} values but results.bpp has {points}")
    return results


def _numbers(path: Path, key: str, values: object) -> tuple[float, ...]:
    if not isinstance(values, list):
        raise UserError(f"{path}: {key}: expected a list of numbers")
    for index, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"{path}: {key}[{index}]: expected a number, got {value!r}")
    return tuple(math.nan if value is None else float(value) for value in values)
