"""Percentiles of real Sentinel-1 backscatter in dB, per polarisation, and what a config's dB ranges clip of it.

The normalization ranges are chosen on the training data, never on the test
set: this reads every valid pixel (before clipping) of the dataset sections of
a training-data file (default ``data/training.yaml``, train and validation)
and prints, per polarisation, the percentiles and the shares below and above
the ranges of a benchmark config (default ``benchmarks.yaml``).

    .venv/bin/python scripts/db_statistics.py [--data data/training.yaml] [--config benchmarks.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from harness_codecs._autoencoder.training.data import load_training_data

from harness import BenchmarkContext

ROOT = Path(__file__).resolve().parents[1]
PERCENTILES = (0.1, 1, 5, 50, 95, 99, 99.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "training.yaml")
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    args = parser.parse_args()
    context = BenchmarkContext.load(args.config)
    data = load_training_data(args.data, context)
    values: dict[str, list[np.ndarray]] = {}
    for section in (*data.train, *data.validation):
        for tile in context.read_dataset(section, data.path.parent, context.config.seed):
            values.setdefault(tile.pol, []).append(tile.original_db[tile.mask])
    print(f"valid pixels of {args.data.name} (before clipping); ranges of {args.config.name}")
    print(f"{'pol':4} {'pixels':>9} " + " ".join(f"{'p' + format(p, 'g'):>7}" for p in PERCENTILES)
          + f" {'range':>12} {'below %':>8} {'above %':>8}")
    for pol, parts in sorted(values.items(), reverse=True):
        db = np.concatenate(parts)
        low, high = context.normalization[pol]
        percentiles = " ".join(f"{value:7.1f}" for value in np.percentile(db, PERCENTILES))
        print(f"{pol:4} {db.size:9d} {percentiles} {f'[{low:g}, {high:g}]':>12} "
              f"{100 * np.mean(db < low):8.2f} {100 * np.mean(db > high):8.2f}")


if __name__ == "__main__":
    main()
