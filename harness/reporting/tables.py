"""The report's text: ``summary.md`` and the CSV tables, and the short table printed after a run.

Cells are text with readable headers (a metric's label and unit, ``harness.MetricColumn``) and rounding
(``harness.reporting.formatting``, shared with the HTML page).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.api import ReportInput, hookimpl
from harness.reporting.bdrate import bd_rate_by_scene
from harness.reporting.formatting import codec_calls_text, format_number
from harness.reporting.matched_rates import matched_rate_markdown
from harness.reporting.summaries import (
    GROUP_KEYS,
    GROUP_KEYS_BY_POL,
    clipping_table,
    distinct_tiles,
    summarize_by_scene,
)
from harness.reporting.table_columns import (
    ANCHOR, ANCHOR_POINTS, BD_QUALITY, BD_RATE_PERCENT, COUNT, ERRORS, MEAN, MEDIAN, METRIC, NOTE, QUALITY_HIGH,
    QUALITY_LOW, RATE_HIGH, RATE_LOW, REFERENCE_SOURCE, SOURCE, STD, TEST_POINTS, TILES, summarized_values,
    summary_column,
)
from harness.results import (
    BPP, CODEC, COMPLEXITY_COLUMNS, DECODE_MACS_PER_PIXEL, DECODE_MPIX_S, DEVICE, ENCODE_MACS_PER_PIXEL,
    ENCODE_MPIX_S, ERROR, ESTIMATED_BPP, PARAMETERS, POINT, POL, PRECISION, SCENE, SPEED_COLUMNS, TILE_ID,
    MetricDescriptions,
)

@dataclass(frozen=True)
class ColumnStyle:
    """How a summary column is shown to people: a header with units and a rounding."""

    label: str
    decimals: int


RATE_AND_SPEED_STYLES = {
    BPP: ColumnStyle(BPP, 3),
    ESTIMATED_BPP: ColumnStyle("estimated bpp", 3),
    ENCODE_MPIX_S: ColumnStyle("encode MPix/s", 2),
    DECODE_MPIX_S: ColumnStyle("decode MPix/s", 2),
}
"""The summarized values that are not metrics; the metrics describe themselves (``harness.MetricColumn``)."""


def column_style(name: str, metrics: MetricDescriptions) -> ColumnStyle:
    if name in RATE_AND_SPEED_STYLES:
        return RATE_AND_SPEED_STYLES[name]
    column = metrics.of(name)
    return ColumnStyle(column.header, column.decimals)


def summary_markdown(results: pd.DataFrame, summary: pd.DataFrame, summary_by_pol: pd.DataFrame, run_name: str,
                     bd_table: pd.DataFrame, anchors: tuple[str, ...], metrics: MetricDescriptions,
                     codec_calls: str | None = None) -> str:
    """The human-readable report: header counts (and where the codec calls ran, when the run recorded it), both
    tables, a BD-rate table per anchor, notes and the errors."""
    bd_sections = []
    for anchor in anchors:
        bd_sections += [f"## BD-rate against `{anchor}`",
                        bd_rate_markdown(bd_table[bd_table[ANCHOR] == anchor], anchor, metrics)]
    sections = [
        f"# Run `{run_name}`",
        _header_lines(results) + (f"\n- codec calls: {codec_calls}" if codec_calls else ""),
        "## Clipping to the dB range",
        clipping_markdown(results),
        "## By codec and rate point",
        _markdown_table(summary, GROUP_KEYS, metrics),
        "## By codec, rate point and polarisation",
        _markdown_table(summary_by_pol, GROUP_KEYS_BY_POL, metrics),
        *_complexity_section(summary),
        *_matched_rate_section(results, metrics),
        *bd_sections,
        "## Notes",
        _notes(summary, metrics),
        "## Errors",
        _errors_section(results),
    ]
    return "\n\n".join(sections) + "\n"


COMPLEXITY_EXPLANATION = (
    "Multiply-accumulates per pixel of one encode and one decode of a 256x256 tile, and model parameters, counted "
    "from the layers the codec runs (`Codec.complexity()`): unlike speed, they do not depend on the machine."
)


def complexity_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Codec, point and counted complexity of the points whose codec counts it; empty when none does."""
    if not set(COMPLEXITY_COLUMNS) <= set(summary.columns):
        return pd.DataFrame()
    counted = summary[summary[list(COMPLEXITY_COLUMNS)].notna().any(axis=1)]
    return pd.DataFrame({
        CODEC: counted[CODEC], POINT: counted[POINT],
        "encode MAC/px": [format_number(value, 0) for value in counted[ENCODE_MACS_PER_PIXEL]],
        "decode MAC/px": [format_number(value, 0) for value in counted[DECODE_MACS_PER_PIXEL]],
        PARAMETERS: ["" if pd.isna(value) else f"{int(value):,}" for value in counted[PARAMETERS]],
    })


def _complexity_section(summary: pd.DataFrame) -> list[str]:
    table = complexity_table(summary)
    if table.empty:
        return []
    alignment = ["left", "left", "right", "right", "right"]
    return ["## Complexity", COMPLEXITY_EXPLANATION + "\n\n" +
            table.to_markdown(index=False, disable_numparse=True, colalign=alignment)]


def _matched_rate_section(results: pd.DataFrame, metrics: MetricDescriptions) -> list[str]:
    """The heading and table of the ``match_bpp`` points; nothing for a run without them."""
    table = matched_rate_markdown(results, metrics.headline())
    return [] if table is None else ["## At matched rates", table]


def _header_lines(results: pd.DataFrame) -> str:
    tiles = len(distinct_tiles(results))
    errors = int((results[ERROR] != "").sum())
    codecs = ", ".join(dict.fromkeys(results[CODEC])) or "none"
    return "\n".join(
        [
            f"- tiles: {tiles}",
            f"- rows (codec × rate point × tile): {len(results)}",
            f"- error rows: {errors}",
            f"- codecs: {codecs}",
        ]
    )


CLIPPING_EXPLANATION = (
    "Share of each tile's valid pixels whose dB value lies below or above the normalization range. Every codec "
    "sees them at the range's bounds, and the dB metrics (RMSE, bias) count the difference as error; widen the "
    "range in `normalization` to keep them."
)


def clipping_markdown(results: pd.DataFrame) -> str:
    table = clipping_table(results)
    if table.empty:
        return "Not recorded in these results."
    return CLIPPING_EXPLANATION + "\n\n" + table.to_markdown(index=False, floatfmt=".2f")


def _notes(summary: pd.DataFrame, metrics: MetricDescriptions) -> str:
    lines = [
        "- Cells are mean ± std over the tiles without error; NaN values are skipped "
        "and `n` columns appear where a metric is missing on some tiles.",
        "- Speeds are medians over tiles.",
    ]
    undefined = [column_style(value, metrics).label for value in _undefined_metrics(summary)]
    if undefined and not summary.empty:
        lines.append(f"- Not shown, as no tile of this run has a value: {', '.join(undefined)}.")
    for value in summarized_values(summary.columns):
        if np.isposinf(summary[summary_column(value, MEAN)].astype(float)).any():
            lines.append(f"- {column_style(value, metrics).label} `inf`: at least one tile was reconstructed exactly "
                         "(lossless), so the mean is infinite and the std is left blank.")
    return "\n".join(lines)


BD_RATE_EXPLANATION = (
    "BD-rate: average rate difference at equal quality, in percent of the anchor's rate "
    "(negative = fewer bits than the anchor, better). BD-quality: average quality difference "
    "(test − anchor) at equal rate, in the metric's units; for RMSE lower is better. "
    "PCHIP interpolation over log rate (`bjontegaard` package), integrated over the overlap shown; "
    "means per rate point over the tiles without error, lossless points excluded."
)


def bd_rate_markdown(bd_table: pd.DataFrame, anchor: str, metrics: MetricDescriptions) -> str:
    """The BD-rate table for people: one line per codec, polarisation and metric, "not comparable" spelled out."""
    if bd_table.empty:
        return f"No BD-rate: the anchor codec `{anchor}` has no results in this run, or no other codec to compare."
    table = pd.DataFrame({
        CODEC: [f"{codec} ({REFERENCE_SOURCE})" if source == REFERENCE_SOURCE else codec
                for codec, source in zip(bd_table[CODEC], bd_table[SOURCE])],
        POL: bd_table[POL],
        METRIC: [metrics.of(metric).header for metric in bd_table[METRIC]],
        "BD-rate (%)": [_bd_cell(value, 2) for value in bd_table[BD_RATE_PERCENT]],
        "BD-quality": [_bd_cell(value, metrics.of(metric).decimals + 1)
                       for value, metric in zip(bd_table[BD_QUALITY], bd_table[METRIC])],
        "rate overlap (bpp)": [_range_cell(low, high, 3) for low, high in zip(bd_table[RATE_LOW], bd_table[RATE_HIGH])],
        "quality overlap": [_range_cell(low, high, metrics.of(metric).decimals)
                            for low, high, metric in zip(bd_table[QUALITY_LOW], bd_table[QUALITY_HIGH],
                                                         bd_table[METRIC])],
        "points (anchor/test)": [f"{anchor_points}/{test_points}" for anchor_points, test_points
                                 in zip(bd_table[ANCHOR_POINTS], bd_table[TEST_POINTS])],
        NOTE: bd_table[NOTE],
    })
    alignment = ["left", "left", "left", "right", "right", "right", "right", "right", "left"]
    return BD_RATE_EXPLANATION + "\n\n" + table.to_markdown(index=False, disable_numparse=True, colalign=alignment)


def _bd_cell(value: float, decimals: int) -> str:
    return "not comparable" if pd.isna(value) else f"{value:+.{decimals}f}"


def _range_cell(low: float, high: float, decimals: int) -> str:
    return "none" if pd.isna(low) else f"{low:.{decimals}f} – {high:.{decimals}f}"


def _errors_section(results: pd.DataFrame) -> str:
    errors = results[results[ERROR] != ""]
    if errors.empty:
        return "No codec raised an error."
    columns = [column for column in (CODEC, POINT, SCENE, TILE_ID, POL, ERROR) if column in errors.columns]
    table = errors[columns].rename(columns={TILE_ID: "tile", ERROR: "message"})
    return table.to_markdown(index=False)


def _markdown_table(summary: pd.DataFrame, keys: tuple[str, ...], metrics: MetricDescriptions) -> str:
    if summary.empty:
        return "No results."
    table = display_table(summary, keys, metrics, with_spread=True)
    return table.to_markdown(index=False, disable_numparse=True, colalign=_column_alignment(table, keys))


def format_summary_table(summary: pd.DataFrame, metrics: MetricDescriptions) -> str:
    """The short table the CLI prints after a run: means only, the headline metrics."""
    if summary.empty:
        return "No results."
    shown = {BPP, *(metric.name for metric in metrics.headline())}
    headline = summary.drop(columns=[summary_column(value, MEAN) for value in summarized_values(summary.columns)
                                     if value not in shown])
    table = display_table(headline, GROUP_KEYS, metrics, with_spread=False)
    return table.to_markdown(
        index=False, tablefmt="simple", disable_numparse=True, colalign=_column_alignment(table, GROUP_KEYS)
    )


def _column_alignment(table: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """Numbers right-aligned so digits line up; labels left. The cells are text, so tabulate cannot tell."""
    labels = {*keys, DEVICE, PRECISION}
    return ["left" if column in labels else "right" for column in table.columns]


def display_table(summary: pd.DataFrame, keys: tuple[str, ...], metrics: MetricDescriptions,
                   with_spread: bool) -> pd.DataFrame:
    """Turn the numeric summary into text cells with readable headers and rounding."""
    table = summary[list(keys)].copy()
    table[TILES] = summary[TILES].astype(str)
    table[ERRORS] = summary[ERRORS].astype(str)
    for value in _summarized_values(summary):
        style = column_style(value, metrics)
        table[style.label] = _cells(summary, value, style.decimals, with_spread)
        if with_spread and _has_missing_values(summary, value):
            table[f"{style.label} n"] = summary[summary_column(value, COUNT)].astype(int).astype(str)
    for column in SPEED_COLUMNS:
        style = RATE_AND_SPEED_STYLES[column]
        table[style.label] = [format_number(value, style.decimals)
                              for value in summary[summary_column(column, MEDIAN)]]
    table[DEVICE] = summary[DEVICE].fillna("").astype(str)
    precision = summary[PRECISION].fillna("").astype(str)
    if precision.astype(bool).any():
        table[PRECISION] = precision
    return table


def _summarized_values(summary: pd.DataFrame) -> list[str]:
    """The values the tables show: every summarized one that some tile of the table has."""
    return [value for value in summarized_values(summary.columns) if value not in _undefined_metrics(summary)]


def _undefined_metrics(summary: pd.DataFrame) -> list[str]:
    """Metrics with a value on no tile (border bias where no tile has no-data): a column of blanks says nothing."""
    return [value for value in summarized_values(summary.columns)
            if summary_column(value, COUNT) in summary.columns and not summary[summary_column(value, COUNT)].any()]


def _has_missing_values(summary: pd.DataFrame, value: str) -> bool:
    """A metric is missing on some tiles when it rests on fewer tiles than the good ones."""
    count_column = summary_column(value, COUNT)
    if count_column not in summary.columns:
        return False
    return bool((summary[count_column] < summary[TILES] - summary[ERRORS]).any())


def _cells(summary: pd.DataFrame, value: str, decimals: int, with_spread: bool) -> list[str]:
    means = summary[summary_column(value, MEAN)]
    if not with_spread:
        return [format_number(mean, decimals) for mean in means]
    stds = summary[summary_column(value, STD)]
    return [_mean_plus_minus_std(mean, std, decimals) for mean, std in zip(means, stds)]


def _mean_plus_minus_std(mean: float, std: float, decimals: int) -> str:
    if not np.isfinite(mean) or not np.isfinite(std):
        return format_number(mean, decimals)
    return f"{format_number(mean, decimals)} ± {format_number(std, decimals)}"


def write_tables(report: ReportInput) -> list[Path]:
    """The summaries as CSV (per point, per polarisation, per scene), the BD-rate tables (over the test set, and
    per scene), and ``summary.md``."""
    folder = report.folder
    report.summary.to_csv(folder.summary, index=False)
    report.summary_by_pol.to_csv(folder.summary_by_pol, index=False)
    summary_by_scene = summarize_by_scene(report.results)
    summary_by_scene.to_csv(folder.summary_by_scene, index=False)
    report.bd_rate.to_csv(folder.bd_rate, index=False)
    bd_rate_by_scene(summary_by_scene, report.anchors, report.metrics.bd_rate()).to_csv(folder.bd_rate_by_scene,
                                                                                        index=False)
    folder.summary_markdown.write_text(
        summary_markdown(report.results, report.summary, report.summary_by_pol, report.run_name, report.bd_rate,
                         report.anchors, report.metrics, codec_calls_text(report.folder.read_environment())),
        encoding="utf-8",
    )
    return [folder.summary, folder.summary_by_pol, folder.summary_by_scene, folder.bd_rate, folder.bd_rate_by_scene,
            folder.summary_markdown]


@hookimpl
def harness_report_writers() -> list:
    return [write_tables]
