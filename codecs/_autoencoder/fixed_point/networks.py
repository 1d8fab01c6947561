"""Fixed-point copies of the networks that choose each latent element's probability table: exact on any device.

Encoder and decoder must choose the same table and the same mean for every
latent element, or the decoder reads other symbols from the same bytes. The
networks that predict them (the hyper-decoder, and the checkerboard's context
and parameter networks) would give slightly different floats on two devices,
or on one device with another thread count, since each adds its products in
its own order. So they run here in fixed point:

* activations are integers, the value times ``2 ** ACTIVATION_BITS``, clamped
  to ``ACTIVATION_LIMIT``; weights are integers, the float weight times
  ``2 ** bits`` rounded, with as many bits per layer as keep its largest
  possible sum (every input at the limit) under ``2 ** 52``;
* every layer's sums are carried in float64, which holds every integer up to
  ``2 ** 53`` exactly, so a sum of products of integers is the same whatever
  order a device adds it in (MKL, cuBLAS, any thread count);
* after each layer the sum is brought back to activation units by adding
  half a unit, dividing by a power of two and flooring, all exact (a plain
  floor would bias every activation by half a unit, which the next layer's
  weight sums multiply);
* the non-linearities are integer functions: LeakyReLU multiplies by its
  slope in units of ``2 ** -16`` and floors; GELU reads a table of its values
  at every activation value in [-8, 8], computed once on the CPU (GELU is
  the identity above 8 and 0 below -8 to within 1e-14);
* the outputs are means in units of ``2 ** -ACTIVATION_BITS`` (dyadic numbers
  that both sides add exactly to the decoded integers) and raw scales, which
  pick a table by integer comparison with thresholds computed once from the
  scale table.

A stream written on a GPU therefore decodes on a CPU, and the reverse, by
construction rather than by margin. The one float computation left is that of
the constants each machine derives at load (the GELU table, the thresholds) with
float64 ``erf``, ``log`` and ``expm1``, whose results can differ between
platforms' maths libraries by an ulp; an entry would round differently only if
its exact value lay within about 1e-16 of a rounding boundary. Against the
float networks, a mean moves by about ``1e-4`` and a table choice flips only
where the float scale lies within about ``1e-4`` of a table boundary: the rate
moves by less than 0.1 % (measured in docs/learned-codec.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erf
from torch import nn
ACTIVATION_BITS = 16
ACTIVATION_LIMIT = 2.0 ** (ACTIVATION_BITS + 10)
"""Activations are clamped to +-1024 (in units of the value): beyond what the shipped networks produce (hyper
features under 1; latents, which the context network reads, up to 211 at the highest quality)."""
EXACT_INTEGERS = 2.0**53
SUM_MARGIN = 2.0
"""Each layer's largest possible sum is kept under ``EXACT_INTEGERS / SUM_MARGIN``."""
SLOPE_BITS = 16
GELU_REACH = 8
"""GELU is tabulated on [-8, 8]; outside, it is the identity (above) or 0 (below) to within 1e-14."""

Layer = Callable[[torch.Tensor], torch.Tensor]


def to_fixed(values: torch.Tensor) -> torch.Tensor:
    """Float values in activation units (float64 integers), rounded and clamped as every layer clamps."""
    return torch.clamp(torch.round(values.double() * 2.0**ACTIVATION_BITS), -ACTIVATION_LIMIT, ACTIVATION_LIMIT)


class FixedPointNetwork:
    """A ``nn.Sequential`` of convolutions, transposed convolutions, LeakyReLU and GELU, in exact fixed point.

    Called on activations (float64 integers, ``to_fixed``), it returns the network's output in activation units.
    """

    def __init__(self, network: nn.Sequential, device: torch.device):
        self.layers = [_fixed_layer(module, device) for module in network]

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            for layer in self.layers:
                activations = layer(activations)
        return activations


class FixedPointConvolution(nn.Module):
    """A convolution (or transposed convolution) whose weights and bias are integers, rescaled and clamped."""

    def __init__(self, module: nn.Conv2d | nn.ConvTranspose2d, device: torch.device):
        super().__init__()
        weight = module.weight.detach().double().cpu()
        bias = (module.bias.detach().double().cpu() if module.bias is not None
                else torch.zeros(module.out_channels, dtype=torch.float64))
        self.transposed = isinstance(module, nn.ConvTranspose2d)
        if module.groups != 1 or module.dilation != (1, 1) or module.padding_mode != "zeros" \
                or isinstance(module.padding, str):
            raise ValueError(f"the fixed-point entropy model has no exact form of {module!r}")
        # The largest sum one output element can reach: each input at the limit, against the weights that feed
        # that output channel (dim 1 of a transposed convolution's weight, dim 0 of a convolution's).
        reach = (weight.abs().sum(dim=(0, 2, 3) if self.transposed else (1, 2, 3)) * ACTIVATION_LIMIT
                 + bias.abs() * 2.0**ACTIVATION_BITS).max()
        self.bits = math.floor(math.log2(EXACT_INTEGERS / SUM_MARGIN / float(reach)))
        self.weight = torch.round(weight * 2.0**self.bits).to(device)
        self.bias = torch.round(bias * 2.0 ** (self.bits + ACTIVATION_BITS)).to(device)
        self.stride, self.padding = module.stride, module.padding
        self.output_padding = module.output_padding if self.transposed else None
        self.kernel_size = module.kernel_size
        self.kernel_area = math.prod(module.kernel_size)

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        return self.rescaled(self.sums(activations, named_kernels=activations.is_cuda), channel_dim=1)

    def sums(self, activations: torch.Tensor, named_kernels: bool) -> torch.Tensor:
        """The convolution's sums, without bias. On CUDA torch's own unfold-and-multiply kernels are called by
        name (``named_kernels``): F.conv2d might pick a cuDNN FFT or Winograd algorithm, whose rounding would
        break exactness, and switching cuDNN off around the call would switch it off for the whole process, so
        for the networks another thread runs meanwhile (``overlap_sub_batches``). On the CPU, F.conv2d runs
        these same kernels on float64."""
        if named_kernels and self.transposed:
            return torch.ops.aten.slow_conv_transpose2d(activations, self.weight, self.kernel_size, None,
                                                        self.stride, self.padding, self.output_padding, (1, 1))
        if named_kernels:
            return torch.ops.aten.thnn_conv2d(activations, self.weight, self.kernel_size, None, self.stride,
                                              self.padding)
        if self.transposed:
            return F.conv_transpose2d(activations, self.weight, None, self.stride, self.padding, self.output_padding)
        return F.conv2d(activations, self.weight, None, self.stride, self.padding)

    def macs(self, activations: torch.Tensor, output: torch.Tensor) -> int:
        """Multiply-accumulates of one call, counted as ``complexity`` counts a float convolution."""
        if self.transposed:
            return activations.numel() * self.weight.shape[1] * self.kernel_area
        return output.numel() * self.weight.shape[1] * self.kernel_area

    def rescaled(self, sums: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """Sums (in units of the weights times the activations) plus the bias, back in activation units, rounded
        and clamped."""
        bias = self.bias.reshape(-1, *[1] * (sums.dim() - channel_dim - 1))
        rounded = (sums + bias).add_(2.0 ** (self.bits - 1)).mul_(2.0**-self.bits).floor_()
        return rounded.clamp_(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)


class _LeakyRelu:
    def __init__(self, slope: float):
        self.slope = float(round(slope * 2.0**SLOPE_BITS))

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        return torch.where(activations >= 0, activations, torch.floor(activations * self.slope / 2.0**SLOPE_BITS))


class _Gelu:
    """GELU read from a table of its rounded values at every activation value in [-8, 8]."""

    def __init__(self, device: torch.device):
        self.table = _gelu_table(device)
        self.reach = float(GELU_REACH * 2**ACTIVATION_BITS)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        inside = torch.clamp(activations, -self.reach, self.reach)
        tabulated = self.table[(inside + self.reach).long()]
        return torch.where(activations > self.reach, activations,
                           torch.where(activations < -self.reach, torch.zeros_like(activations), tabulated))


@functools.cache
def _gelu_table(device: torch.device) -> torch.Tensor:
    """One table per device, read-only, for every GELU layer (a million entries, 8 MB)."""
    reach = GELU_REACH * 2**ACTIVATION_BITS
    values = np.arange(-reach, reach + 1, dtype=np.float64) / 2.0**ACTIVATION_BITS
    gelu = 0.5 * values * (1.0 + erf(values / math.sqrt(2.0)))
    return torch.from_numpy(np.round(gelu * 2.0**ACTIVATION_BITS)).to(device)


def _fixed_layer(module: nn.Module, device: torch.device) -> Layer:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return FixedPointConvolution(module, device)
    if isinstance(module, nn.LeakyReLU):
        return _LeakyRelu(module.negative_slope)
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return _Gelu(device)
    raise ValueError(f"the fixed-point entropy model has no exact form of {module!r}")
