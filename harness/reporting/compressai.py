"""CompressAI-compatible result files: export our curves, import published ones as references.

CompressAI's plotting and the learned-compression literature exchange curves
as ``{"name", "description", "results": {"bpp": [...], "psnr": [...],
"ms-ssim": [...]}}``, one value per rate point. Writing that shape lets a
researcher overlay our SAR codecs on published curves with the tools they
already use; reading it lets our RD plots and BD-rate table include theirs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.api import ReportInput, hookimpl
from harness.errors import UserError
from harness.reporting.summaries import lossless_points, matched_points
from harness.results import BPP, CODEC, POINT

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


def curves_from_summary(summary: pd.DataFrame, run_name: str) -> list[ReferenceCurve]:
    """One curve per codec: mean bpp and mean metrics per point, sorted by bpp, lossless points left out.

    Lossless points sit far from any lossy rate, and their PSNR may be +inf, which JSON cannot hold;
    ``match_bpp`` points are left out as from every curve (``summaries.matched_points``).
    """
    metrics = [column.removesuffix("_mean") for column in summary.columns
               if column.endswith("_mean") and column != "bpp_mean"]
    curves = []
    for codec, points in summary[~matched_points(summary)].groupby(CODEC, sort=False):
        lossless = lossless_points(points)
        lossy = points[~lossless].sort_values("bpp_mean", kind="stable")
        description = f"{codec} in run {run_name}: means over the tiles without error, one value per rate point"
        if lossless.any():
            description += f"; lossless point(s) excluded: {', '.join(points.loc[lossless, POINT])}"
        results = {BPP: tuple(lossy["bpp_mean"].astype(float))}
        results.update({metric: tuple(lossy[f"{metric}_mean"].astype(float)) for metric in metrics})
        curves.append(ReferenceCurve(str(codec), description, results))
    return curves


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


def write_curves(report: ReportInput) -> list[Path]:
    """One CompressAI JSON file per codec of the run (``compressai/``), and a copy of each reference curve
    (``references/``), so that the report rebuilds where the config's paths do not exist."""
    return [*_write_curve_files(curves_from_summary(report.summary, report.run_name), report.folder.compressai),
            *_write_curve_files(report.references, report.folder.references)]


def _write_curve_files(curves: Sequence[ReferenceCurve], folder: Path) -> list[Path]:
    """One file per curve, named after it; no folder when there is nothing to write."""
    if curves:
        folder.mkdir(exist_ok=True)
    paths = [folder / f"{_file_stem(curve.name)}.json" for curve in curves]
    for curve, path in zip(curves, paths):
        write_compressai_json(curve, path)
    return paths


def _file_stem(name: str) -> str:
    return "".join(character if character.isalnum() or character in "-_." else "_" for character in name)


@hookimpl
def harness_report_writers() -> list:
    return [write_curves]
