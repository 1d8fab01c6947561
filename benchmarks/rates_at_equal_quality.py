"""Where a codec's lead lies: each of its points' rate against the rate each anchor needs for the same quality.

A BD-rate is one number over the common quality range; this shows it point by point. From a run's results (mean
over the tiles per point, error rows left out), each anchor's rate at the codec point's quality is interpolated
log-linearly between the anchor's two neighbouring points (lossless points left out); a point outside an anchor's
range gets no figure.

    python benchmarks/rates_at_equal_quality.py RUN_DIR [--codec autoencoder_checkerboard] \
        [--anchors jpeg2000,avif] [--metric psnr|rmse_db] [--pol VV]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from harness.results import RunFolder

LOWER_IS_BETTER = {"rmse_db"}


def curve(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean bpp and ``metric`` per point, lossless points left out, in increasing quality."""
    points = rows[~rows["options"].str.contains("lossless")].groupby("options", sort=False)
    means = points.agg(bpp=("bpp", "mean"), quality=(metric, "mean")).dropna()
    return means.sort_values("quality", ascending=metric not in LOWER_IS_BETTER)


def anchor_rate(anchor: pd.DataFrame, quality: float, metric: str) -> float | None:
    """The anchor's bpp at ``quality``, log-linear between its neighbouring points; None outside its range."""
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    qualities, rates = sign * anchor["quality"].to_numpy(), np.log(anchor["bpp"].to_numpy())
    if not qualities.min() <= sign * quality <= qualities.max():
        return None
    return float(np.exp(np.interp(sign * quality, qualities, rates)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its results.csv)")
    parser.add_argument("--codec", default="autoencoder_checkerboard")
    parser.add_argument("--anchors", default="jpeg2000,avif")
    parser.add_argument("--metric", default="psnr", choices=("psnr", "rmse_db"))
    parser.add_argument("--pol", help="only the tiles of this polarisation")
    args = parser.parse_args()
    rows = RunFolder(args.run).read_results()
    rows = rows[rows["error"] == ""]
    if args.pol:
        rows = rows[rows["pol"] == args.pol]
    codec = curve(rows[rows["codec"] == args.codec], args.metric)
    anchors = {name: curve(rows[rows["codec"] == name], args.metric) for name in args.anchors.split(",")}
    print(f"| {args.codec} point | bpp | {args.metric} | " + " | ".join(f"vs {name}" for name in anchors) + " |")
    print("|---|---:|---:|" + "---:|" * len(anchors))
    for options, point in codec.iterrows():
        cells = []
        for name, anchor in anchors.items():
            rate = anchor_rate(anchor, point["quality"], args.metric)
            cells.append("–" if rate is None else f"{100 * (point['bpp'] / rate - 1):+.1f} %")
        print(f"| {options} | {point['bpp']:.3f} | {point['quality']:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
