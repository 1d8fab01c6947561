"""The numbers every table and figure of a report draws on: pure pandas, no files, no formatting.

Conventions:

- Groups (codec, rate point, polarisation, scene) keep the order in which they
  first appear in the results: that is the order of the config, which the user chose.
- Means and standard deviations are over good rows only (``error`` empty) and
  skip NaN; each metric has a ``<metric>_count`` column saying how many tiles
  it rests on, because some metrics (MS-SSIM on small tiles) are NaN by design.
  Every column is named by ``harness.reporting.table_columns``.
- A lossless point has PSNR ``+inf`` on every tile. The mean of values that
  contain ``inf`` is ``inf`` and is kept as such; its standard deviation is
  undefined and left NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.typing import DataFrameGroupBy

from harness.metrics import PSNR
from harness.reporting.table_columns import (
    COUNT, ERRORS, MEAN, MEDIAN, SPEED_BAND, STD, TILES, quantile, summarized_values, summary_column,
)
from harness.results import (
    BPP, CLIPPED_COLUMNS, CODEC, COMPLEXITY_COLUMNS, DATASET, DEVICE, ERROR, ESTIMATED_BPP, LOSSLESS,
    NON_METRIC_COLUMNS, POINT, POL, PRECISION, RUN, SCENE, SPEED_COLUMNS, TARGET_BPP, TEXT_COLUMNS, TILE_ID,
)

LABEL_COLUMNS = (RUN, CODEC, POINT, POL, DEVICE, PRECISION, ERROR)


GROUP_KEYS = (CODEC, POINT)


GROUP_KEYS_BY_POL = (CODEC, POINT, POL)


GROUP_KEYS_BY_SCENE = (CODEC, POINT, SCENE)


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


def is_true(values: pd.Series) -> pd.Series:
    """A boolean column as written to CSV and read back (bools, or the text True/False)."""
    return values.astype(str).str.lower().eq("true")


def lossless_points(points: pd.DataFrame) -> pd.Series:
    """Which summary rows are lossless points: declared by the codec (the ``lossless`` column) or measured (PSNR
    +inf, which only an exact reconstruction gives).

    A PSNR test alone is not enough: JPEG 2000's lossless mode, or JPEG XL at
    distance 0, is exact on its uint16 samples but not on the float input, so
    its PSNR is high (107 dB) yet finite.
    """
    declared = is_true(points[LOSSLESS]) if LOSSLESS in points.columns else pd.Series(False, index=points.index)
    psnr = summary_column(PSNR, MEAN)
    if psnr not in points.columns:
        return declared
    return declared | np.isposinf(points[psnr].astype(float))


def matched_points(points: pd.DataFrame) -> pd.Series:
    """Which summary or results rows belong to ``match_bpp`` points (a ``target_bpp``).

    The RD curves, BD-rates and CompressAI curves leave them out: a codec's
    native points already trace its curve, a matched point can land on one of
    them (a 2-bit quantizer matched to 2 bpp), and two points at one rate break
    the interpolation. They are compared in the matched-rate table instead.
    Results from before the column have none.
    """
    if TARGET_BPP not in points.columns:
        return pd.Series(False, index=points.index)
    return pd.to_numeric(points[TARGET_BPP], errors="coerce").notna()


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (codec, rate point), the numbers every table and plot of the report draws on.

    Columns: ``codec``, ``point``, ``tiles`` (rows, error rows included),
    ``errors``, ``bpp_mean``/``bpp_std`` (and ``estimated_bpp_mean``/``_std``
    when a codec estimates its rate), for each metric ``<m>_mean``,
    ``<m>_std`` and ``<m>_count``, ``encode_mpix_s_median``,
    ``decode_mpix_s_median`` with their ``_p10`` and ``_p90`` over the tiles, the codec's counted complexity
    (``encode_macs_per_pixel``, ``decode_macs_per_pixel``, ``parameters``) where the results have it,
    ``device`` and ``precision``.
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
    results = normalized_columns(results)
    is_error = results[ERROR] != ""
    all_rows = results.groupby(list(keys), sort=False)
    good_rows = results[~is_error].groupby(list(keys), sort=False)
    parts = [
        all_rows.size().rename(TILES),
        is_error.groupby([results[key] for key in keys], sort=False).sum().rename(ERRORS),
        _mean_std(good_rows, BPP),
        *(_mean_std(good_rows, column) for column in _estimate_columns(results)),
        *(_mean_std_count(good_rows, metric) for metric in metric_columns(results)),
        *(good_rows[column].median().rename(summary_column(column, MEDIAN)) for column in SPEED_COLUMNS),
        *(good_rows[column].quantile(q).rename(summary_column(column, quantile(q))) for column in SPEED_COLUMNS
          for q in SPEED_BAND),
        *(all_rows[column].first().rename(column) for column in (TARGET_BPP, *COMPLEXITY_COLUMNS)
          if column in results.columns),
        all_rows[DEVICE].agg(distinct_text).rename(DEVICE),
        all_rows[PRECISION].agg(distinct_text).rename(PRECISION),
        *([all_rows[LOSSLESS].agg(lambda values: bool(is_true(values).any())).rename(LOSSLESS)]
          if LOSSLESS in results.columns else []),
    ]
    summary = pd.concat(parts, axis=1).reindex(all_rows.size().index).reset_index()
    return _in_first_appearance_order(_counts_as_integers(summary), results, keys)


def _estimate_columns(results: pd.DataFrame) -> list[str]:
    """``estimated_bpp`` when some codec of the run estimates its rate (older runs lack the column);
    ``results`` has been through ``normalized_columns``, so the column is numeric."""
    if ESTIMATED_BPP not in results.columns:
        return []
    return [ESTIMATED_BPP] if results[ESTIMATED_BPP].notna().any() else []


def _counts_as_integers(summary: pd.DataFrame) -> pd.DataFrame:
    """A group with no good rows has no metric counts: that is zero, not missing."""
    counts = [summary_column(value, COUNT) for value in summarized_values(summary.columns, COUNT)]
    summary[counts] = summary[counts].fillna(0).astype(int)
    return summary


def normalized_columns(results: pd.DataFrame) -> pd.DataFrame:
    """A copy whose label columns are plain text and whose value columns are numeric.

    Frames come from ``load_results`` or straight from a run; one with
    only error rows has its metric columns all empty, which may read as text.
    """
    results = results.copy()
    for column in LABEL_COLUMNS:
        if column not in results.columns:
            results[column] = ""
        results[column] = results[column].fillna("").astype(str)
    for column in (BPP, *SPEED_COLUMNS):
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
            [groups[column].mean().rename(summary_column(column, MEAN)),
             groups[column].std().rename(summary_column(column, STD))],
            axis=1,
        )


def _mean_std_count(groups: DataFrameGroupBy, column: str) -> pd.DataFrame:
    return pd.concat([_mean_std(groups, column), groups[column].count().rename(summary_column(column, COUNT))],
                     axis=1)


def distinct_text(values: pd.Series) -> str:
    """All distinct non-empty values, in order: a codec that fell back from cuda to cpu shows both."""
    return "/".join(dict.fromkeys(value for value in values if value))


def _in_first_appearance_order(summary: pd.DataFrame, results: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """Sort codecs by first appearance, then each codec's points (and pols) by theirs.

    ``groupby(sort=False)`` orders whole key tuples by first appearance, which
    interleaves codecs when a run writes rows tile by tile.
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


def distinct_tiles(results: pd.DataFrame) -> pd.DataFrame:
    """One row per tile (the first of its rows), whatever codecs and points coded it."""
    tile_keys = [column for column in (DATASET, SCENE, TILE_ID, POL) if column in results.columns]
    return results.drop_duplicates(tile_keys)


def clipping_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per polarisation, over the distinct tiles: how many were clipped, and the mean and largest shares clipped.

    Empty for results written before these columns existed.
    """
    if not set(CLIPPED_COLUMNS) <= set(results.columns) or results.empty:
        return pd.DataFrame()
    tiles = distinct_tiles(results)
    below, above = (pd.to_numeric(tiles[column]) for column in CLIPPED_COLUMNS)
    per_pol = pd.DataFrame({POL: tiles[POL], "below": 100 * below, "above": 100 * above,
                            "clipped": (below > 0) | (above > 0)}).groupby(POL, sort=False)
    return pd.DataFrame({
        "tiles": per_pol.size(),
        "tiles with clipping": per_pol["clipped"].sum(),
        "below: mean %": per_pol["below"].mean(),
        "below: max %": per_pol["below"].max(),
        "above: mean %": per_pol["above"].mean(),
        "above: max %": per_pol["above"].max(),
    }).reset_index()


def run_name(results: pd.DataFrame, run_dir: Path) -> str:
    """The run name recorded in the rows; the folder name when there are no rows to ask."""
    names = [name for name in dict.fromkeys(results[RUN]) if name]
    return "/".join(names) or run_dir.name
