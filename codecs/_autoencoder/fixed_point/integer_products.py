"""Exact products of small integer weights and wide integer activations, through int8 matrix products.

The fixed-point networks' sums are exact integers whatever computes them (``networks``), so any exact method
gives the same stream. float64 matrix products are exact up to ``2 ** 53`` but run at about 23 GMAC/s on one core
of the 2-core AMD EPYC VM; ``torch._int_mm`` (int8 times int8, int32 sums) runs at about 400 there. Where a layer's
weights are integers of at most 127 in magnitude (an int8 checkpoint's codes, ``networks.integer_codes``), each
activation, an integer of up to 27 bits with its sign, is offset to be non-negative and cut into 7-bit digits
(0 to 127, so int8); every digit is one block of rows of a single product, and the blocks' sums are recombined in
int64, the offset taken back through the weights' column sums. Three or four digits cover the activations the
shipped networks carry, so the product costs three or four int8 products instead of one float64 one.
"""

from __future__ import annotations

import torch

DIGIT_BITS = 7
"""Bits per digit: a digit is 0 to 127, an int8."""
DIGIT_MASK = 2**DIGIT_BITS - 1
INT32_SUM_LIMIT = 2**31
"""A digit block's sums (at most 127 * 127 per term) must stay below this: ``torch._int_mm`` sums in int32."""


def activation_digits(activations: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The activations (integers, any shape) as int8 digits of ``DIGIT_BITS`` bits, least significant first along a
    new first axis, of the activations plus the returned offset. As many digits as the largest magnitude needs: the
    offset is half the digits' range, so every offset activation is non-negative and below the range."""
    integers = activations.to(torch.int32, memory_format=torch.contiguous_format, copy=True)  # offset in place
    largest = int(integers.abs().max()) if integers.numel() else 0
    count = max(1, -(-(largest.bit_length() + 1) // DIGIT_BITS))
    offset = 1 << (DIGIT_BITS * count - 1)
    unsigned = integers.add_(offset)
    digits = torch.empty((count, *integers.shape), dtype=torch.int8, device=integers.device)
    for digit in range(count):
        digits[digit] = (unsigned >> (DIGIT_BITS * digit)).bitwise_and_(DIGIT_MASK)
    return digits, offset


def digit_products(rows: torch.Tensor, weights: torch.Tensor, weight_sums: torch.Tensor, offset: int) -> torch.Tensor:
    """The exact products (int64, rows x columns) of the activations whose digits ``rows`` holds (digits x rows x
    inner, int8, offset by ``offset``: ``activation_digits``) and ``weights`` (inner x columns, int8), whose column
    sums are ``weight_sums`` (int64)."""
    count, row_count, inner = rows.shape
    if DIGIT_MASK * 127 * inner >= INT32_SUM_LIMIT:
        raise ValueError(f"an int8 product over {inner} terms could overflow its int32 sums")
    blocks = torch._int_mm(rows.reshape(count * row_count, inner), weights).view(count, row_count, -1)
    products = blocks[count - 1].to(torch.int64)
    for digit in range(count - 2, -1, -1):
        products = products.mul_(2**DIGIT_BITS).add_(blocks[digit])
    return products.sub_(weight_sums * offset)
