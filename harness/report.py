"""Summary tables and rate-distortion plots from a run's ``results.csv``.

The report reads only ``results.csv``, so a report can be rebuilt from a
finished, interrupted or copied run without touching codecs or data.

Conventions the tables and plots share:

- Groups (codec, rate point, polarisation) keep the order in which they first
  appear in the results: that is the order of the config, which the user chose.
- Means and standard deviations are over good rows only (``error`` empty) and
  skip NaN; each metric has a ``<metric>_count`` column saying how many tiles
  it rests on, because some metrics (MS-SSIM on small tiles) are NaN by design.
- A lossless point has PSNR ``+inf`` on every tile. The mean of values that
  contain ``inf`` is ``inf`` and is kept as such (rendered ``inf``); its
  standard deviation is undefined and left NaN (rendered blank). Plots cannot
  place ``inf`` on an axis, so they omit such points and say so in the legend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from pandas.api.typing import DataFrameGroupBy

from harness.api import CLIPPED_COLUMNS, MetricColumn
from harness.bdrate import bd_rate_tables
from harness.compressai_json import (
    ReferenceCurve,
    curves_from_summary,
    is_true,
    read_compressai_json,
    write_compressai_json,
)
from harness.errors import UserError
from harness.formatting import format_number
from harness.matched_rates import matched_rate_markdown
from harness.rate_matching import matched_points
from harness.results import NON_METRIC_COLUMNS, TEXT_COLUMNS, MetricDescriptions, RunFolder

SPEED_COLUMNS = ("encode_mpix_s", "decode_mpix_s")
SPEED_BAND = (0.1, 0.9)
"""The quantiles of per-tile speed that the summary and the timing plot give beside the median."""
LABEL_COLUMNS = ("run", "codec", "point", "pol", "device", "precision", "error")
DEFAULT_ANCHOR = "jpeg2000"

GROUP_KEYS = ("codec", "point")
GROUP_KEYS_BY_POL = ("codec", "point", "pol")
GROUP_KEYS_BY_SCENE = ("codec", "point", "scene")

PALETTE = matplotlib.colormaps["tab10"].colors
REFERENCE_PALETTE = matplotlib.colormaps["Dark2"].colors
DPI = 120
FIGURE_SIZE = (6.4, 4.4)
LOW_RATE_BPP = 1.0
DECODE_BAR_STYLE = {"alpha": 0.45, "hatch": "//"}

Color = tuple[float, float, float]


@dataclass(frozen=True)
class ColumnStyle:
    """How a summary column is shown to people: a header with units and a rounding."""

    label: str
    decimals: int


RATE_AND_SPEED_STYLES = {
    "bpp": ColumnStyle("bpp", 3),
    "estimated_bpp": ColumnStyle("estimated bpp", 3),
    "encode_mpix_s": ColumnStyle("encode MPix/s", 2),
    "decode_mpix_s": ColumnStyle("decode MPix/s", 2),
}
"""The summarized values that are not metrics; the metrics describe themselves (``harness.MetricColumn``)."""


def column_style(name: str, metrics: MetricDescriptions) -> ColumnStyle:
    if name in RATE_AND_SPEED_STYLES:
        return RATE_AND_SPEED_STYLES[name]
    column = metrics.of(name)
    return ColumnStyle(column.header, column.decimals)


RATE_AXIS_LABEL = "rate (bits per pixel)"


@dataclass(frozen=True)
class ReportSettings:
    """What the report needs beyond ``results.csv``: the BD-rate anchors, reference curves, plot options, and
    the descriptions of the metric columns (None: those of the installed metric plugins)."""

    anchors: tuple[str, ...] = (DEFAULT_ANCHOR,)
    references: tuple[ReferenceCurve, ...] = ()
    log_rate: bool = False
    metrics: MetricDescriptions | None = None


@dataclass(frozen=True)
class ReportFiles:
    """The files ``write_report`` produced, so the CLI can list them and tests can check them."""

    summary_csv: Path
    summary_by_pol_csv: Path
    summary_by_scene_csv: Path
    summary_md: Path
    bd_rate_csv: Path
    rd_plots: tuple[Path, ...]
    timing_png: Path
    compressai_json: tuple[Path, ...]
    references_json: tuple[Path, ...]

    def paths(self) -> tuple[Path, ...]:
        return (self.summary_csv, self.summary_by_pol_csv, self.summary_by_scene_csv, self.summary_md,
                self.bd_rate_csv, *self.rd_plots, self.timing_png, *self.compressai_json, *self.references_json)


def installed_metric_descriptions() -> MetricDescriptions:
    """The descriptions the installed metric plugins declare: for results from before runs saved theirs."""
    from harness.plugins import build_registry  # the plugins import codecs and torch; a report rarely needs them

    return MetricDescriptions(build_registry().metric_columns())


def run_metric_descriptions(folder: RunFolder) -> MetricDescriptions:
    """The descriptions the run saved, or the installed plugins' for a run from before they were saved."""
    saved = folder.read_metric_columns()
    return MetricDescriptions(saved) if saved is not None else installed_metric_descriptions()


def settings_from_run_dir(run_dir: Path, log_rate: bool = False) -> ReportSettings:
    """Rebuild a run's report settings from the folder alone, so a copied folder reports the same.

    The anchors come from the saved ``config.yaml`` (validated when the run
    started); the reference curves from the copies ``write_report`` saved in
    ``references/``, because the config's own paths may not exist on this machine;
    the metric descriptions from ``metrics.json``.
    """
    folder = RunFolder(run_dir)
    anchors: tuple[str, ...] = (DEFAULT_ANCHOR,)
    if folder.config.is_file():
        try:
            raw = yaml.safe_load(folder.config.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise UserError(f"{folder.config}: not valid YAML: {str(exc).splitlines()[0]}") from None
        value = raw.get("anchor") if isinstance(raw, dict) else None
        if isinstance(value, str):
            anchors = (value,)
        elif isinstance(value, list) and value and all(isinstance(anchor, str) for anchor in value):
            anchors = tuple(dict.fromkeys(value))
    references = tuple(read_compressai_json(path) for path in folder.reference_curves())
    return ReportSettings(anchors=anchors, references=references, log_rate=log_rate,
                          metrics=run_metric_descriptions(folder))


def metric_columns(results: pd.DataFrame) -> list[str]:
    """Every numeric column outside the declared schema, in the file's order (the metrics' declared order).

    ``compression_ratio`` is not a metric: it restates the rate that ``bpp`` already summarizes.
    """
    return [
        column
        for column in results.columns
        if column not in NON_METRIC_COLUMNS
        and pd.api.types.is_numeric_dtype(results[column])
        and not pd.api.types.is_bool_dtype(results[column])
    ]


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (codec, rate point), the numbers every table and plot of the report draws on.

    Columns: ``codec``, ``point``, ``tiles`` (rows, error rows included),
    ``errors``, ``bpp_mean``/``bpp_std`` (and ``estimated_bpp_mean``/``_std``
    when a codec estimates its rate), for each metric ``<m>_mean``,
    ``<m>_std`` and ``<m>_count``, ``encode_mpix_s_median``,
    ``decode_mpix_s_median`` with their ``_p10`` and ``_p90`` over the tiles, ``device`` and ``precision``.
    """
    return _summarize_by(results, GROUP_KEYS)


def summarize_by_pol(results: pd.DataFrame) -> pd.DataFrame:
    """As ``summarize``, split by polarisation: VH is darker and noisier, so codecs fare differently."""
    return _summarize_by(results, GROUP_KEYS_BY_POL)


def summarize_by_scene(results: pd.DataFrame) -> pd.DataFrame:
    """As ``summarize``, split by scene (product or file): a flood scene and a city scene code differently, and a
    study of whole products reads its results per product."""
    return _summarize_by(results, GROUP_KEYS_BY_SCENE)


def _summarize_by(results: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    results = _normalized_columns(results)
    is_error = results["error"] != ""
    all_rows = results.groupby(list(keys), sort=False)
    good_rows = results[~is_error].groupby(list(keys), sort=False)
    parts = [
        all_rows.size().rename("tiles"),
        is_error.groupby([results[key] for key in keys], sort=False).sum().rename("errors"),
        _mean_std(good_rows, "bpp"),
        *(_mean_std(good_rows, column) for column in _estimate_columns(results)),
        *(_mean_std_count(good_rows, metric) for metric in metric_columns(results)),
        *(good_rows[column].median().rename(f"{column}_median") for column in SPEED_COLUMNS),
        *(good_rows[column].quantile(q).rename(f"{column}_p{round(100 * q)}") for column in SPEED_COLUMNS
          for q in SPEED_BAND),
        all_rows["device"].agg(_distinct_text).rename("device"),
        all_rows["precision"].agg(_distinct_text).rename("precision"),
        *([all_rows["lossless"].agg(lambda values: bool(is_true(values).any())).rename("lossless")]
          if "lossless" in results.columns else []),
    ]
    summary = pd.concat(parts, axis=1).reindex(all_rows.size().index).reset_index()
    return _in_first_appearance_order(_counts_as_integers(summary), results, keys)


def _estimate_columns(results: pd.DataFrame) -> list[str]:
    """``estimated_bpp`` when some codec of the run estimates its rate (older runs lack the column);
    ``results`` has been through ``_normalized_columns``, so the column is numeric."""
    if "estimated_bpp" not in results.columns:
        return []
    return ["estimated_bpp"] if results["estimated_bpp"].notna().any() else []


def _counts_as_integers(summary: pd.DataFrame) -> pd.DataFrame:
    """A group with no good rows has no metric counts: that is zero, not missing."""
    counts = [column for column in summary.columns if column.endswith("_count")]
    summary[counts] = summary[counts].fillna(0).astype(int)
    return summary


def _normalized_columns(results: pd.DataFrame) -> pd.DataFrame:
    """A copy whose label columns are plain text and whose value columns are numeric.

    Frames come from ``load_results`` or straight from the runner; one with
    only error rows has its metric columns all empty, which may read as text.
    """
    results = results.copy()
    for column in LABEL_COLUMNS:
        if column not in results.columns:
            results[column] = ""
        results[column] = results[column].fillna("").astype(str)
    for column in ("bpp", *SPEED_COLUMNS):
        if column not in results.columns:
            results[column] = np.nan
    for column in results.columns:
        if column not in TEXT_COLUMNS and not pd.api.types.is_bool_dtype(results[column]):
            results[column] = pd.to_numeric(results[column], errors="coerce")
    return results


def _mean_std(groups: DataFrameGroupBy, column: str) -> pd.DataFrame:
    """Mean and std, silencing numpy's warning on ``inf - inf``: that std is NaN on purpose."""
    with np.errstate(invalid="ignore"):
        return pd.concat(
            [groups[column].mean().rename(f"{column}_mean"), groups[column].std().rename(f"{column}_std")],
            axis=1,
        )


def _mean_std_count(groups: DataFrameGroupBy, column: str) -> pd.DataFrame:
    return pd.concat([_mean_std(groups, column), groups[column].count().rename(f"{column}_count")], axis=1)


def _distinct_text(values: pd.Series) -> str:
    """All distinct non-empty values, in order: a codec that fell back from cuda to cpu shows both."""
    return "/".join(dict.fromkeys(value for value in values if value))


def _in_first_appearance_order(summary: pd.DataFrame, results: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """Sort codecs by first appearance, then each codec's points (and pols) by theirs.

    ``groupby(sort=False)`` orders whole key tuples by first appearance, which
    interleaves codecs when the runner writes rows tile by tile.
    """
    rank_columns = []
    for depth in range(1, len(keys) + 1):
        level = list(keys[:depth])
        rank_name = f"_rank{depth}"
        first_seen = results[level].drop_duplicates()
        ranks = first_seen.assign(**{rank_name: np.arange(len(first_seen))})
        summary = summary.merge(ranks, on=level, how="left")
        rank_columns.append(rank_name)
    return summary.sort_values(rank_columns, kind="stable").drop(columns=rank_columns).reset_index(drop=True)


def codec_colors(codecs: Iterable[str]) -> dict[str, Color]:
    """Colour per codec from the sorted names, so every figure of a run agrees on it."""
    names = sorted(set(codecs))
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}


def write_report(results: pd.DataFrame, run_dir: Path, settings: ReportSettings = ReportSettings()) -> ReportFiles:
    """Write the summary tables, BD-rate table, CompressAI JSON files and figures of one run into ``run_dir``."""
    folder = RunFolder(run_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    metrics = settings.metrics if settings.metrics is not None else installed_metric_descriptions()
    results = _normalized_columns(results)
    run_name = _run_name(results, folder.path)
    summary = summarize(results)
    summary_by_pol = summarize_by_pol(results)
    references = tuple(sorted(settings.references, key=lambda reference: reference.name))
    bd_table = bd_rate_tables(summary, summary_by_pol, settings.anchors, metrics.bd_rate(), references)
    colors = codec_colors(results["codec"])
    rd_plots = metrics.rd_plots()
    files = ReportFiles(
        summary_csv=folder.summary,
        summary_by_pol_csv=folder.summary_by_pol,
        summary_by_scene_csv=folder.summary_by_scene,
        summary_md=folder.summary_markdown,
        bd_rate_csv=folder.bd_rate,
        rd_plots=tuple(folder.rd_plot(metric.name) for metric in rd_plots),
        timing_png=folder.timing_plot,
        compressai_json=_write_curves(curves_from_summary(summary, run_name), folder.compressai),
        references_json=_write_curves(references, folder.references),
    )
    for stale in set(folder.rd_plots()) - set(files.rd_plots):  # a metric this run no longer plots
        stale.unlink()
    summary.to_csv(files.summary_csv, index=False)
    summary_by_pol.to_csv(files.summary_by_pol_csv, index=False)
    summarize_by_scene(results).to_csv(files.summary_by_scene_csv, index=False)
    bd_table.to_csv(files.bd_rate_csv, index=False)
    files.summary_md.write_text(
        summary_markdown(results, summary, summary_by_pol, run_name, bd_table, settings.anchors, metrics),
        encoding="utf-8",
    )
    for metric, path in zip(rd_plots, files.rd_plots):
        _save(rd_figure(summary, metric, colors, run_name, references, settings.log_rate), path)
    _save(_timing_figure(results, colors, run_name), files.timing_png)
    return files


def _write_curves(curves: Sequence[ReferenceCurve], folder: Path) -> tuple[Path, ...]:
    """One CompressAI JSON file per curve, named after it; no folder when there is nothing to write."""
    if curves:
        folder.mkdir(exist_ok=True)
    paths = tuple(folder / f"{_file_stem(curve.name)}.json" for curve in curves)
    for curve, path in zip(curves, paths):
        write_compressai_json(curve, path)
    return paths


def _file_stem(name: str) -> str:
    return "".join(character if character.isalnum() or character in "-_." else "_" for character in name)


def _run_name(results: pd.DataFrame, run_dir: Path) -> str:
    """The run name recorded in the rows; the folder name when there are no rows to ask."""
    names = [name for name in dict.fromkeys(results["run"]) if name]
    return "/".join(names) or run_dir.name


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=DPI)


def summary_markdown(results: pd.DataFrame, summary: pd.DataFrame, summary_by_pol: pd.DataFrame, run_name: str,
                     bd_table: pd.DataFrame, anchors: tuple[str, ...], metrics: MetricDescriptions) -> str:
    """The human-readable report: header counts, both tables, a BD-rate table per anchor, notes and the errors."""
    bd_sections = []
    for anchor in anchors:
        bd_sections += [f"## BD-rate against `{anchor}`",
                        bd_rate_markdown(bd_table[bd_table["anchor"] == anchor], anchor, metrics)]
    sections = [
        f"# Run `{run_name}`",
        _header_lines(results),
        "## Clipping to the dB range",
        clipping_markdown(results),
        "## By codec and rate point",
        _markdown_table(summary, GROUP_KEYS, metrics),
        "## By codec, rate point and polarisation",
        _markdown_table(summary_by_pol, GROUP_KEYS_BY_POL, metrics),
        *_matched_rate_section(results, metrics),
        *bd_sections,
        "## Notes",
        _notes(summary, metrics),
        "## Errors",
        _errors_section(results),
    ]
    return "\n\n".join(sections) + "\n"


def _matched_rate_section(results: pd.DataFrame, metrics: MetricDescriptions) -> list[str]:
    """The heading and table of the ``match_bpp`` points; nothing for a run without them."""
    table = matched_rate_markdown(results, metrics.headline())
    return [] if table is None else ["## At matched rates", table]


def distinct_tiles(results: pd.DataFrame) -> pd.DataFrame:
    """One row per tile (the first of its rows), whatever codecs and points coded it."""
    tile_keys = [column for column in ("dataset", "scene", "tile_id", "pol") if column in results.columns]
    return results.drop_duplicates(tile_keys)


def _header_lines(results: pd.DataFrame) -> str:
    tiles = len(distinct_tiles(results))
    errors = int((results["error"] != "").sum())
    codecs = ", ".join(dict.fromkeys(results["codec"])) or "none"
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


def clipping_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per polarisation, over the distinct tiles: how many were clipped, and the mean and largest shares clipped.

    Empty for results written before these columns existed.
    """
    if not set(CLIPPED_COLUMNS) <= set(results.columns) or results.empty:
        return pd.DataFrame()
    tiles = distinct_tiles(results)
    below, above = (pd.to_numeric(tiles[column]) for column in CLIPPED_COLUMNS)
    per_pol = pd.DataFrame({"pol": tiles["pol"], "below": 100 * below, "above": 100 * above,
                            "clipped": (below > 0) | (above > 0)}).groupby("pol", sort=False)
    return pd.DataFrame({
        "tiles": per_pol.size(),
        "tiles with clipping": per_pol["clipped"].sum(),
        "below: mean %": per_pol["below"].mean(),
        "below: max %": per_pol["below"].max(),
        "above: mean %": per_pol["above"].mean(),
        "above: max %": per_pol["above"].max(),
    }).reset_index()


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
    for value in _all_summarized_values(summary):
        if np.isposinf(summary[f"{value}_mean"].astype(float)).any():
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
        "codec": [f"{codec} (reference)" if source == "reference" else codec
                  for codec, source in zip(bd_table["codec"], bd_table["source"])],
        "pol": bd_table["pol"],
        "metric": [metrics.of(metric).header for metric in bd_table["metric"]],
        "BD-rate (%)": [_bd_cell(value, 2) for value in bd_table["bd_rate_percent"]],
        "BD-quality": [_bd_cell(value, metrics.of(metric).decimals + 1)
                       for value, metric in zip(bd_table["bd_quality"], bd_table["metric"])],
        "rate overlap (bpp)": [_range_cell(low, high, 3) for low, high in zip(bd_table["rate_low"], bd_table["rate_high"])],
        "quality overlap": [_range_cell(low, high, metrics.of(metric).decimals)
                            for low, high, metric in zip(bd_table["quality_low"], bd_table["quality_high"],
                                                         bd_table["metric"])],
        "points (anchor/test)": [f"{anchor_points}/{test_points}" for anchor_points, test_points
                                 in zip(bd_table["anchor_points"], bd_table["test_points"])],
        "note": bd_table["note"],
    })
    alignment = ["left", "left", "left", "right", "right", "right", "right", "right", "left"]
    return BD_RATE_EXPLANATION + "\n\n" + table.to_markdown(index=False, disable_numparse=True, colalign=alignment)


def _bd_cell(value: float, decimals: int) -> str:
    return "not comparable" if pd.isna(value) else f"{value:+.{decimals}f}"


def _range_cell(low: float, high: float, decimals: int) -> str:
    return "none" if pd.isna(low) else f"{low:.{decimals}f} – {high:.{decimals}f}"


def _errors_section(results: pd.DataFrame) -> str:
    errors = results[results["error"] != ""]
    if errors.empty:
        return "No codec raised an error."
    columns = [column for column in ("codec", "point", "scene", "tile_id", "pol", "error") if column in errors.columns]
    table = errors[columns].rename(columns={"tile_id": "tile", "error": "message"})
    return table.to_markdown(index=False)


def _markdown_table(summary: pd.DataFrame, keys: tuple[str, ...], metrics: MetricDescriptions) -> str:
    if summary.empty:
        return "No results."
    table = _display_table(summary, keys, metrics, with_spread=True)
    return table.to_markdown(index=False, disable_numparse=True, colalign=_column_alignment(table, keys))


def format_summary_table(summary: pd.DataFrame, metrics: MetricDescriptions) -> str:
    """The short table the CLI prints after a run: means only, the headline metrics."""
    if summary.empty:
        return "No results."
    shown = {"bpp", *(metric.name for metric in metrics.headline())}
    headline = summary.drop(
        columns=[column for column in summary.columns
                 if column.endswith("_mean") and column.removesuffix("_mean") not in shown]
    )
    table = _display_table(headline, GROUP_KEYS, metrics, with_spread=False)
    return table.to_markdown(
        index=False, tablefmt="simple", disable_numparse=True, colalign=_column_alignment(table, GROUP_KEYS)
    )


def _column_alignment(table: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """Numbers right-aligned so digits line up; labels left. The cells are text, so tabulate cannot tell."""
    labels = {*keys, "device", "precision"}
    return ["left" if column in labels else "right" for column in table.columns]


def _display_table(summary: pd.DataFrame, keys: tuple[str, ...], metrics: MetricDescriptions,
                   with_spread: bool) -> pd.DataFrame:
    """Turn the numeric summary into text cells with readable headers and rounding."""
    table = summary[list(keys)].copy()
    table["tiles"] = summary["tiles"].astype(str)
    table["errors"] = summary["errors"].astype(str)
    for value in _summarized_values(summary):
        style = column_style(value, metrics)
        table[style.label] = _cells(summary, value, style.decimals, with_spread)
        if with_spread and _has_missing_values(summary, value):
            table[f"{style.label} n"] = summary[f"{value}_count"].astype(int).astype(str)
    for column in SPEED_COLUMNS:
        style = RATE_AND_SPEED_STYLES[column]
        table[style.label] = [format_number(value, style.decimals) for value in summary[f"{column}_median"]]
    table["device"] = summary["device"].fillna("").astype(str)
    precision = summary["precision"].fillna("").astype(str)
    if precision.astype(bool).any():
        table["precision"] = precision
    return table


def _summarized_values(summary: pd.DataFrame) -> list[str]:
    """The values the tables show: every summarized one that some tile of the table has."""
    return [value for value in _all_summarized_values(summary) if value not in _undefined_metrics(summary)]


def _all_summarized_values(summary: pd.DataFrame) -> list[str]:
    return [column.removesuffix("_mean") for column in summary.columns if column.endswith("_mean")]


def _undefined_metrics(summary: pd.DataFrame) -> list[str]:
    """Metrics with a value on no tile (border bias where no tile has no-data): a column of blanks says nothing."""
    return [value for value in _all_summarized_values(summary)
            if f"{value}_count" in summary.columns and not summary[f"{value}_count"].any()]


def _has_missing_values(summary: pd.DataFrame, value: str) -> bool:
    """A metric is missing on some tiles when it rests on fewer tiles than the good ones."""
    count_column = f"{value}_count"
    if count_column not in summary.columns:
        return False
    return bool((summary[count_column] < summary["tiles"] - summary["errors"]).any())


def _cells(summary: pd.DataFrame, value: str, decimals: int, with_spread: bool) -> list[str]:
    means = summary[f"{value}_mean"]
    if not with_spread:
        return [format_number(mean, decimals) for mean in means]
    stds = summary[f"{value}_std"]
    return [_mean_plus_minus_std(mean, std, decimals) for mean, std in zip(means, stds)]


def _mean_plus_minus_std(mean: float, std: float, decimals: int) -> str:
    if not np.isfinite(mean) or not np.isfinite(std):
        return format_number(mean, decimals)
    return f"{format_number(mean, decimals)} ± {format_number(std, decimals)}"


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
    rates = summary["bpp_mean"] if "bpp_mean" in summary.columns else pd.Series(dtype=float)
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
    if f"{plot.name}_mean" in summary.columns:
        for codec, points in summary.groupby("codec", sort=False):
            plotted += _draw_rd_line(axes, points, plot.name, codec, colors[codec])
    for index, reference in enumerate(references):
        color = REFERENCE_PALETTE[index % len(REFERENCE_PALETTE)]
        plotted += _draw_reference_line(axes, reference, plot.name, color)
    if log_rate:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if plot.ideal is not None:
        axes.axhline(plot.ideal, color="0.4", linestyle="--", linewidth=1, label=f"ideal ({plot.ideal:g})")
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


def _zoom_on_rates_up_to(axes: Axes, summary: pd.DataFrame, metric: str, rate_limit: float) -> None:
    """Limit the rate axis to ``rate_limit`` and the quality axis to the points (with bars) below it."""
    low = summary[(summary["bpp_mean"] <= rate_limit) & np.isfinite(summary.get(f"{metric}_mean", np.nan))]
    if low.empty:
        return
    left = low["bpp_mean"].min() * 0.9 if axes.get_xscale() == "log" else 0.0
    axes.set_xlim(left, rate_limit * 1.03)
    spread = low[f"{metric}_std"].fillna(0.0)
    bottom, top = (low[f"{metric}_mean"] - spread).min(), (low[f"{metric}_mean"] + spread).max()
    margin = 0.05 * (top - bottom) or 0.5
    axes.set_ylim(bottom - margin, top + margin)


def _draw_rd_line(axes: Axes, points: pd.DataFrame, metric: str, codec: str, color: Color) -> int:
    """Draw one codec's finite points sorted by rate; returns how many were drawn."""
    means = points[f"{metric}_mean"]
    finite = points[np.isfinite(means) & np.isfinite(points["bpp_mean"])].sort_values("bpp_mean")
    lossless = int(np.isposinf(means).sum())
    label = codec if not lossless else f"{codec} ({lossless} lossless point(s) not shown: inf)"
    if finite.empty:
        return 0
    axes.errorbar(
        finite["bpp_mean"],
        finite[f"{metric}_mean"],
        yerr=finite[f"{metric}_std"].fillna(0.0),
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
    pairs = sorted((rate, value) for rate, value in zip(reference.results["bpp"], reference.results[metric])
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
    good = results[results["error"] == ""]
    low, high = SPEED_BAND
    speeds = good.groupby("codec", sort=False).agg(
        encode=("encode_mpix_s", "median"),
        decode=("decode_mpix_s", "median"),
        encode_p10=("encode_mpix_s", lambda values: values.quantile(low)),
        encode_p90=("encode_mpix_s", lambda values: values.quantile(high)),
        decode_p10=("decode_mpix_s", lambda values: values.quantile(low)),
        decode_p90=("decode_mpix_s", lambda values: values.quantile(high)),
        device=("device", _distinct_text),
    )
    speed_columns = [column for column in speeds.columns if column != "device"]
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
    axes.set_yticks(positions, [f"{codec} ({device or 'unknown'})" for codec, device in speeds["device"].items()])
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
