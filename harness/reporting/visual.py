"""Matched-rate visual comparison: what each codec does to the same tile at about the same rate.

Numbers hide how a codec fails: JPEG 2000 blurs speckle into smooth blobs,
a coarse quantizer posterizes dark water. One figure per kept tile shows the
original and each codec's reconstruction at a chosen bpp (its ``match_bpp``
point for that rate, matched per tile, where the run has one; else the rate
point closest to it), all in dB with the same colour limits, a zoomed crop where
speckle is visible, and the error in dB.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.api import MetricColumn, ReportInput, hookimpl
from harness.reconstructions import KeptTile, load_kept_tiles, slug
from harness.reporting.figures import codec_colors
from harness.reporting.summaries import matched_points
from harness.results import BPP, CODEC, ERROR, OPTIONS, POINT, TARGET_BPP, TILE_ID, RunFolder
from harness.sar import denormalize_db

DEFAULT_TARGET_BPP = 1.0
ERROR_LIMIT_DB = 6.0
DPI = 110


@dataclass(frozen=True)
class Panel:
    """One column of the figure: an image in dB and its caption."""

    title: str
    db: np.ndarray
    color: tuple | str


def write_visual_comparisons(run_dir: Path, results: pd.DataFrame, caption_metric: MetricColumn,
                             target_bpp: float = DEFAULT_TARGET_BPP) -> list[Path]:
    """One ``visual_<tile>.png`` per kept tile; returns the files written.

    Figures of an earlier run in the same folder are removed first: they may
    show tiles this run no longer keeps.
    """
    folder = RunFolder(run_dir)
    for stale in folder.visuals():
        stale.unlink()
    colors = codec_colors(results[CODEC].unique())
    written = []
    for kept in load_kept_tiles(folder.reconstructions):
        panels = matched_panels(kept, results, target_bpp, colors, caption_metric)
        if len(panels) < 2:
            continue
        path = folder.visual(slug(kept.tile_id))
        draw_comparison(kept, panels, target_bpp).savefig(path, dpi=DPI)
        written.append(path)
    return written


def matched_panels(kept: KeptTile, results: pd.DataFrame, target_bpp: float, colors: dict,
                   caption_metric: MetricColumn) -> list[Panel]:
    """The original, then per codec its ``match_bpp`` point for the target when the run has one (the rate
    matched on this very tile), else the kept point whose bpp on this tile is closest to the target; each
    captioned with its options, its rate and ``caption_metric`` on this tile."""
    original_db = _masked_db(kept.original, kept)
    panels = [Panel(f"original ({kept.pol})", original_db, "black")]
    rows = results[(results[TILE_ID] == kept.tile_id) & (results[ERROR] == "")]
    for codec, codec_rows in rows.groupby(CODEC, sort=False):
        candidates = codec_rows[[(codec, point) in kept.reconstructions for point in codec_rows[POINT]]]
        if candidates.empty:
            continue
        matched = candidates[matched_points(candidates)]
        if not matched.empty:
            matched = matched[pd.to_numeric(matched[TARGET_BPP]) == target_bpp]
        if not matched.empty:
            candidates = matched
        best = candidates.loc[(candidates[BPP] - target_bpp).abs().idxmin()]
        reconstruction = kept.reconstructions[(codec, best[POINT])]
        title = f"{codec}\n{options_caption(best[OPTIONS])}\n{best[BPP]:.3f} bpp, " + _metric_caption(
            caption_metric, best.get(caption_metric.name, math.nan))
        panels.append(Panel(title, _masked_db(reconstruction, kept), colors[codec]))
    return panels


def options_caption(options_json: str) -> str:
    """A rate point's options (the row's JSON) fit for a narrow panel: values that are paths keep only the file
    name. A ``match_bpp`` row's options include the knob value the tile got."""
    options = json.loads(options_json)
    return ",".join(f"{key}={Path(value).name}" if isinstance(value, str) and "/" in value else f"{key}={value}"
                    for key, value in options.items())


def _metric_caption(metric: MetricColumn, value: float) -> str:
    number = "n/a" if pd.isna(value) else f"{value:.{metric.decimals}f}"
    return f"{metric.label} {number}" + (f" {metric.unit}" if metric.unit else "")


def _masked_db(normalized: np.ndarray, kept: KeptTile) -> np.ndarray:
    db = denormalize_db(np.clip(normalized, 0.0, 1.0), kept.db_range)
    return np.where(kept.mask, db, np.nan)


def crop_window(shape: tuple[int, int]) -> tuple[slice, slice]:
    """The central quarter-side square: small enough that single speckle grains are visible."""
    height, width = shape
    size = max(min(height, width) // 4, 1)
    top, left = (height - size) // 2, (width - size) // 2
    return slice(top, top + size), slice(left, left + size)


def draw_comparison(kept: KeptTile, panels: list[Panel], target_bpp: float) -> Figure:
    columns = len(panels)
    figure = Figure(figsize=(2.3 * columns, 7.2), layout="constrained")
    axes = figure.subplots(3, columns, squeeze=False)
    crop = crop_window(kept.original.shape)
    low, high = kept.db_range
    reference = panels[0].db
    for column, panel in enumerate(panels):
        full, zoom, error = axes[:, column]
        image = full.imshow(panel.db, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        full.set_title(panel.title, fontsize=8, color=panel.color)
        zoom.imshow(panel.db[crop], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        difference = error.imshow(panel.db - reference, cmap="RdBu_r", vmin=-ERROR_LIMIT_DB, vmax=ERROR_LIMIT_DB,
                                  interpolation="nearest")
        for axis in (full, zoom, error):
            axis.set_xticks([])
            axis.set_yticks([])
    axes[0, 0].set_ylabel("tile (dB)")
    axes[1, 0].set_ylabel("central crop (dB)")
    axes[2, 0].set_ylabel("error (dB)")
    figure.colorbar(image, ax=axes[:2, -1], shrink=0.8, label="sigma0 (dB)")
    figure.colorbar(difference, ax=axes[2, -1], shrink=0.8, label="reconstructed − original (dB)")
    figure.suptitle(f"{kept.tile_id}: each codec matched to {target_bpp:g} bpp on this tile (match_bpp), or at its "
                    "rate point closest to it", fontsize=9)
    return figure


def write_visuals(report: ReportInput) -> list[Path]:
    """The visual comparisons, captioned with the first headline metric; none when no metric is a headline."""
    headline = report.metrics.headline()
    return write_visual_comparisons(report.folder.path, report.results, headline[0]) if headline else []


@hookimpl
def harness_report_writers() -> list:
    return [write_visuals]
