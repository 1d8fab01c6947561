"""Bjøntegaard deltas: how much rate (or quality) a codec saves against the anchor codec.

A single number per codec is what a reader wants, but it is only honest over
the range where both curves exist, so every result carries the overlap it was
integrated over, and says "not comparable" with the reason instead of a
number when that range is empty or a curve has too few points for PCHIP.

The interpolation is the maintained ``bjontegaard`` package with PCHIP, the
method of current video-coding common test conditions. Its conventions, which
this module adapts to:

- rates are given linear (bpp); it takes ``log10`` itself and returns BD-rate
  in percent;
- the interpolated variable must increase strictly along the curve, and
  quality is assumed to rise with rate. A metric where lower is better
  (RMSE in dB) is negated on the way in and the BD-quality negated on the way
  out, so BD-quality is always ``test - anchor`` in the metric's own units.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bjontegaard
import numpy as np
import pandas as pd

from harness.api import MetricColumn
from harness.curves import ReferenceCurve
from harness.reporting.summaries import lossless_points, matched_points
from harness.reporting.table_columns import (
    ANCHOR, ANCHOR_POINTS, BD_COLUMNS, BD_QUALITY, BD_RATE_PERCENT, BETTER, CODEC_SOURCE, MEAN, METRIC, NOTE,
    QUALITY_HIGH, QUALITY_LOW, RATE_HIGH, RATE_LOW, REFERENCE_SOURCE, SOURCE, TEST_POINTS, summary_column,
)
from harness.results import BPP, CODEC, POL, SCENE

MIN_POINTS = 4
INTERPOLATION = "pchip"
ALL_POLARISATIONS = "all"


@dataclass(frozen=True)
class RDCurve:
    """Mean rate (bpp) and mean quality per rate point, in any order."""

    rates: tuple[float, ...]
    qualities: tuple[float, ...]

    def finite(self) -> RDCurve:
        """Only points with a positive finite rate and a finite quality (lossless points have PSNR inf)."""
        pairs = [(rate, quality) for rate, quality in zip(self.rates, self.qualities)
                 if np.isfinite(rate) and rate > 0 and np.isfinite(quality)]
        return RDCurve(tuple(rate for rate, _ in pairs), tuple(quality for _, quality in pairs))

    def sorted_by_rate(self) -> RDCurve:
        order = np.argsort(self.rates, kind="stable")
        return RDCurve(tuple(self.rates[index] for index in order), tuple(self.qualities[index] for index in order))


@dataclass(frozen=True)
class BDResult:
    """One test curve against the anchor: the deltas, the ranges they rest on, or why there is no number.

    ``bd_rate_percent`` is negative when the test needs fewer bits for the same
    quality; ``bd_quality`` is ``test - anchor`` at the same rate. Either is
    None when not comparable, and ``note`` then says why.
    """

    bd_rate_percent: float | None
    bd_quality: float | None
    rate_overlap: tuple[float, float] | None
    quality_overlap: tuple[float, float] | None
    note: str


def bd_compare(anchor: RDCurve, test: RDCurve, higher_is_better: bool) -> BDResult:
    """BD-rate and BD-quality of ``test`` against ``anchor`` with PCHIP, over their overlap."""
    anchor = anchor.finite().sorted_by_rate()
    test = test.finite().sorted_by_rate()
    rate_overlap = _overlap(anchor.rates, test.rates)
    quality_overlap = _overlap(anchor.qualities, test.qualities)
    too_few = _too_few_points(anchor, test)
    if too_few:
        return BDResult(None, None, rate_overlap, quality_overlap, too_few)
    sign = 1.0 if higher_is_better else -1.0
    anchor_quality = sign * np.asarray(anchor.qualities)
    test_quality = sign * np.asarray(test.qualities)
    notes = []
    bd_rate = None
    if not (_strictly_increasing(anchor_quality) and _strictly_increasing(test_quality)):
        notes.append("BD-rate not comparable: quality does not improve strictly with rate")
    elif quality_overlap is None:
        notes.append("BD-rate not comparable: quality ranges do not overlap")
    else:
        bd_rate = _delta(bjontegaard.bd_rate, anchor.rates, anchor_quality, test.rates, test_quality)
    bd_quality = None
    if not (_strictly_increasing(anchor.rates) and _strictly_increasing(test.rates)):
        notes.append("BD-quality not comparable: two points share a rate")
    elif rate_overlap is None:
        notes.append("BD-quality not comparable: rate ranges do not overlap")
    else:
        bd_quality = sign * _delta(bjontegaard.bd_psnr, anchor.rates, anchor_quality, test.rates, test_quality)
    return BDResult(bd_rate, bd_quality, rate_overlap, quality_overlap, "; ".join(notes))


def _too_few_points(anchor: RDCurve, test: RDCurve) -> str:
    for role, curve in (("anchor", anchor), ("test", test)):
        if len(curve.rates) < MIN_POINTS:
            return f"not comparable: {role} has {len(curve.rates)} lossy point(s), {MIN_POINTS} needed"
    return ""


def _overlap(first: tuple[float, ...], second: tuple[float, ...]) -> tuple[float, float] | None:
    """The shared interval of two value ranges; None when empty or a single value."""
    if not first or not second:
        return None
    low, high = max(min(first), min(second)), min(max(first), max(second))
    return (float(low), float(high)) if low < high else None


def _strictly_increasing(values: np.ndarray | tuple[float, ...]) -> bool:
    return bool(np.all(np.diff(np.asarray(values, dtype=float)) > 0))


def _delta(function: Callable[..., float], rate_anchor: tuple[float, ...], quality_anchor: np.ndarray,
           rate_test: tuple[float, ...], quality_test: np.ndarray) -> float:
    """Call a ``bjontegaard`` delta; its overlap warning is redundant with the overlap we report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(np.asarray(rate_anchor), quality_anchor, np.asarray(rate_test), quality_test,
                              method=INTERPOLATION, require_matching_points=False, min_overlap=0))


def bd_rate_table(summary: pd.DataFrame, summary_by_pol: pd.DataFrame, anchor: str, metrics: Sequence[MetricColumn],
                  references: Sequence[ReferenceCurve] = ()) -> pd.DataFrame:
    """Every codec (and reference curve) against the anchor, per metric, overall and per polarisation.

    ``metrics`` are the columns to compare (those whose metric asks for BD-rate rows), with their direction.

    Overall rows use the means over all tiles; a reference curve has no
    polarisation, so it is compared with the anchor's overall curve only.
    ``match_bpp`` points are left out (``summaries.matched_points``).
    Returns an empty table with the ``BD_COLUMNS`` when the anchor has no results.
    """
    rows = []
    groups = [(ALL_POLARISATIONS, summary)]
    if POL in summary_by_pol.columns:
        groups += [(str(pol), part) for pol, part in summary_by_pol.groupby(POL, sort=False)]
    for pol, table in groups:
        # match_bpp points are compared in the matched-rate table; a codec with no other point has no curve here.
        table = table[~matched_points(table)]
        by_codec = {str(codec): points for codec, points in table.groupby(CODEC, sort=False)}
        if anchor not in by_codec:
            continue
        tests = [(codec, CODEC_SOURCE, points) for codec, points in by_codec.items() if codec != anchor]
        for metric in metrics:
            if summary_column(metric.name, MEAN) not in table.columns:
                continue
            anchor_curve = curve_from_summary(by_codec[anchor], metric.name)
            for codec, source, points in tests:
                rows.append(_row(codec, source, pol, metric, anchor, anchor_curve,
                                 curve_from_summary(points, metric.name)))
            if pol == ALL_POLARISATIONS:
                rows.extend(_row(reference.name, REFERENCE_SOURCE, pol, metric, anchor, anchor_curve,
                                 RDCurve(reference.results[BPP], reference.results[metric.name]))
                            for reference in references if metric.name in reference.results)
    return pd.DataFrame(rows, columns=list(BD_COLUMNS))


def bd_rate_tables(summary: pd.DataFrame, summary_by_pol: pd.DataFrame, anchors: Sequence[str],
                   metrics: Sequence[MetricColumn], references: Sequence[ReferenceCurve] = ()) -> pd.DataFrame:
    """``bd_rate_table`` against each anchor in turn, one table (its ``anchor`` column tells them apart)."""
    return pd.concat([bd_rate_table(summary, summary_by_pol, anchor, metrics, references) for anchor in anchors],
                     ignore_index=True)


def bd_rate_by_scene(summary_by_scene: pd.DataFrame, anchors: Sequence[str],
                     metrics: Sequence[MetricColumn]) -> pd.DataFrame:
    """``bd_rate_tables`` of each scene on its own (its tiles' means, the polarisations together), a ``scene``
    column first: a lead over the whole test set can hide a scene where it shrinks or turns (a flood plain, a
    product with no-data). Reference curves are left out, as they hold no scene."""
    parts = [bd_rate_tables(part, part.iloc[0:0], anchors, metrics).assign(**{SCENE: scene})
             for scene, part in summary_by_scene.groupby(SCENE, sort=False)]
    columns = [SCENE, *BD_COLUMNS]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def curve_from_summary(points: pd.DataFrame, metric: str) -> RDCurve:
    """A codec's mean curve for one metric, without its lossless points.

    A lossless point may have finite MS-SSIM (1) and RMSE (0), but it sits at
    a rate no lossy codec aims for and would stretch the overlap.
    """
    lossy = points[~lossless_points(points)]
    return RDCurve(tuple(lossy[summary_column(BPP, MEAN)].astype(float)),
                   tuple(lossy[summary_column(metric, MEAN)].astype(float)))


def _row(codec: str, source: str, pol: str, metric: MetricColumn, anchor: str,
         anchor_curve: RDCurve, test_curve: RDCurve) -> dict:
    result = bd_compare(anchor_curve, test_curve, metric.higher_is_better)
    rate_low, rate_high = result.rate_overlap or (np.nan, np.nan)
    quality_low, quality_high = result.quality_overlap or (np.nan, np.nan)
    return {
        CODEC: codec, SOURCE: source, POL: pol, METRIC: metric.name,
        BETTER: "higher" if metric.higher_is_better else "lower", ANCHOR: anchor,
        ANCHOR_POINTS: len(anchor_curve.finite().rates), TEST_POINTS: len(test_curve.finite().rates),
        RATE_LOW: rate_low, RATE_HIGH: rate_high, QUALITY_LOW: quality_low, QUALITY_HIGH: quality_high,
        BD_RATE_PERCENT: np.nan if result.bd_rate_percent is None else result.bd_rate_percent,
        BD_QUALITY: np.nan if result.bd_quality is None else result.bd_quality,
        NOTE: result.note,
    }
