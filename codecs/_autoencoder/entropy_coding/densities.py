"""The densities the latent codecs are built of: a learned per-channel density and the Gaussian's bins.

A fixed-length code spends the same bits on every latent value; a density
gives each integer symbol a probability, so that a range coder spends
``-log2 p`` bits on it, and training can minimise that rate.

* ``FactorizedDensity`` is the non-parametric per-channel density of Ballé et
  al. (2018, appendix 6.1): a small monotone network per channel models the
  cumulative distribution, and a symbol's probability is the CDF's increase
  over its quantization bin. It codes the whole latent of the factorized
  latent codec and the side latent ``z`` of the hyperprior ones.
* ``gaussian_likelihood`` is the probability of a unit bin under a Gaussian
  whose mean and scale a hyperprior predicts.

During training, quantization is replaced by additive uniform noise
(``noisy``, the same proxy as the fixed-length codec) and the likelihoods give
the estimated rate, ``-sum(log2 p) / pixels``. The codec rounds and
entropy-codes with probability tables computed once from these densities
(``tables``).
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


def noisy(values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The training proxy for rounding: add U(-1/2, 1/2)."""
    noise = torch.rand(values.shape, generator=generator, dtype=values.dtype, device=values.device) - 0.5
    return values + noise


def estimated_bits(likelihoods: list[torch.Tensor]) -> torch.Tensor:
    """Total ``-log2 p`` over every coded element of every tensor, per batch item: (N,)."""
    return sum(-torch.log2(likelihood).flatten(1).sum(dim=1) for likelihood in likelihoods)
