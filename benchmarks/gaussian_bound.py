"""How far each codec's points lie above the rate a Gaussian source with the tiles' spectra needs.

A stationary Gaussian source with a given power spectrum has a known rate-distortion function (reverse
water-filling: every frequency whose power lies above a water level costs half the log2 of its ratio to it). Among
sources with that spectrum the Gaussian is the hardest to code, so a codec can only go below this rate by what it
makes of the rest of the tiles' structure (their non-Gaussian statistics, and how they change within a tile). For a
codec that quantizes each coefficient of an ideal transform with a scalar quantizer and codes it with an ideal
entropy coder, high-rate theory (Gish & Pierce 1968) adds 0.254 bit per coefficient that lies above the water
level: the scalar quantizer's loss, which trellis-coded or vector quantization can recover in part. That estimate
holds where those coefficients are coded at high rate (from about 1.5 bits each); below it the real loss is smaller.

Each tile's spectrum is its periodogram (its mean removed) averaged over 8 x 8 neighbouring frequencies, so that a
tile's own spectrum counts without fitting each coefficient's single sample; one water level for all tiles, at the
mean squared error of the point's mean PSNR (peak 1, as the report's PSNR). From a run's summary and the config it
ran (for its tiles; the no-data fill of a tile counts in its spectrum):

    python benchmarks/gaussian_bound.py RUN_DIR [--config benchmarks.yaml] [--codecs autoencoder_checkerboard,jpeg2000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_tiles import benchmark_tiles
from harness.reporting.summaries import lossless_points, summarize
from harness.reporting.table_columns import MEAN, summary_column
from harness.results import BPP, CODEC, POINT, RunFolder

SMOOTHING = 8
"""Neighbouring frequencies (per side) a tile's periodogram is averaged over."""
SCALAR_QUANTIZER_LOSS = 0.254
"""Bits per coefficient an entropy-coded scalar quantizer needs above the rate-distortion function at high rate:
``0.5 * log2(pi * e / 6)``."""


def tile_spectra(tiles: np.ndarray) -> torch.Tensor:
    """Each tile's power per frequency (mean squared error units), smoothed over ``SMOOTHING`` frequencies."""
    data = torch.from_numpy(tiles).double()
    power = torch.fft.fft2(data - data.mean(dim=(1, 2), keepdim=True)).abs().pow(2) / data[0].numel()
    low, high = SMOOTHING // 2, SMOOTHING - 1 - SMOOTHING // 2
    padded = F.pad(power[:, None], (low, high, low, high), mode="circular")
    return F.avg_pool2d(padded, SMOOTHING, stride=1)[:, 0]


def water_level(spectra: torch.Tensor, distortion: float) -> float:
    """The level below which frequencies are left out, so that the mean squared error is ``distortion``."""
    low, high = 0.0, float(spectra.max())
    for _ in range(100):
        level = (low + high) / 2
        if float(spectra.clamp(max=level).mean()) > distortion:
            high = level
        else:
            low = level
    return (low + high) / 2


def gaussian_rates(spectra: torch.Tensor, psnr: float) -> tuple[float, float]:
    """Bits per pixel a Gaussian source with ``spectra`` needs at ``psnr``, and the high-rate estimate of an ideal
    transform with a scalar quantizer at the same error."""
    level = water_level(spectra, 10 ** (-psnr / 10))
    bound = float((0.5 * torch.log2(spectra.clamp(min=level) / level)).mean())
    return bound, bound + SCALAR_QUANTIZER_LOSS * float((spectra > level).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (its results.csv)")
    parser.add_argument("--config", type=Path, default=Path("benchmarks.yaml"), help="the config the run ran")
    parser.add_argument("--codecs", default="autoencoder_checkerboard,jpeg2000")
    args = parser.parse_args()
    spectra = tile_spectra(np.stack(benchmark_tiles(args.config)))
    summary = summarize(RunFolder(args.run).read_results())
    bpp, psnr = summary_column(BPP, MEAN), summary_column("psnr", MEAN)
    print("| codec | point | bpp | PSNR | Gaussian source | above it | ideal transform, scalar quantizer |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.codecs.split(","):
        points = summary[summary[CODEC] == name]
        for _, point in points[~lossless_points(points)].sort_values(bpp).iterrows():
            bound, scalar = gaussian_rates(spectra, point[psnr])
            print(f"| {name} | {point[POINT]} | {point[bpp]:.3f} | {point[psnr]:.2f} | {bound:.3f} "
                  f"| {100 * (point[bpp] / bound - 1):+.1f} % | {scalar:.3f} |")


if __name__ == "__main__":
    main()
