"""The report's table of every codec at the same rates: its ``match_bpp`` points, target by target.

An RD curve answers "how much better per bit on average"; a reader choosing a
codec for a fixed budget asks "at 0.5 bpp, which keeps the data best". Each
row is one codec at one target: how close its tiles came (the share within
``CLOSE_ENOUGH`` under the target, and the share over it, where the codec
cannot go that low), and the headline metrics, best first by the first of
them with a direction (PSNR for the built-ins) among the codecs that kept
every tile within the budget, then the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.api import MetricColumn
from harness.reporting.formatting import format_number
from harness.rate_matching import CLOSE_ENOUGH
from harness.reporting.summaries import matched_points
from harness.results import BPP, CODEC, ERROR, TARGET_BPP
EXPLANATION = (
    "Every codec's `match_bpp` points: per tile, the harness searched the codec's rate knob with real encodes "
    f"for the highest rate at or under the target. \"within {CLOSE_ENOUGH:.0%}\": share of tiles whose rate "
    f"lies between {1 - CLOSE_ENOUGH:.2f}x the target and the target (a knob's granularity, or a codec's header, "
    "can keep a tile further under); \"over\": share above it, where even the knob's lowest setting spends more. "
    "Means over the tiles without error; best first, codecs over the target on some tiles last."
)


def matched_rate_table(results: pd.DataFrame, metrics: Sequence[MetricColumn]) -> pd.DataFrame:
    """One row per codec and target, for the good rows of ``match_bpp`` points, with the mean of each of
    ``metrics``; empty when there are none."""
    good = results[(results[ERROR] == "") & matched_points(results)].copy()
    if good.empty:
        return pd.DataFrame()
    good["target"] = pd.to_numeric(good[TARGET_BPP])
    rows = []
    for (target, codec), tiles in good.groupby(["target", CODEC], sort=False):
        rates = pd.to_numeric(tiles[BPP])
        row = {"target bpp": target, CODEC: codec, "tiles": len(tiles), BPP: rates.mean(),
               f"within {CLOSE_ENOUGH:.0%} (%)": 100 * rates.between((1 - CLOSE_ENOUGH) * target, target).mean(),
               "over (%)": 100 * (rates > target).mean()}
        for metric in metrics:
            if metric.name in tiles.columns:
                row[metric.header] = pd.to_numeric(tiles[metric.name]).mean()
        rows.append(row)
    table = pd.DataFrame(rows)
    # A codec that spent more than the target on some tiles is not competing on the same budget: it comes last.
    ranking = table.assign(_over=table["over (%)"] > 0)
    order, ascending = ["target bpp", "_over"], [True, True]
    ranked_by = next((metric for metric in metrics if metric.higher_is_better is not None
                      and metric.header in table.columns), None)
    if ranked_by is not None:
        order.append(ranked_by.header)
        ascending.append(not ranked_by.higher_is_better)
    ranking = ranking.sort_values(order, ascending=ascending, kind="stable")
    return ranking.drop(columns="_over").reset_index(drop=True)


def matched_rate_markdown(results: pd.DataFrame, metrics: Sequence[MetricColumn]) -> str | None:
    """The table with its explanation, or None when the run has no ``match_bpp`` point."""
    table = matched_rate_table(results, metrics)
    if table.empty:
        return None
    decimals = {"target bpp": 3, BPP: 3, **{metric.header: metric.decimals for metric in metrics}}
    text = table.copy()
    for column in text.columns:
        if column in decimals:
            text[column] = text[column].map(lambda value, places=decimals[column]: format_number(value, places))
        elif column.endswith("(%)"):
            text[column] = text[column].map(lambda value: format_number(value, 0))
    alignment = ["left" if column == CODEC else "right" for column in text.columns]
    return EXPLANATION + "\n\n" + text.to_markdown(index=False, disable_numparse=True, colalign=alignment)
