"""The run's curves as CompressAI-compatible result files, beside copies of its reference curves.

Writing CompressAI's shape (``harness.curves``) lets a researcher overlay our
SAR codecs on published curves with the tools they already use; the published
ones come in as references through the same format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.api import ReportInput, hookimpl
from harness.curves import ReferenceCurve, write_compressai_json
from harness.reporting.summaries import lossless_points, matched_points
from harness.reporting.table_columns import MEAN, summarized_values, summary_column
from harness.results import BPP, CODEC, POINT


def curves_from_summary(summary: pd.DataFrame, run_name: str) -> list[ReferenceCurve]:
    """One curve per codec: mean bpp and mean metrics per point, sorted by bpp, lossless points left out.

    Lossless points sit far from any lossy rate, and their PSNR may be +inf, which JSON cannot hold;
    ``match_bpp`` points are left out as from every curve (``summaries.matched_points``).
    """
    metrics = [value for value in summarized_values(summary.columns) if value != BPP]
    curves = []
    for codec, points in summary[~matched_points(summary)].groupby(CODEC, sort=False):
        lossless = lossless_points(points)
        lossy = points[~lossless].sort_values(summary_column(BPP, MEAN), kind="stable")
        description = f"{codec} in run {run_name}: means over the tiles without error, one value per rate point"
        if lossless.any():
            description += f"; lossless point(s) excluded: {', '.join(points.loc[lossless, POINT])}"
        results = {value: tuple(lossy[summary_column(value, MEAN)].astype(float)) for value in (BPP, *metrics)}
        curves.append(ReferenceCurve(str(codec), description, results))
    return curves


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
