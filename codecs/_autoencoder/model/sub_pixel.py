"""The decoder's last layer, to the one-channel image, computed as four sub-pixel convolutions and a pixel shuffle.

A stride-2 transposed convolution gives each of the four sub-pixel phases of the output (even or odd row, even or
odd column) its own small convolution of the input, reading only the kernel taps that land on that phase. With one
output channel, oneDNN runs ``conv_transpose2d`` poorly on a CPU: on the 2-core Sapphire Rapids VM, one torch
thread, 4 tiles of 256 px, the ``gdn-dct-light`` decoder's last layer (32 channels to 1, 5x5) took 10.2 ms as a
transposed convolution and 4.6 ms as one convolution to the 4 phases (a 3x3 kernel each) and a pixel shuffle. The
sums are the same products, added in another order; the phases also multiply the zero taps (a 5x5 kernel gives
3x3 per phase, 36 products per 4 pixels instead of 25), and the codec's MAC count counts them, as it counts what
runs (``runtime.complexity``). The wider transposed convolutions stay as they are: there the sub-pixel form was
slower (7.3 against 11.0 ms for 256 to 96 channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PHASES = 2
"""The stride: each output pixel is one of 2 x 2 phases."""


class SubPixelToImage(nn.ConvTranspose2d):
    """``ConvTranspose2d(in_channels, 1, kernel_size, stride=2, padding=kernel_size // 2, output_padding=1)``, which
    exactly doubles the size, with the same weights and state dict, run as sub-pixel convolutions."""

    def __init__(self, in_channels: int, kernel_size: int):
        super().__init__(in_channels, 1, kernel_size, stride=PHASES, padding=kernel_size // 2, output_padding=1)
        reach = kernel_size // 2
        # Output row 2m + phase reads input row m + offset through tap phase + reach - 2 * offset.
        taps = [{(phase + reach - tap) // 2: tap for tap in range(kernel_size) if (tap - phase - reach) % 2 == 0}
                for phase in range(PHASES)]
        offsets = sorted({offset for phase_taps in taps for offset in phase_taps})
        self.padding_before, self.padding_after = -offsets[0], offsets[-1]
        # The tap each phase's kernel reads at each offset; kernel_size names a zero (a tap the phase never reads).
        tap_of = torch.tensor([[phase_taps.get(offset, kernel_size) for offset in offsets] for phase_taps in taps])
        size = len(offsets)
        self.register_buffer("row_taps", tap_of[:, None, :, None].expand(PHASES, PHASES, size, size).reshape(
            PHASES * PHASES, size, size), persistent=False)
        self.register_buffer("column_taps", tap_of[None, :, None, :].expand(PHASES, PHASES, size, size).reshape(
            PHASES * PHASES, size, size), persistent=False)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        with_zero = F.pad(self.weight[:, 0], (0, 1, 0, 1))  # in_channels x (k + 1) x (k + 1), zero at index k
        kernels = with_zero[:, self.row_taps, self.column_taps].transpose(0, 1)  # phases x in_channels x size x size
        bias = self.bias.expand(PHASES * PHASES)
        if self.padding_before == self.padding_after:
            phases = F.conv2d(values, kernels, bias, padding=self.padding_before)
        else:
            padded = F.pad(values, (self.padding_before, self.padding_after) * 2)
            phases = F.conv2d(padded, kernels, bias)
        return F.pixel_shuffle(phases, PHASES)

    def macs(self, values: torch.Tensor, output: torch.Tensor) -> int:
        """Multiply-accumulates of one call, as it runs: every phase's kernel, zero taps included, at every output
        pixel."""
        return output.numel() * self.in_channels * self.row_taps.shape[-1] ** 2
