"""The fixed-point step from a network's raw output to Gaussian means and table indexes, exact on any device.

What the hyperprior latent codecs share (``fixed_point.networks`` says why the networks that pick tables run in
fixed point): the hyper-decoder on the integer side latent, the means as dyadic numbers both sides add exactly
to the decoded integers, and each element's table chosen from its raw scale by integer comparisons with
thresholds computed once from the scale table.
"""

from __future__ import annotations

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import SCALE_FLOOR
from harness_codecs._autoencoder.fixed_point.networks import ACTIVATION_BITS, FixedPointNetwork, to_fixed
from torch import nn


class ScaleThresholds:
    """Picks each element's Gaussian table from its raw scale in activation units, by integer comparisons.

    The float model's scale is ``floor + softplus(raw)`` and its table that of the smallest tabulated scale at
    least as large. ``softplus`` is increasing, so that table is one plus the number of
    thresholds ``softplus^-1(table[i] - floor)``, i >= 1, lying under ``raw``; in activation units, the integer
    ``raw`` lies over the threshold exactly when it lies over the threshold's floor.
    """

    def __init__(self, scales: np.ndarray, scale_floor: float, device: torch.device):
        above_floor = np.asarray(scales[1:], dtype=np.float64) - scale_floor
        raw = np.log(np.expm1(above_floor))
        self.thresholds = torch.from_numpy(np.floor(raw * 2.0**ACTIVATION_BITS)).to(device)
        self.last = len(scales) - 1

    def __call__(self, raw_scales: torch.Tensor) -> torch.Tensor:
        """Table indexes (int64) of raw scales given in activation units."""
        below = torch.searchsorted(self.thresholds, raw_scales.contiguous(), side="left")
        return torch.clamp(below + 1, max=self.last)


class FixedPointGaussians:
    """What the fixed-point hyperpriors share: the hyper-decoder on the integer side latent, and the step from a
    network's raw output (means, then raw scales, along the first axis) to means and table indexes."""

    def __init__(self, hyper_decoder: nn.Sequential, scales: np.ndarray, device: torch.device):
        self.hyper_decoder = FixedPointNetwork(hyper_decoder, device)
        self.tables = ScaleThresholds(scales, SCALE_FLOOR, device)
        self.device = device

    def hyper(self, side: np.ndarray, latent_shape: tuple[int, int]) -> torch.Tensor:
        """Hyper-decoder output (activation units, on the device) for a batch of side latents (batch x C x h x w)
        of latents of ``latent_shape``."""
        height, width = latent_shape
        return self.hyper_decoder(to_fixed(torch.from_numpy(side).to(self.device)))[..., :height, :width]

    def means_and_tables(self, output: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Means (float64, multiples of ``2 ** -ACTIVATION_BITS``) and table indexes from a raw output (batch x
        channels x ...)."""
        means, raw_scales = output.chunk(2, dim=1)
        return values_of(means), self.tables(raw_scales).cpu().numpy()


def values_of(activations: torch.Tensor) -> np.ndarray:
    """Activation units back to values: exact, as the units are a power of two."""
    return activations.cpu().numpy() / 2.0**ACTIVATION_BITS
