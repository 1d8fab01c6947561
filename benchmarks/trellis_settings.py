"""Trellis-coded quantization's settings per level: measured with the real codec on tiles, then written into a checkpoint.

The codec's ``quantizer: trellis`` (``_autoencoder/entropy_coding/trellis.py``) quantizes the latent of a level by a
Viterbi search on each channel's image error plus lambda times the bits. It needs, per level, a double step, the
weight of each channel's squared error in the image (measured here by noise on one channel at a time, decoded
with the float model) and lambda (a multiple of the slope of the level's rounded rate-distortion curve, squared
error per bit). On a config's tiles, for each level, this codes every candidate double step and lambda multiple
with the real codec (fp32, real streams, their bytes counted) and prints the rate change at equal PSNR against the
rounded codec's own curve of fractional qualities around the level; ``--apply`` writes a copy of the checkpoint
with the ``Q1`` tables and the chosen levels' settings, measured on the same tiles, the weights and the stream
formats unchanged (its streams decode as before). Choose on training data.

    python benchmarks/trellis_settings.py CHECKPOINT --config A.yaml [--config B.yaml] [--qualities 3,4,...]
    python benchmarks/trellis_settings.py CHECKPOINT --config A.yaml --apply 3:115:1,7:77:0.5 --output OUT.pt

``--apply`` takes ``level:double step code:lambda multiple`` for each trellis-coded level (the code in 64ths).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables, odd_gaussian_tables
from harness_codecs._autoencoder.entropy_coding.trellis import TrellisSettings
from harness_codecs._autoencoder.model.autoencoder import Autoencoder
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint, model_id, save_checkpoint
from harness_codecs._autoencoder.runtime.entropy_coder import EntropyLatentCoder

from benchmark_tiles import benchmark_tiles
from headroom_inputs import channel_weights, psnr, rate_at_psnr

DOUBLE_STEP_CODES = (64, 70, 77, 96, 115)
"""Double steps of 1, 1.1, 1.2, 1.5 and 1.8 (in 64ths): half of each is the step of the rounded codec's ``Q1``."""
LAMBDA_MULTIPLES = (0.25, 0.5, 1.0)
CURVE_OFFSETS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
SLOPE_OFFSET = 0.25
"""Lambda's slope is taken between the fractional qualities this far either side of the level."""
WEIGHT_TILES = 4
BATCH = 4


class Measurement:
    """A checkpoint's model and tables, a config's tiles, and the real codec's points on them."""

    def __init__(self, checkpoint: Path, configs: list[Path]):
        torch.set_num_threads(1)
        self.loaded = load_checkpoint(checkpoint)
        self.model = build_model(self.loaded, checkpoint)
        if not self.model.prior.trellis_coded:
            raise SystemExit(f"{checkpoint}: its {self.model.spec.entropy} prior cannot trellis-code the latent")
        tables = EntropyTables.from_tensors(self.loaded.entropy_tables)
        self.tables = dataclasses.replace(tables, odd=odd_gaussian_tables(tables.scales), trellis=None)
        self.coder = EntropyLatentCoder(self.model, self.tables, model_id(self.loaded.state_dict), torch.device("cpu"))
        self.tiles = [tile for config in configs for tile in benchmark_tiles(config)]
        self.rounded_points: dict[float, tuple[float, float]] = {}
        """The rounded codec's points by quality: the slope's two are also the curve's."""

    def point(self, quality: float, settings: TrellisSettings | None = None) -> tuple[float, float]:
        """Mean bpp of the real streams and mean PSNR of the decoded tiles (each rounded point coded once)."""
        if settings is None:
            if quality not in self.rounded_points:
                self.rounded_points[quality] = self.coded(quality, None)
            return self.rounded_points[quality]
        return self.coded(quality, settings)

    def coded(self, quality: float, settings: TrellisSettings | None) -> tuple[float, float]:
        coder = self.coder.configured(quality, trellis=settings is not None)
        coder.trellis_settings = settings
        streams, decoded = [], []
        for start in range(0, len(self.tiles), BATCH):
            batch = self.tiles[start:start + BATCH]
            streams += coder.encode_batch(batch)
            decoded += coder.decode_batch(streams[start:], [tile.shape for tile in batch])
        bpp = 8 * sum(len(stream) for stream in streams) / sum(tile.size for tile in self.tiles)
        return bpp, float(np.mean([psnr(torch.tensor(out)[None, None], torch.tensor(tile)[None, None])
                                   for out, tile in zip(decoded, self.tiles)]))

    def slope(self, level: int) -> float:
        """Squared error per bit of the rounded codec's curve at ``level``: between the qualities either side."""
        (low_bpp, low_psnr), (high_bpp, high_psnr) = (self.point(self.clipped(level + offset))
                                                      for offset in (-SLOPE_OFFSET, SLOPE_OFFSET))
        return (10 ** (-low_psnr / 10) - 10 ** (-high_psnr / 10)) / (high_bpp - low_bpp)

    def clipped(self, quality: float) -> float:
        return min(max(quality, 0.0), self.model.spec.rate_levels - 1.0)

    def weights(self, level: int) -> np.ndarray:
        """Each channel's weight at ``level``, measured on the first ``WEIGHT_TILES`` tiles."""
        inputs = torch.from_numpy(np.stack(self.tiles[:WEIGHT_TILES])[:, None]).float()
        return channel_weights(self.model, inputs, float(level)).numpy().astype(np.float64)

    def settings(self, level: int, code: int, lmbda: float, weights: np.ndarray) -> TrellisSettings:
        return TrellisSettings(np.array([level]), np.array([code]), weights[None], np.array([lmbda]))


def scan(measurement: Measurement, levels: list[int], codes: tuple[int, ...] = DOUBLE_STEP_CODES,
         multiples: tuple[float, ...] = LAMBDA_MULTIPLES) -> None:
    print("| level | double step | lambda x | bpp | PSNR | rounded bpp at that PSNR | change |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for level in levels:
        curve = np.array([measurement.point(value) for value in
                          sorted({measurement.clipped(level + offset) for offset in CURVE_OFFSETS})])
        slope = measurement.slope(level)
        weights = measurement.weights(level)
        for code in codes:
            for multiple in multiples:
                bpp, psnr_db = measurement.point(level, measurement.settings(level, code, multiple * slope, weights))
                rounded = rate_at_psnr(curve, psnr_db)
                change = "outside" if rounded is None else f"{100 * (bpp / rounded - 1):+.2f} %"
                print(f"| {level} | {code / 64:.3f} | {multiple:g} | {bpp:.4f} | {psnr_db:.3f} | "
                      f"{'-' if rounded is None else f'{rounded:.4f}'} | {change} |", flush=True)


def apply(measurement: Measurement, choices: list[tuple[int, int, float]], checkpoint: Path, output: Path) -> None:
    """Write ``checkpoint`` with the ``Q1`` tables and each chosen level's settings, its weights untouched."""
    levels = [level for level, _, _ in choices]
    settings = TrellisSettings(
        np.array(levels), np.array([code for _, code, _ in choices]),
        np.stack([measurement.weights(level) for level in levels]),
        np.array([multiple * measurement.slope(level) for level, _, multiple in choices]))
    tables = dataclasses.replace(measurement.tables, trellis=settings)
    training = {**measurement.loaded.training,
                "trellis": {"levels": [list(choice) for choice in choices], "from": checkpoint.name}}
    save_checkpoint(dataclasses.replace(measurement.loaded, entropy_tables=tables.to_tensors(), training=training),
                    output)
    print(f"{output}: trellis settings at levels {','.join(map(str, levels))}")


def parsed_choices(text: str) -> list[tuple[int, int, float]]:
    choices = []
    for item in text.split(","):
        level, code, multiple = item.split(":")
        choices.append((int(level), int(code), float(multiple)))
    return choices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--config", type=Path, action="append", required=True)
    parser.add_argument("--qualities", default="3,4,5,6,7,8", help="the levels to measure")
    parser.add_argument("--steps", default=",".join(map(str, DOUBLE_STEP_CODES)), help="double step codes to try")
    parser.add_argument("--lambdas", default=",".join(map(str, LAMBDA_MULTIPLES)), help="lambda multiples to try")
    parser.add_argument("--apply", help="level:double step code:lambda multiple, comma-separated")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.apply and args.output is None:
        parser.error("--apply needs --output")
    measurement = Measurement(args.checkpoint, args.config)
    if args.apply:
        apply(measurement, parsed_choices(args.apply), args.checkpoint, args.output)
    else:
        scan(measurement, [int(value) for value in args.qualities.split(",")],
             tuple(int(value) for value in args.steps.split(",")), tuple(float(value) for value in args.lambdas.split(",")))


if __name__ == "__main__":
    main()
