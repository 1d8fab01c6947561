"""Fixed-point copies of the networks that choose each latent element's probability table: exact on any device.

Encoder and decoder must choose the same table and the same mean for every
latent element, or the decoder reads other symbols from the same bytes. The
networks that predict them (the hyper-decoder, and the checkerboard's context
and parameter networks) would give slightly different floats on two devices,
or on one device with another thread count, since each adds its products in
its own order. So they run here in fixed point:

* activations are integers, the value times ``2 ** ACTIVATION_BITS``, clamped
  to ``ACTIVATION_LIMIT``; weights are integers times a factor per output
  channel: an int8 checkpoint's own codes, its scale the factor (exactly the
  weights the model holds, ``integer_codes``), or for other weights the
  float weight times ``2 ** bits`` rounded, with as many bits per layer as
  keep its largest possible sum (every input at the limit) under ``2 ** 52``;
* every layer's sums are exact integers, so a sum of products is the same
  whatever order a device adds it in (MKL, cuBLAS, any thread count): carried
  in float64, which holds every integer up to ``2 ** 53`` exactly, or, for
  int8 codes on the CPU, in int8 products with int32 sums of the activations'
  7-bit digits (``integer_products``: the same integers, several times faster);
* after each layer the sum is brought back to activation units in int64 by
  multiplying by the channel's factor's odd part, adding half a unit and
  shifting down (a floor), all exact (a plain floor would bias every
  activation by half a unit, which the next layer's weight sums multiply);
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
from harness_codecs._autoencoder.fixed_point.integer_products import activation_digits, digit_products
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

CODE_LIMIT = 127
"""The largest code magnitude of the int8 products (``integer_products``)."""
CODE_BITS = 7
"""Bits of ``CODE_LIMIT``: a channel whose weights' lowest binary digits lie further apart has no int8 codes."""

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
    """A convolution (or transposed convolution) whose weights and bias are integers, rescaled and clamped.

    Each output channel's weights are integers times one factor ``multiplier * 2 ** -shift``: where the weights are
    an int8 checkpoint's codes times a scale per output channel (``integer_codes``), exactly those codes, summed on
    the CPU through int8 products (``integer_products``); otherwise the weights rounded to ``shift`` fractional bits
    (multiplier 1), as many as keep the largest possible sum under ``2 ** 52``."""

    def __init__(self, module: nn.Conv2d | nn.ConvTranspose2d, device: torch.device):
        super().__init__()
        weight = module.weight.detach().double().cpu()
        bias = (module.bias.detach().double().cpu() if module.bias is not None
                else torch.zeros(module.out_channels, dtype=torch.float64))
        self.transposed = isinstance(module, nn.ConvTranspose2d)
        if module.groups != 1 or module.dilation != (1, 1) or module.padding_mode != "zeros" \
                or isinstance(module.padding, str):
            raise ValueError(f"the fixed-point entropy model has no exact form of {module!r}")
        coded = None if self.transposed else integer_codes(weight)
        weights, multipliers, shifts = rounded_weights(weight, bias, self.transposed) if coded is None else coded
        self.codes = (None if coded is None
                      else weights.permute(2, 3, 1, 0).reshape(-1, len(weights)).to(torch.int8).contiguous())
        """An int8 checkpoint's codes as one int8 product's weights (``integer_products``): kernel positions, then
        input channels, by output channels; None for other weights, which run in float64."""
        self.code_sums = None if self.codes is None else self.codes.sum(dim=0, dtype=torch.int64)
        self.weight = weights.to(device)
        self.multipliers, self.shifts = multipliers.to(device), shifts.to(device)
        self.bias = torch.round(bias * 2.0 ** (shifts.double() + ACTIVATION_BITS)).long().to(device)
        self.rounding = (2 ** (shifts - 1)).to(device)
        self.stride, self.padding = module.stride, module.padding
        self.output_padding = module.output_padding if self.transposed else None
        self.kernel_size = module.kernel_size
        self.kernel_area = math.prod(module.kernel_size)

    def forward(self, activations: torch.Tensor) -> torch.Tensor:
        if self.sums_codes_on(activations.device):
            return self.rescaled(self.integer_sums(activations), channel_dim=1)
        return self.rescaled(self.sums(activations, named_kernels=activations.is_cuda), channel_dim=1)

    def sums_codes_on(self, device: torch.device) -> bool:
        """Whether this layer sums through int8 products of its codes on ``device`` (``integer_products_on``)."""
        return self.codes is not None and integer_products_on(device)

    def sums(self, activations: torch.Tensor, named_kernels: bool) -> torch.Tensor:
        """The convolution's sums, without bias, in float64 (exact: every layer's largest sum is under ``2 ** 53``).
        On CUDA torch's own unfold-and-multiply kernels are called by
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

    def integer_sums(self, activations: torch.Tensor) -> torch.Tensor:
        """The same sums as ``sums`` (int64), through int8 products of the codes and the activations' digits: the
        digits channels last, so that every kernel position's channels are one contiguous run of the product's
        inner dimension."""
        batch = len(activations)
        rows, cols = self.padding
        digits, offset = activation_digits(F.pad(activations, (cols, cols, rows, rows)).permute(0, 2, 3, 1))
        (kernel_rows, kernel_cols), (row_step, col_step) = self.kernel_size, self.stride
        out_height = (digits.shape[2] - kernel_rows) // row_step + 1
        out_width = (digits.shape[3] - kernel_cols) // col_step + 1
        taps = torch.stack([digits[:, :, row:row + row_step * (out_height - 1) + 1:row_step,
                                   col:col + col_step * (out_width - 1) + 1:col_step]
                            for row in range(kernel_rows) for col in range(kernel_cols)], dim=4)
        inner = taps.view(len(digits), batch * out_height * out_width, -1)
        products = digit_products(inner, self.codes, self.code_sums, offset)
        return products.view(batch, out_height, out_width, -1).permute(0, 3, 1, 2)

    def macs(self, activations: torch.Tensor, output: torch.Tensor) -> int:
        """Multiply-accumulates of one call, counted as ``complexity`` counts a float convolution."""
        if self.transposed:
            return activations.numel() * self.weight.shape[1] * self.kernel_area
        return output.numel() * self.weight.shape[1] * self.kernel_area

    def rescaled(self, sums: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """Sums (in units of the integer weights times the activations: float64 or int64 integers) back in
        activation units (float64 integers): times each channel's multiplier, plus the bias and half a unit, shifted
        down (a floor) in int64, exact; clamped."""
        shape = (-1, *[1] * (sums.dim() - channel_dim - 1))
        total = sums.to(torch.int64).mul_(self.multipliers.view(shape)).add_((self.bias + self.rounding).view(shape))
        shifted = torch.bitwise_right_shift(total, self.shifts.view(shape))
        return shifted.clamp_(-int(ACTIVATION_LIMIT), int(ACTIVATION_LIMIT)).to(torch.float64)


def integer_products_on(device: torch.device) -> bool:
    """Whether int8 codes are summed through int8 products (``integer_products``) on ``device``: on the CPU, where
    they are several times faster than float64; elsewhere (CUDA) the float64 kernels called by name, which give the
    same integers."""
    return device.type == "cpu"


def rounded_weights(weight: torch.Tensor, bias: torch.Tensor,
                    transposed: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights (float64) rounded to integers in units of ``2 ** -bits``, ``bits`` the most that keep every output
    channel's largest possible sum (each input at the limit, and the bias) under ``2 ** 52``, as before the int8
    codes were used as they are; multipliers 1 and shifts ``bits`` per output channel (dim 1 of a transposed
    convolution's weight, dim 0 of a convolution's)."""
    reach = (weight.abs().sum(dim=(0, 2, 3) if transposed else (1, 2, 3)) * ACTIVATION_LIMIT
             + bias.abs() * 2.0**ACTIVATION_BITS).max()
    bits = math.floor(math.log2(EXACT_INTEGERS / SUM_MARGIN / float(reach)))
    channels = weight.shape[1] if transposed else weight.shape[0]
    return (torch.round(weight * 2.0**bits), torch.ones(channels, dtype=torch.int64),
            torch.full((channels,), bits, dtype=torch.int64))


def integer_codes(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """A convolution's weights (float64, output channels first) as integer codes of at most ``CODE_LIMIT`` in
    magnitude times, per output channel, an odd multiplier times ``2 ** -shift``, exactly; None where a channel has
    no such form (trained float weights) or its products could leave int64 (``rescaled``).

    An int8 checkpoint's weights are its codes times a float32 scale per output channel (``runtime.weights``), so
    every binary digit of a channel's weights is a multiple of the scale's odd part: the odd parts' greatest common
    divisor recovers it, and the codes (divided by any factor they share) with it."""
    flat = weight.reshape(len(weight), -1).numpy()
    mantissas, exponents = np.frexp(flat)
    integers = (mantissas * 2.0**53).astype(np.int64)  # flat == integers * 2 ** (exponents - 53), exactly
    nonzero = integers != 0
    lowest = np.where(nonzero, integers & -integers, 1)
    trailing = np.round(np.log2(lowest)).astype(np.int64)  # exact: the lowest set bit is a power of two
    odd = np.abs(integers) >> trailing
    powers = np.where(nonzero, exponents - 53 + trailing, np.iinfo(np.int64).max)
    least = np.where(nonzero.any(axis=1), powers.min(axis=1), -1)
    multipliers = np.maximum(np.gcd.reduce(np.where(nonzero, odd, 0), axis=1), 1)
    excess = np.where(nonzero, powers - least[:, None], 0)
    if (excess > CODE_BITS).any() or (least >= 0).any():
        return None
    codes = np.where(nonzero, np.sign(integers) * (odd // multipliers[:, None]) << excess, 0)
    reach = np.abs(codes).sum(axis=1) * ACTIVATION_LIMIT
    if np.abs(codes).max(initial=0) > CODE_LIMIT or reach.max() * multipliers.max() >= 2.0**62 \
            or reach.max() >= EXACT_INTEGERS / SUM_MARGIN:
        return None
    return (torch.from_numpy(codes.reshape(weight.shape).astype(np.float64)), torch.from_numpy(multipliers),
            torch.from_numpy(-least))


class _LeakyRelu:
    """The activation where it is non-negative, else its product with the slope (in units of ``2 ** -SLOPE_BITS``)
    floored: for a slope of at most 1 that is the larger of the two, one product, a floor and a maximum (exact: the
    product has at most 42 significant bits), about a tenth of the time of comparing and selecting on the CPU."""

    def __init__(self, slope: float):
        units = round(slope * 2.0**SLOPE_BITS)
        if units > 2**SLOPE_BITS:
            raise ValueError(f"the fixed-point entropy model has no exact form of LeakyReLU({slope}): a slope above 1")
        self.slope = units / 2.0**SLOPE_BITS

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        sloped = torch.floor_(activations * self.slope)
        return torch.maximum(activations, sloped, out=sloped)


class _Gelu:
    """GELU read from a table of its rounded values at every activation value in [-8, 8]."""

    def __init__(self, device: torch.device):
        self.table = _gelu_table(device)
        self.reach = float(GELU_REACH * 2**ACTIVATION_BITS)

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        inside = torch.clamp(activations, -self.reach, self.reach)
        tabulated = table_lookup(self.table, (inside + self.reach).long())
        return torch.where(activations > self.reach, activations,
                           torch.where(activations < -self.reach, torch.zeros_like(activations), tabulated))


def table_lookup(table: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
    """``table[indexes]`` for a 1-D table, as a gather over the flattened indexes: on the CPU a third to a quarter
    of the time of advanced indexing (131k indexes into a table of 70k: 0.14 against 0.52 ms)."""
    return torch.gather(table, 0, indexes.reshape(-1)).view(indexes.shape)


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
