"""Learned probability models of the quantized latent: a factorized prior and a mean-scale hyperprior.

A fixed-length code spends the same bits on every latent value; these models
give each integer symbol a probability, so that a range coder spends
``-log2 p`` bits on it, and training can minimise that rate.

* ``FactorizedDensity`` is the non-parametric per-channel density of Ballé et
  al. (2018, appendix 6.1): a small monotone network per channel models the
  cumulative distribution, and a symbol's probability is the CDF's increase
  over its quantization bin. It codes the whole latent in the factorized
  variant and the side information ``z`` in the hyperprior variant.
* ``HyperPrior`` is the mean-scale hyperprior of Minnen et al. (2018), without
  the autoregressive context: a hyper-encoder summarises the latent ``y`` into
  ``z`` at a quarter of its resolution, ``z`` is coded under a factorized
  density, and the hyper-decoder predicts a Gaussian mean and scale for every
  element of ``y``.

During training, quantization is replaced by additive uniform noise (the
same proxy as the fixed-length codec) and the likelihoods give the estimated
rate, ``-sum(log2 p) / pixels``. The codec rounds and entropy-codes with
probability tables computed once from these models (``entropy_tables``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOOD_FLOOR = 1e-9
"""Keeps ``log2 p`` finite for the rare value far out in a tail."""

SCALE_FLOOR = 0.11
"""The smallest Gaussian scale predicted, the smallest one in the coder's scale table (as in CompressAI)."""

DENSITY_FILTERS = (3, 3, 3)
DENSITY_INIT_SCALE = 10.0


class FactorizedDensity(nn.Module):
    """One learned univariate density per channel, through its cumulative distribution's logits.

    ``cdf_logits`` is monotone in its input by construction (softplus weights,
    ``tanh`` gates bounded below by -1), so ``sigmoid(cdf_logits)`` is a CDF.
    """

    def __init__(self, channels: int):
        super().__init__()
        widths = (1, *DENSITY_FILTERS, 1)
        scale = DENSITY_INIT_SCALE ** (1 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for index in range(len(widths) - 1):
            initial = math.log(math.expm1(1 / scale / widths[index + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[index + 1], widths[index]), initial)))
            self.biases.append(nn.Parameter(torch.rand(channels, widths[index + 1], 1) - 0.5))
            if index < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[index + 1], 1)))

    @property
    def channels(self) -> int:
        return self.matrices[0].shape[0]

    def cdf_logits(self, values: torch.Tensor) -> torch.Tensor:
        """``values``: (C, 1, N) -> logits of the CDF at each value, (C, 1, N)."""
        logits = values
        for index, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if index < len(self.factors):
                logits = logits + torch.tanh(self.factors[index]) * torch.tanh(logits)
        return logits

    def likelihood(self, latent: torch.Tensor) -> torch.Tensor:
        """Probability of each element's unit-wide bin around its value; ``latent``: (N, C, H, W)."""
        batch, channels, height, width = latent.shape
        values = latent.permute(1, 0, 2, 3).reshape(channels, 1, -1)
        lower = self.cdf_logits(values - 0.5)
        upper = self.cdf_logits(values + 0.5)
        # Subtract sigmoids on the side of the distribution where they are small, for precision in the tails.
        sign = -torch.sign(lower + upper).detach()
        probability = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        probability = probability.reshape(channels, batch, height, width).permute(1, 0, 2, 3)
        return probability.clamp_min(LIKELIHOOD_FLOOR)


def gaussian_likelihood(values: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Probability of the unit-wide bin around each value under N(mean, scale), computed on the
    tail's side (``erfc``) so that far-out values keep their precision."""
    centred = torch.abs(values - means)
    upper = _gaussian_survival((centred - 0.5) / scales)
    lower = _gaussian_survival((centred + 0.5) / scales)
    return (upper - lower).clamp_min(LIKELIHOOD_FLOOR)


def _gaussian_survival(values: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(values / math.sqrt(2.0))


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def _up(in_channels: int, out_channels: int, kernel_size: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2,
                              output_padding=1)


class HyperPrior(nn.Module):
    """Hyper-encoder ``y -> z`` (1/4 of y's resolution), factorized density of ``z``, and the
    hyper-decoder ``z -> (mean, scale)`` of every element of ``y``."""

    def __init__(self, latent_channels: int, hidden_channels: int, hyper_channels: int):
        super().__init__()
        self.hyper_encoder = nn.Sequential(
            _conv(latent_channels, hidden_channels, 3, 1), nn.GELU(),
            _conv(hidden_channels, hidden_channels, 5, 2), nn.GELU(),
            _conv(hidden_channels, hyper_channels, 5, 2),
        )
        self.hyper_decoder = nn.Sequential(
            _up(hyper_channels, hidden_channels, 5), nn.GELU(),
            _up(hidden_channels, hidden_channels, 5), nn.GELU(),
            _conv(hidden_channels, 2 * latent_channels, 3, 1),
        )
        self.side_density = FactorizedDensity(hyper_channels)

    def parameters_of(self, side: torch.Tensor, latent_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian means and scales for a latent of ``latent_shape`` from the (quantized) side latent."""
        means, raw_scales = self.hyper_decoder(side).chunk(2, dim=1)
        height, width = latent_shape
        return means[..., :height, :width], (SCALE_FLOOR + F.softplus(raw_scales))[..., :height, :width]

    def coded(self, latent: torch.Tensor, rounded: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The latent as the decoder sees it and the likelihoods of ``y`` and ``z`` (see ``prior_forward``)."""
        side = self.hyper_encoder(latent)
        coded_side = torch.round(side) if rounded else noisy(side, generator)
        means, scales = self.parameters_of(coded_side, latent.shape[-2:])
        coded = torch.round(latent - means) + means if rounded else noisy(latent, generator)
        return coded, [gaussian_likelihood(coded, means, scales), self.side_density.likelihood(coded_side)]


class FactorizedPrior(nn.Module):
    """The latent coded element by element under one learned density per channel."""

    def __init__(self, latent_channels: int):
        super().__init__()
        self.density = FactorizedDensity(latent_channels)

    def coded(self, latent: torch.Tensor, rounded: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        coded = torch.round(latent) if rounded else noisy(latent, generator)
        return coded, [self.density.likelihood(coded)]


def noisy(values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The training proxy for rounding: add U(-1/2, 1/2)."""
    noise = torch.rand(values.shape, generator=generator, dtype=values.dtype, device=values.device) - 0.5
    return values + noise


def prior_forward(prior: nn.Module, latent: torch.Tensor, rounded: bool,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The latent as the decoder will see it and the likelihoods of everything coded.

    ``rounded`` rounds (validation, as the codec does); otherwise uniform
    noise stands in for rounding (training). Every prior implements it as
    its ``coded`` method.
    """
    return prior.coded(latent, rounded, generator)


def estimated_bits(likelihoods: list[torch.Tensor]) -> torch.Tensor:
    """Total ``-log2 p`` over every coded element of every tensor, per batch item: (N,)."""
    return sum(-torch.log2(likelihood).flatten(1).sum(dim=1) for likelihood in likelihoods)
