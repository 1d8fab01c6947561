"""Uniform quantization of the latent, and the noise proxy that training uses instead.

The latent is clipped to ``latent_range`` (stored in the checkpoint) and
mapped to ``2**bits`` levels whose end points are the range limits. Rounding
has no useful gradient, so training replaces it with additive uniform noise of
one quantization step (Ballé et al. 2017): the decoder learns to cope with
exactly the error that rounding will make. The encoder ends in ``tanh``, so
its latent lies inside the (-1, 1) range and the clip never blocks gradients:
with a linear output and a clamp, an encoder whose outputs drift outside the
range gets no gradient back (observed: a 16-channel model collapsed early).
"""

from __future__ import annotations

import torch


def levels(bits: int) -> int:
    return 2**bits - 1


def quantize(latent: torch.Tensor, latent_range: tuple[float, float], bits: int) -> torch.Tensor:
    """Integer codes in ``0 .. 2**bits - 1`` (int32), computed in float32 whatever the model's precision."""
    low, high = latent_range
    scaled = (latent.float().clamp(low, high) - low) * (levels(bits) / (high - low))
    return torch.round(scaled).to(torch.int32)


def dequantize(codes: torch.Tensor, latent_range: tuple[float, float], bits: int) -> torch.Tensor:
    low, high = latent_range
    return codes.float() * ((high - low) / levels(bits)) + low


def noisy_latent(latent: torch.Tensor, latent_range: tuple[float, float], bits: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Training proxy for quantize-then-dequantize: clip, then add U(-step/2, step/2)."""
    low, high = latent_range
    step = (high - low) / levels(bits)
    noise = torch.rand(latent.shape, generator=generator, dtype=latent.dtype, device=latent.device) - 0.5
    return latent.clamp(low, high) + noise * step
