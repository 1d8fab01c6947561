"""The fixed-point step from a network's raw output to Gaussian means and table indexes, exact on any device.

What the hyperprior latent codecs share (``fixed_point.networks`` says why the networks that pick tables run in
fixed point): the hyper-decoder on the integer side latent, the means as dyadic numbers both sides add exactly
to the decoded integers, and each element's table chosen from its raw scale by integer comparisons with
thresholds computed once from the scale table.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import SCALE_FLOOR
from harness_codecs._autoencoder.fixed_point.networks import ACTIVATION_BITS, FixedPointNetwork, table_lookup, to_fixed
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
        self.thresholds = np.floor(raw * 2.0**ACTIVATION_BITS)
        self.count_below = ThresholdCounter(self.thresholds, device)
        self.last = len(scales) - 1

    def __call__(self, raw_scales: torch.Tensor) -> torch.Tensor:
        """Table indexes (int64) of raw scales given in activation units."""
        return torch.clamp(self.count_below(raw_scales) + 1, max=self.last)


class ThresholdCounter:
    """How many of a sorted array's thresholds lie under each value: ``torch.searchsorted(..., side="left")``'s
    answer, by a table lookup instead of a binary search.

    The range of the thresholds is cut into cells of a power-of-two width, at most ``CELLS`` of them and no wider
    than the closest two thresholds where that allows; a value's cell gives how many thresholds lie under the cell,
    and comparing the value with the few thresholds inside the cell (``checks``, usually one) gives the rest. A
    binary search over the 255 thresholds of a scale table branches unpredictably eight times per element: on a
    2-core AMD EPYC VM, one thread, the 131k elements of one checkerboard pass of four 256 px tiles took 2.5 ms
    in ``torch.searchsorted`` and 0.7 ms here, side by side. The values are integers in activation units, as the
    thresholds are, so the cell is exact (a difference, a power of two, a floor) and so is the count."""

    CELLS = 2**16

    def __init__(self, thresholds: np.ndarray, device: torch.device):
        thresholds = np.asarray(thresholds, dtype=np.float64)
        span = float(thresholds[-1] - thresholds[0]) if thresholds.size else 0.0
        gaps = np.diff(thresholds)
        closest = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
        self.width = 2.0 ** max(math.floor(math.log2(closest)), math.ceil(math.log2(max(span, 1.0) / self.CELLS)))
        self.origin = float(thresholds[0]) if thresholds.size else 0.0
        starts = self.origin + self.width * np.arange(int(span / self.width) + 1)
        under = np.searchsorted(thresholds, starts, side="left")
        self.checks = int((np.searchsorted(thresholds, starts + self.width, side="left") - under).max())
        self.under = torch.from_numpy(under).to(device)
        self.padded = torch.from_numpy(np.append(thresholds, [np.inf] * self.checks)).to(device)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """For each value (float64 integers, any shape), the number of thresholds strictly under it (int64)."""
        cells = (values - self.origin).mul_(1.0 / self.width).floor_().clamp_(0, len(self.under) - 1).long()
        below = table_lookup(self.under, cells)
        count = below.clone()
        for offset in range(self.checks):
            count += table_lookup(self.padded, below + offset) < values
        return count


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
