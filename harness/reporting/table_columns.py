"""The columns of the report's tables, declared once: the summaries (``summary.csv``, per polarisation, per scene)
and the BD-rate table (``bd_rate.csv``).

A summary has one row per group (codec and rate point, and polarisation or scene): the group's keys and counts,
statistics over its good rows of each summarized value (the rate, the speeds, every metric), and the results
columns that describe the point (``target_bpp``, the complexity counts, device, precision, lossless). A statistic's
column is ``<value>_<statistic>`` (``bpp_mean``), named by ``summary_column`` alone, so that every table, figure and
BD-rate reads the same name; the value it summarizes is a results column (``harness.results``) or a metric's.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.columns import Column, column_names
from harness.results import CODEC, POL

MEAN, STD, COUNT, MEDIAN = "mean", "std", "count", "median"
"""The statistics of a summarized value: mean and std over the good rows (skipping NaN), the rows it has a value on
(metrics only: some are NaN by design), and the median (speeds)."""
SPEED_BAND = (0.1, 0.9)
"""The quantiles of per-tile speed that the summary and the timing plot give beside the median."""

SUMMARY_COUNTS_SPEC = (
    Column("tiles", int, description="The group's rows, error rows included."),
    Column("errors", int, description="The group's error rows."),
)
TILES, ERRORS = column_names(SUMMARY_COUNTS_SPEC)


def quantile(q: float) -> str:
    """The statistic of the quantile ``q`` (``p10`` for 0.1)."""
    return f"p{round(100 * q)}"


STATISTICS = (MEAN, STD, COUNT, MEDIAN, *map(quantile, SPEED_BAND))
"""Every statistic a summary holds of some value."""


def summary_column(value: str, statistic: str) -> str:
    """The summary's column of ``statistic`` over ``value`` (``bpp``, ``mean``: ``bpp_mean``)."""
    return f"{value}_{statistic}"


def summarized_values(columns: Iterable[str], statistic: str = MEAN) -> list[str]:
    """The values that ``columns`` (a summary's) hold ``statistic`` of, in their order."""
    suffix = summary_column("", statistic)
    return [column.removesuffix(suffix) for column in columns if column.endswith(suffix)]


CODEC_SOURCE, REFERENCE_SOURCE = "codec", "reference"
"""The values of the BD-rate table's ``source``: a codec of the run, or a reference curve the config names."""
BD_SPEC = (
    Column(CODEC, str, description="The codec, or reference curve, compared with the anchor."),
    Column("source", str, description=f"``{CODEC_SOURCE}`` or ``{REFERENCE_SOURCE}``."),
    Column(POL, str, description="The polarisation whose means make the curves, or ``all``."),
    Column("metric", str, description="The quality metric's results column."),
    Column("better", str, description="``higher`` or ``lower``: the metric's direction."),
    Column("anchor", str, description="The anchor codec."),
    Column("anchor_points", int, description="The anchor's points on the curve (finite, lossy, native)."),
    Column("test_points", int, description="The compared curve's points."),
    Column("rate_low", float, "bit/pixel", "The lower end of the rates both curves span."),
    Column("rate_high", float, "bit/pixel", "The upper end of the rates both curves span."),
    Column("quality_low", float, description="The lower end of the qualities both curves span, in the metric's unit."),
    Column("quality_high", float, description="The upper end of the qualities both curves span."),
    Column("bd_rate_percent", float, "%", "The average rate difference at equal quality, in percent of the "
           "anchor's rate; empty when not comparable."),
    Column("bd_quality", float, description="The average quality difference (test − anchor) at equal rate, in the "
           "metric's unit; empty when not comparable."),
    Column("note", str, description="Why a pair is not comparable, or what to know about it."),
)
(_, SOURCE, _, METRIC, BETTER, ANCHOR, ANCHOR_POINTS, TEST_POINTS, RATE_LOW, RATE_HIGH, QUALITY_LOW, QUALITY_HIGH,
 BD_RATE_PERCENT, BD_QUALITY, NOTE) = column_names(BD_SPEC)
BD_COLUMNS = column_names(BD_SPEC)
