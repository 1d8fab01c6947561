"""What the training tests share: real training data of the repository, fast trainer options, and the trainer
called as the command line calls it."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from harness_codecs._autoencoder.training.trainer import AutoencoderTrainer

REPOSITORY = Path(__file__).resolve().parents[1]
DATA = REPOSITORY / "data"

TRAINING_DATA = f"""\
train:
  - kind: geotiff
    paths: [{DATA}/train/s1_patches/bigearthnet]
    per_polarisation: true
    tile_size: 112
validation:
  - kind: geotiff
    paths: [{DATA}/train/s1_patches/pyrosar]
    polarisations: [VV]
    bands: {{VV: 1}}
    tile_size: 112
"""

REAL_BENCHMARK = f"""\
name: real-small
dataset:
  kind: geotiff
  paths: [{DATA}/test/sen1floods11]
  bands: {{VV: 1, VH: 2}}
  tile_size: 64
  max_tiles: 2
  min_valid_fraction: 1.0
normalization:
  VV: [-25, 5]
  VH: [-32, -2]
codecs:
  - name: autoencoder_checkerboard
    points: [{{checkpoint: model.pt, quality: 0}}, {{checkpoint: model.pt, quality: 1}}]
timing: {{warmup: 0, repeats: 1}}
"""
"""A benchmark of two 64 px windows of the real test chips, whose learned codec is the model trained beside it."""

FAST = ["--preset", "tiny", "--entropy", "checkerboard", "--lmbdas", "50,800", "--patch-size", "64",
        "--batch-size", "2", "--validation-patches", "4", "--checkpoint-every", "2", "--msssim-weight", "0",
        "--device", "cpu", "--no-progress"]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def train_beside(folder: Path, output: Path, *flags: str) -> None:
    """Train fast (``FAST``, then ``flags``) on the ``training.yaml`` written in ``folder``, checked against its
    ``bench.yaml``."""
    train("--config", str(folder / "bench.yaml"), "--data", str(folder / "training.yaml"), "--output", str(output),
          *FAST, *flags)


def train(*flags: str) -> None:
    trainer = AutoencoderTrainer()
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    trainer.train(parser.parse_args(list(flags)))
