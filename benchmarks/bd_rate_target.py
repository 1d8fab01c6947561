"""What a BD-rate target asks of a codec: the rate change at every point, or at some points, that would reach it.

A BD-rate weighs every dB of the common quality range alike, so a saving at a few levels moves it by less than
the saving. From a run's summary (per polarisation too), for each anchor, metric and polarisation: the codec's
BD-rate as the report computes it, the BD-rate if the rate of a group of the codec's points (in the order of their
rates: the lower, middle and upper third) were ``--change`` per cent lower, and the least rate reduction at every
point that reaches the anchor's target (``--targets``, by default issue 26's). A planning aid: it says where a
saving counts, not how to make it.

    python benchmarks/bd_rate_target.py RUN_DIR [--codec autoencoder_checkerboard] \
        [--targets jpeg2000=-25,avif=-10] [--change 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from harness.reporting.bdrate import RDCurve, bd_compare, curve_from_summary
from harness.reporting.settings import run_metric_descriptions
from harness.reporting.summaries import summarize, summarize_by_pol
from harness.results import CODEC, POL, RunFolder

METRICS = ("psnr", "rmse_db")
GROUPS = ("lower", "middle", "upper")


def scaled(curve: RDCurve, factors: np.ndarray) -> RDCurve:
    """The curve with each point's rate times its factor (points in the order of their rates)."""
    order = np.argsort(curve.rates)
    rates = np.asarray(curve.rates, dtype=float)
    rates[order] = rates[order] * factors
    return RDCurve(tuple(rates), curve.qualities)


def bd_rate(anchor: RDCurve, test: RDCurve, higher_is_better: bool) -> float | None:
    return bd_compare(anchor, test, higher_is_better).bd_rate_percent


def reduction_needed(anchor: RDCurve, test: RDCurve, higher_is_better: bool, target: float) -> float | None:
    """The least rate reduction at every point (per cent, in steps of 0.25) whose BD-rate reaches ``target``."""
    for reduction in np.arange(0.0, 50.0, 0.25):
        value = bd_rate(anchor, scaled(test, np.full(len(test.rates), 1 - reduction / 100)), higher_is_better)
        if value is not None and value <= target:
            return float(reduction)
    return None


def group_factors(points: int, group: int, change: float) -> np.ndarray:
    """Factors that lower the rate of one third of the points (0: the lowest rates) by ``change`` per cent."""
    factors = np.ones(points)
    factors[np.array_split(np.arange(points), len(GROUPS))[group]] = 1 - change / 100
    return factors


def rows(summary: pd.DataFrame, codec: str, targets: dict[str, float], higher: dict[str, bool],
         change: float) -> list[dict]:
    found = []
    for metric in METRICS:
        test = curve_from_summary(summary[summary[CODEC] == codec], metric)
        for anchor_name, target in targets.items():
            anchor = curve_from_summary(summary[summary[CODEC] == anchor_name], metric)
            row = {"anchor": anchor_name, "metric": metric, "target": target,
                   "bd_rate": bd_rate(anchor, test, higher[metric])}
            for group, name in enumerate(GROUPS):
                factors = group_factors(len(test.rates), group, change)
                row[f"{name} third -{change:g} %"] = bd_rate(anchor, scaled(test, factors), higher[metric])
            row["every point, for the target"] = reduction_needed(anchor, test, higher[metric], target)
            found.append(row)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its results.csv)")
    parser.add_argument("--codec", default="autoencoder_checkerboard")
    parser.add_argument("--targets", default="jpeg2000=-25,avif=-10",
                        help="anchor=BD-rate to reach (per cent), comma-separated")
    parser.add_argument("--change", type=float, default=5.0, help="rate reduction of a third of the points, per cent")
    args = parser.parse_args()
    targets = {name: float(value) for name, value in (item.split("=") for item in args.targets.split(","))}
    folder = RunFolder(args.run)
    results = folder.read_results()
    descriptions = run_metric_descriptions(folder)
    higher = {metric: descriptions.of(metric).higher_is_better for metric in METRICS}
    by_pol = summarize_by_pol(results)
    parts = [("all", summarize(results))] + [(pol, by_pol[by_pol[POL] == pol]) for pol in sorted(by_pol[POL].unique())]
    table = pd.DataFrame([{"pol": pol, **row} for pol, summary in parts
                          for row in rows(summary, args.codec, targets, higher, args.change)])
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
