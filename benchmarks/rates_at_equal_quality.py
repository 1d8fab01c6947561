"""Where a codec's lead lies: each of its points' rate against the rate each anchor needs for the same quality.

A BD-rate is one number over the common quality range; this shows it point by point. From a run's summary (mean
over the good tiles per point, as the report's BD-rates take it), each anchor's rate at the codec point's quality
is interpolated log-linearly between the anchor's two neighbouring points (lossless points left out); a point
outside an anchor's range gets no figure. The metric's direction is the run's own description of it.

    python benchmarks/rates_at_equal_quality.py RUN_DIR [--codec autoencoder_checkerboard] \
        [--anchors jpeg2000,avif] [--metric psnr|rmse_db] [--pol VV]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from harness.reporting.bdrate import RDCurve, curve_from_summary
from harness.reporting.settings import run_metric_descriptions
from harness.reporting.summaries import lossless_points, summarize, summarize_by_pol
from harness.reporting.table_columns import MEAN, summary_column
from harness.results import BPP, CODEC, POINT, POL, RunFolder


def anchor_rate(anchor: RDCurve, quality: float, higher_is_better: bool) -> float | None:
    """The anchor's bpp at ``quality``, log-linear between its neighbouring points; None outside its range."""
    finite = anchor.finite()
    sign = 1.0 if higher_is_better else -1.0
    qualities = sign * np.asarray(finite.qualities)
    order = np.argsort(qualities)
    if not qualities.min() <= sign * quality <= qualities.max():
        return None
    return float(np.exp(np.interp(sign * quality, qualities[order], np.log(np.asarray(finite.rates)[order]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its results.csv)")
    parser.add_argument("--codec", default="autoencoder_checkerboard")
    parser.add_argument("--anchors", default="jpeg2000,avif")
    parser.add_argument("--metric", default="psnr", choices=("psnr", "rmse_db"))
    parser.add_argument("--pol", help="only the tiles of this polarisation")
    args = parser.parse_args()
    folder = RunFolder(args.run)
    results = folder.read_results()
    summary = summarize(results)
    if args.pol:
        by_pol = summarize_by_pol(results)
        summary = by_pol[by_pol[POL] == args.pol]
    higher_is_better = run_metric_descriptions(folder).of(args.metric).higher_is_better
    points = summary[summary[CODEC] == args.codec]
    codec = points[~lossless_points(points)].set_index(POINT)
    anchors = {name: curve_from_summary(summary[summary[CODEC] == name], args.metric)
               for name in args.anchors.split(",")}
    bpp, quality = summary_column(BPP, MEAN), summary_column(args.metric, MEAN)
    print(f"| {args.codec} point | bpp | {args.metric} | " + " | ".join(f"vs {name}" for name in anchors) + " |")
    print("|---|---:|---:|" + "---:|" * len(anchors))
    for label, point in codec.sort_values(quality, ascending=higher_is_better).iterrows():
        if pd.isna(point[quality]):
            continue
        cells = []
        for anchor in anchors.values():
            rate = anchor_rate(anchor, point[quality], higher_is_better)
            cells.append("–" if rate is None else f"{100 * (point[bpp] / rate - 1):+.1f} %")
        print(f"| {label} | {point[bpp]:.3f} | {point[quality]:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
