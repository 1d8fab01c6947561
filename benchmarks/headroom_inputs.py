"""What the headroom estimates (``channel_context_headroom.py``, ``decoder_side_headroom.py``) start from: a
checkpoint's model, a config's tiles as one batch, the qualities asked for, each tile's latent with the means and
scales the checkerboard prior gives it, as the codec codes them, and the code length the prior gives a residual."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import gaussian_likelihood
from harness_codecs._autoencoder.model.autoencoder import Autoencoder
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint

from benchmark_tiles import benchmark_tiles


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


def code_length(residuals: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Bits of each integer residual under a zero-mean Gaussian bin of its scale, as the prior rates it."""
    return -torch.log2(gaussian_likelihood(residuals, torch.zeros_like(residuals), scales))
