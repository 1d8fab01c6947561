"""The report's figures: one rate-distortion figure per metric that asks for one, and the timing figure.

Plots cannot place ``inf`` (a lossless PSNR) on an axis, so they omit such points and say so in the legend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from harness.api import MetricColumn, ReportInput, hookimpl
from harness.curves import ReferenceCurve
from harness.reporting.summaries import distinct_text, matched_points
from harness.reporting.table_columns import MEAN, SPEED_BAND, STD, summary_column
from harness.results import BPP, CODEC, DECODE_MPIX_S, DEVICE, ENCODE_MPIX_S, ERROR

PALETTE = matplotlib.colormaps["tab10"].colors
MEAN_RATE = summary_column(BPP, MEAN)


REFERENCE_PALETTE = matplotlib.colormaps["Dark2"].colors


DPI = 120


FIGURE_SIZE = (6.4, 4.4)


LOW_RATE_BPP = 1.0


DECODE_BAR_STYLE = {"alpha": 0.45, "hatch": "//"}

Color = tuple[float, float, float]


RATE_AXIS_LABEL = "rate (bits per pixel)"


def codec_colors(codecs: Iterable[str]) -> dict[str, Color]:
    """Colour per codec from the sorted names, so every figure of a run agrees on it."""
    names = sorted(set(codecs))
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI)


def rd_figure(summary: pd.DataFrame, plot: MetricColumn, colors: dict[str, Color], run_name: str,
              references: Sequence[ReferenceCurve] = (), log_rate: bool = False) -> Figure:
    """Mean metric against mean bpp per point, one line per codec, ±1 std error bars; references dashed.

    When the run spans rates above ``LOW_RATE_BPP`` and has several points
    below, a second panel zooms on the low rates: that is where learned codecs
    and most of the literature's comparisons live, and a lossless point at 14
    bpp would otherwise squeeze them into a corner. ``match_bpp`` points are
    not drawn: the matched-rate table compares them.
    """
    summary = summary[~matched_points(summary)]
    rates = summary[MEAN_RATE] if MEAN_RATE in summary.columns else pd.Series(dtype=float)
    zoom = bool((rates > LOW_RATE_BPP).any() and (rates <= LOW_RATE_BPP).sum() >= 2)
    figure = Figure(figsize=(FIGURE_SIZE[0] * (2 if zoom else 1), FIGURE_SIZE[1]), layout="constrained")
    panels = figure.subplots(1, 2 if zoom else 1, squeeze=False)[0]
    for axes, rate_limit in zip(panels, (None, LOW_RATE_BPP)):
        _draw_rd_panel(axes, summary, plot, colors, references, log_rate, rate_limit)
    figure.suptitle(f"{run_name}: {plot.label} vs rate (bars: ±1 std over tiles)", fontsize=10)
    return figure


def _draw_rd_panel(axes: Axes, summary: pd.DataFrame, plot: MetricColumn, colors: dict[str, Color],
                   references: Sequence[ReferenceCurve], log_rate: bool, rate_limit: float | None) -> None:
    plotted = 0
    if summary_column(plot.name, MEAN) in summary.columns:
        for codec, points in summary.groupby(CODEC, sort=False):
            plotted += _draw_rd_line(axes, points, plot.name, codec, colors[codec])
    for index, reference in enumerate(references):
        color = REFERENCE_PALETTE[index % len(REFERENCE_PALETTE)]
        plotted += _draw_reference_line(axes, reference, plot.name, color)
    if log_rate:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if plot.ideal is not None:
        axes.axhline(plot.ideal, color="0.4", linestyle="--", linewidth=1, label=f"ideal ({plot.ideal:g})")
    _draw_baseline(axes, summary, plot)
    if not plotted:
        _empty_note(axes, f"no finite {plot.name} values to plot")
    if rate_limit is not None:
        _zoom_on_rates_up_to(axes, summary, plot.name, rate_limit)
    axes.set_xlabel(f"{RATE_AXIS_LABEL}, log scale" if log_rate else RATE_AXIS_LABEL)
    axes.set_ylabel(plot.axis_label)
    axes.set_title("all rates" if rate_limit is None else f"up to {rate_limit:g} bpp", fontsize=9)
    axes.grid(True, alpha=0.3)
    if rate_limit is None and axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)


def _draw_baseline(axes: Axes, summary: pd.DataFrame, plot: MetricColumn) -> None:
    """The original tiles' score (``plot.baseline``) as a dotted line: its mean over the points, which differ only
    where error rows left tiles out."""
    column = summary_column(plot.baseline, MEAN)
    if not plot.baseline or column not in summary.columns:
        return
    values = summary[column][np.isfinite(summary[column])]
    if not values.empty:
        level = float(values.mean())
        axes.axhline(level, color="0.2", linestyle=":", linewidth=1.2, label=f"original tiles ({level:.3g})")


def _zoom_on_rates_up_to(axes: Axes, summary: pd.DataFrame, metric: str, rate_limit: float) -> None:
    """Limit the rate axis to ``rate_limit`` and the quality axis to the points (with bars) below it."""
    mean = summary_column(metric, MEAN)
    low = summary[(summary[MEAN_RATE] <= rate_limit) & np.isfinite(summary.get(mean, np.nan))]
    if low.empty:
        return
    left = low[MEAN_RATE].min() * 0.9 if axes.get_xscale() == "log" else 0.0
    axes.set_xlim(left, rate_limit * 1.03)
    spread = low[summary_column(metric, STD)].fillna(0.0)
    bottom, top = (low[mean] - spread).min(), (low[mean] + spread).max()
    margin = 0.05 * (top - bottom) or 0.5
    axes.set_ylim(bottom - margin, top + margin)


def _draw_rd_line(axes: Axes, points: pd.DataFrame, metric: str, codec: str, color: Color) -> int:
    """Draw one codec's finite points sorted by rate; returns how many were drawn."""
    means = points[summary_column(metric, MEAN)]
    finite = points[np.isfinite(means) & np.isfinite(points[MEAN_RATE])].sort_values(MEAN_RATE)
    lossless = int(np.isposinf(means).sum())
    label = codec if not lossless else f"{codec} ({lossless} lossless point(s) not shown: inf)"
    if finite.empty:
        return 0
    axes.errorbar(
        finite[MEAN_RATE],
        finite[summary_column(metric, MEAN)],
        yerr=finite[summary_column(metric, STD)].fillna(0.0),
        color=color,
        marker="o",
        markersize=4,
        capsize=3,
        linewidth=1.5,
        label=label,
    )
    return len(finite)


def _draw_reference_line(axes: Axes, reference: ReferenceCurve, metric: str, color: Color) -> int:
    """A reference curve (CompressAI JSON) as a dashed line labelled with its name; returns points drawn."""
    if metric not in reference.results:
        return 0
    pairs = sorted((rate, value) for rate, value in zip(reference.results[BPP], reference.results[metric])
                   if np.isfinite(rate) and rate > 0 and np.isfinite(value))
    if not pairs:
        return 0
    rates, values = zip(*pairs)
    axes.plot(rates, values, color=color, linestyle="--", marker="s", markersize=3, linewidth=1.2,
              label=f"{reference.name} (reference)")
    return len(pairs)


def _timing_figure(results: pd.DataFrame, colors: dict[str, Color], run_name: str) -> Figure:
    """Median encode and decode MPix/s per codec on a log axis, device in the label, and the p10–p90 band of the
    per-tile speeds as a whisker: a wide one says the speeds are not to be trusted to one figure."""
    speeds = _median_speed_per_codec(results)
    figure = Figure(figsize=(FIGURE_SIZE[0], 1.6 + 0.6 * max(len(speeds), 1)), layout="constrained")
    axes = figure.add_subplot()
    if speeds.empty:
        _empty_note(axes, "no successful rows to time")
    else:
        _draw_speed_bars(axes, speeds, colors)
        _set_log_speed_axis(axes, speeds[["encode", "decode", "encode_p90", "decode_p90"]].stack())
    axes.set_xlabel("median throughput, p10–p90 whiskers (MPix/s, log scale)")
    axes.set_title(f"{run_name}: encode and decode speed", fontsize=10)
    axes.grid(True, axis="x", which="both", alpha=0.3)
    return figure


def _set_log_speed_axis(axes: Axes, speeds: pd.Series) -> None:
    """Whole decades as limits, so a bar's length means the same in every report; plain numbers as ticks."""
    low = 10.0 ** np.floor(np.log10(speeds.min()))
    high = 10.0 ** np.ceil(np.log10(speeds.max() * 1.5))
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _median_speed_per_codec(results: pd.DataFrame) -> pd.DataFrame:
    """Median speed over all points and tiles of each codec; non-positive speeds cannot sit on a log axis."""
    good = results[results[ERROR] == ""]
    low, high = SPEED_BAND
    speeds = good.groupby(CODEC, sort=False).agg(
        encode=(ENCODE_MPIX_S, "median"),
        decode=(DECODE_MPIX_S, "median"),
        encode_p10=(ENCODE_MPIX_S, lambda values: values.quantile(low)),
        encode_p90=(ENCODE_MPIX_S, lambda values: values.quantile(high)),
        decode_p10=(DECODE_MPIX_S, lambda values: values.quantile(low)),
        decode_p90=(DECODE_MPIX_S, lambda values: values.quantile(high)),
        device=(DEVICE, distinct_text),
    )
    speed_columns = [column for column in speeds.columns if column != DEVICE]
    speeds[speed_columns] = speeds[speed_columns].where(speeds[speed_columns] > 0)
    return speeds.dropna(subset=["encode", "decode"], how="all")


def _draw_speed_bars(axes: Axes, speeds: pd.DataFrame, colors: dict[str, Color]) -> None:
    positions = np.arange(len(speeds))
    height = 0.38
    bar_colors = [colors[codec] for codec in speeds.index]
    for offset, column, style in ((-height / 2, "encode", {}), (height / 2, "decode", DECODE_BAR_STYLE)):
        values = speeds[column]
        whiskers = np.vstack([values - speeds[f"{column}_p10"], speeds[f"{column}_p90"] - values]).clip(min=0)
        bars = axes.barh(positions + offset, values.fillna(0), height, color=bar_colors,
                         xerr=np.nan_to_num(whiskers), error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.25"},
                         **style)
        axes.bar_label(bars, labels=[_speed_label(value) for value in values], padding=2, fontsize=7)
    axes.set_yticks(positions, [f"{codec} ({device or 'unknown'})" for codec, device in speeds[DEVICE].items()])
    axes.invert_yaxis()
    axes.legend(
        handles=[Patch(color="0.3", label="encode"), Patch(facecolor="0.3", label="decode", **DECODE_BAR_STYLE)],
        fontsize=8,
    )


def _speed_label(value: float) -> str:
    """Three significant figures without exponent notation, which reads badly next to a bar."""
    if pd.isna(value):
        return ""
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def _empty_note(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="0.4")


def write_figures(report: ReportInput) -> list[Path]:
    """``rd_<metric>.png`` for every metric declaring ``rd_plot``, and ``timing.png``; RD figures of metrics the
    run no longer plots are removed, so the folder never shows a stale one."""
    folder, colors = report.folder, codec_colors(report.results[CODEC])
    plotted = {metric.name: folder.rd_plot(metric.name) for metric in report.metrics.rd_plots()}
    for stale in set(folder.rd_plots()) - set(plotted.values()):
        stale.unlink()
    for metric in report.metrics.rd_plots():
        _save(rd_figure(report.summary, metric, colors, report.run_name, report.references, report.log_rate),
              plotted[metric.name])
    _save(_timing_figure(report.results, colors, report.run_name), folder.timing_plot)
    return [*plotted.values(), folder.timing_plot]


@hookimpl
def harness_report_writers() -> list:
    return [write_figures]
