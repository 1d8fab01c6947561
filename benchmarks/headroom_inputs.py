"""What the headroom estimates (``channel_context_headroom.py``, ``decoder_side_headroom.py``, ``coding_limits.py``)
start from: a checkpoint's model, a config's tiles as one batch, the qualities asked for, each tile's latent with the
means and scales the checkerboard prior gives it, as the codec codes them, the code length the prior gives a
residual, a tile's fewest bits with its scales moved per band as the encoder's scale shifts move them, the
decoded tiles' PSNR, and the rate a curve of such points needs at a given PSNR."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import gaussian_likelihood
from harness_codecs._autoencoder.entropy_coding.scale_shift import BAND_SCALES
from harness_codecs._autoencoder.model.autoencoder import Autoencoder
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint

from benchmark_tiles import benchmark_tiles

SCALE_MULTIPLIERS = 2.0 ** (torch.arange(-24, 25) / 16)
WEIGHT_NOISE = 0.25
"""The standard deviation of the noise ``channel_weights`` puts on one channel at a time."""
"""The scale multipliers an estimate chooses from per tile and band (the codec's shifts are steps of 2^(1/16))."""


def headroom_inputs(description: str) -> tuple[Autoencoder, torch.Tensor, list[float]]:
    """The model (on one torch thread), the tiles ``(N, 1, H, W)`` and the qualities of the command line:
    ``CHECKPOINT [--config benchmarks.yaml] [--qualities 0,4,8]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--config", type=Path, default=Path("benchmarks.yaml"))
    parser.add_argument("--qualities", default="0,4,8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build_model(load_checkpoint(args.checkpoint), args.checkpoint)
    tiles = torch.from_numpy(np.stack(benchmark_tiles(args.config))[:, None]).float()
    return model, tiles, [float(value) for value in args.qualities.split(",")]


def latent_and_parameters(model: Autoencoder, tiles: torch.Tensor, quality: float) -> tuple[torch.Tensor, ...]:
    """The latent and the means and scales the checkerboard prior gives each element, as the codec codes them."""
    latent = model.encode(tiles, torch.full((len(tiles),), quality))
    prior = model.prior
    return latent, *prior.element_parameters(latent, torch.round(prior.hyper_encoder(latent)), torch.round)


def psnr(decoded: torch.Tensor, tiles: torch.Tensor) -> float:
    """Mean over the tiles of the PSNR of the decoded tile, clipped to [0, 1] as the codec clips it."""
    mse = (decoded.clamp(0.0, 1.0) - tiles).pow(2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1 / mse)).mean())


def rate_at_psnr(curve: np.ndarray, psnr_db: float) -> float | None:
    """The bpp a curve of ``(bpp, PSNR)`` points needs at ``psnr_db``, log-linear between its neighbouring points;
    None outside its range. How the estimates compare a changed codec with the model's own fractional qualities."""
    curve = curve[np.argsort(curve[:, 1])]
    if not curve[0, 1] <= psnr_db <= curve[-1, 1]:
        return None
    return float(np.exp(np.interp(psnr_db, curve[:, 1], np.log(curve[:, 0]))))


def code_length(residuals: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Bits of each integer residual under a zero-mean Gaussian bin of its scale, as the prior rates it."""
    return -torch.log2(gaussian_likelihood(residuals, torch.zeros_like(residuals), scales))


def fewest_bits_by_band(bits: torch.Tensor, scales: torch.Tensor) -> float:
    """One tile's bits with the best of ``SCALE_MULTIPLIERS`` in each band of its ``scales`` (``BAND_SCALES``):
    ``bits`` holds each element's bits under each multiplier, multipliers first, the elements shaped as ``scales``."""
    bands = torch.bucketize(scales, torch.tensor(BAND_SCALES))
    return sum(float(bits[:, bands == band].sum(dim=1).min()) for band in bands.unique())


@torch.inference_mode()
def channel_weights(model: Autoencoder, tiles: torch.Tensor, quality: float) -> torch.Tensor:
    """Squared image error per squared latent error, per channel, at ``quality``: noise on one channel at a time
    of the rounded latent of ``tiles`` (N x 1 x H x W), decoded. What a trellis search weighs each channel's error
    by."""
    qualities = torch.full((len(tiles),), quality)
    latent = torch.round(model.encode(tiles, qualities))
    base = model.decode(latent, qualities)
    generator = torch.Generator().manual_seed(0)
    weights = torch.empty(latent.shape[1])
    for channel in range(latent.shape[1]):
        noise = torch.zeros_like(latent)
        noise[:, channel] = WEIGHT_NOISE * torch.randn(noise[:, channel].shape, generator=generator)
        weights[channel] = (model.decode(latent + noise, qualities) - base).pow(2).sum() / noise.pow(2).sum()
    return weights
