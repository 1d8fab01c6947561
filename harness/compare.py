"""Differences between two runs, per codec and rate point: did retraining or a code change help?

Both runs are summarized exactly as their reports are, then matched on
(codec, rate point). A point present in only one run is listed as such rather
than dropped, because a silently missing point reads like "no change".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.api import MetricColumn
from harness.reporting.summaries import summarize
from harness.reporting.table_columns import MEAN, MEDIAN, summary_column
from harness.reporting.tables import RATE_AND_SPEED_STYLES
from harness.results import BPP, CODEC, DECODE_MPIX_S, ENCODE_MPIX_S, POINT

KEYS = [CODEC, POINT]
BOTH = "both"
DIFFERENCE_PREFIX = "Δ "


@dataclass(frozen=True)
class RunComparison:
    """One row per (codec, point) of either run: where it is present and ``B - A`` of each compared value."""

    table: pd.DataFrame

    def to_text(self) -> str:
        """A plain-text table for the terminal: signed differences, blank where a point is in one run only."""
        if self.table.empty:
            return "No rate points in either run."
        shown = self.table.copy()
        for column in shown.columns:
            if column.startswith(DIFFERENCE_PREFIX):
                shown[column] = [_signed(value) for value in shown[column]]
        return shown.to_markdown(index=False, tablefmt="simple", disable_numparse=True)


def compare_runs(results_a: pd.DataFrame, results_b: pd.DataFrame, headline: Sequence[MetricColumn]) -> RunComparison:
    """Match the two runs' summaries on (codec, point) and take ``B - A`` of the rate, the ``headline`` metrics and
    the speeds; order: A's points, then B's new ones."""
    summary_a = summarize(results_a)
    summary_b = summarize(results_b)
    merged = summary_a.merge(summary_b, on=KEYS, how="outer", suffixes=("_a", "_b"), indicator=True, sort=False)
    merged = _in_run_order(merged, summary_a, summary_b)
    table = merged[KEYS].copy()
    table["present"] = merged["_merge"].astype(str).map({"both": BOTH, "left_only": "only in A", "right_only": "only in B"})
    for column, label in _compared_values(headline):
        table[f"{DIFFERENCE_PREFIX}{label}"] = _difference(merged, column)
    return RunComparison(table.reset_index(drop=True))


def _compared_values(headline: Sequence[MetricColumn]) -> list[tuple[str, str]]:
    """(summary column, label) of what is compared: mean rate, mean headline metrics, median speeds."""
    return [(summary_column(BPP, MEAN), RATE_AND_SPEED_STYLES[BPP].label),
            *((summary_column(metric.name, MEAN), metric.header) for metric in headline),
            *((summary_column(column, MEDIAN), RATE_AND_SPEED_STYLES[column].label)
              for column in (ENCODE_MPIX_S, DECODE_MPIX_S))]


def _in_run_order(merged: pd.DataFrame, summary_a: pd.DataFrame, summary_b: pd.DataFrame) -> pd.DataFrame:
    order = pd.concat([summary_a[KEYS], summary_b[KEYS]]).drop_duplicates().reset_index(drop=True)
    order["_rank"] = np.arange(len(order))
    return merged.merge(order, on=KEYS).sort_values("_rank", kind="stable").drop(columns="_rank")


def _difference(merged: pd.DataFrame, column: str) -> pd.Series:
    """``B - A``; NaN where either run lacks the value. Two equal infinities (lossless PSNR) differ by 0."""
    if f"{column}_a" not in merged.columns or f"{column}_b" not in merged.columns:
        return pd.Series(np.nan, index=merged.index)
    a = merged[f"{column}_a"].astype(float)
    b = merged[f"{column}_b"].astype(float)
    with np.errstate(invalid="ignore"):
        return pd.Series(np.where(a == b, 0.0, b - a), index=merged.index)


def _signed(value: float) -> str:
    return "" if pd.isna(value) else f"{value:+.4g}"
