"""What a checkerboard model could gain from another quantizer or another density shape, estimated before building.

The codec rounds each latent element to the nearest integer around its mean (uniform scalar quantization) and codes
it under a Gaussian bin of the prior's scale, with the scales moved per tile and band of scales
(``entropy_coding.scale_shift``). On a config's tiles, at each quality, this measures two alternatives as oracles
(ideal code lengths, no side information counted):

- density shapes: the same integers coded under a Laplace, a logistic or a mixture of the same variance instead of
  the Gaussian, each with its own best scale multiplier per tile and band (change of the bits);
- trellis-coded quantization: 4-state dependent quantization as in VVC (two quantizers of step ``2 * step``, the
  level's parity choosing the next state), each chain running along the channels at one position and checkerboard
  pass, the levels chosen by a Viterbi search on the image error each channel causes (measured per channel by finite
  differences through the decoder) plus ``lambda`` times the bits, ``lambda`` a multiple of the slope of the
  scalar curve at that quality; each point's rate is compared with the scalar codec's at the same PSNR, read off
  the scalar curve of fractional qualities around it (only points within that curve's PSNR range are compared).

    python benchmarks/quantization_headroom.py CHECKPOINT [--config benchmarks.yaml] [--qualities 0,4,8]
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import LIKELIHOOD_FLOOR
from harness_codecs._autoencoder.latent_codecs.checkerboard import anchor_mask
from torch.special import ndtr

from headroom_inputs import (SCALE_MULTIPLIERS, channel_weights, fewest_bits_by_band, headroom_inputs,
                             latent_and_parameters, psnr, rate_at_psnr)

SURVIVALS = {
    "Gaussian": lambda x, s: ndtr(-x / s),
    "Laplace": lambda x, s: 0.5 * torch.exp(-x * math.sqrt(2) / s),
    "logistic": lambda x, s: torch.sigmoid(-x * math.pi / (s * math.sqrt(3))),
}
"""Each shape's probability beyond ``x >= 0`` at standard deviation ``s``."""
SURVIVALS["Gaussian/Laplace 1:1"] = lambda x, s: 0.5 * (SURVIVALS["Gaussian"](x, s) + SURVIVALS["Laplace"](x, s))
SURVIVALS["Gaussians 0.8 s, 0.2 at 2 s"] = lambda x, s: 0.8 * ndtr(-x / s) + 0.2 * ndtr(-x / (2 * s))

NEXT_STATE = torch.tensor([[0, 2], [2, 0], [1, 3], [3, 1]])
"""Dependent quantization's state machine (VVC): the next state by state and level parity; states 0 and 1 use the
even quantizer, 2 and 3 the odd one."""
STEPS = (0.6, 0.7, 0.8, 0.9, 1.0)
LAMBDA_MULTIPLES = (0.5, 1.0, 2.0)
CURVE_OFFSETS = (-1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
WEIGHT_TILES = 4


def bin_bits(magnitude: torch.Tensor, low: torch.Tensor, high: torch.Tensor, scales: torch.Tensor,
             survival=SURVIVALS["Gaussian"]) -> torch.Tensor:
    """Bits of the bin ``[low, high]`` of an element (``low < 0 < high`` where ``magnitude`` is 0, else
    ``0 <= low < high``), under a zero-mean density of standard deviation ``scales``."""
    inner = 1 - survival(-low, scales) - survival(high, scales)
    outer = survival(low.clamp(min=0), scales) - survival(high, scales)
    return -torch.log2(torch.where(magnitude == 0, inner, outer).clamp_min(LIKELIHOOD_FLOOR))


def shape_changes(integers: torch.Tensor, scales: torch.Tensor) -> dict[str, float]:
    """Per cent of the bits each shape saves against the Gaussian, each with its best multiplier per tile and band."""
    totals = dict.fromkeys(SURVIVALS, 0.0)
    magnitude = integers.abs()
    for tile_magnitude, tile_scales in zip(magnitude, scales):
        for name, survival in SURVIVALS.items():
            bits = torch.stack([bin_bits(tile_magnitude, tile_magnitude - 0.5, tile_magnitude + 0.5,
                                         tile_scales * factor, survival) for factor in SCALE_MULTIPLIERS])
            totals[name] += fewest_bits_by_band(bits, tile_scales)
    return {name: 100 * (total / totals["Gaussian"] - 1) for name, total in totals.items() if name != "Gaussian"}


def reconstruction(levels: torch.Tensor, odd: torch.Tensor, step: float) -> torch.Tensor:
    """The point of each level: ``2 k step`` in the even quantizer, ``(2 k - sign k) step`` in the odd one."""
    return torch.where(odd, 2 * levels - torch.sign(levels), 2 * levels) * step


def level_bits(levels: torch.Tensor, odd: torch.Tensor, step: float, scales: torch.Tensor) -> torch.Tensor:
    """Bits of each level under the Gaussian over its quantizer's cell (the cell between the neighbouring points)."""
    magnitude = levels.abs()
    even_low, even_high = (2 * magnitude - 1) * step, (2 * magnitude + 1) * step
    odd_low = torch.where(magnitude <= 1, torch.where(magnitude == 0, -0.5, 0.5), 2 * magnitude - 2) * step
    odd_high = torch.where(magnitude == 0, 0.5, 2 * magnitude) * step
    return bin_bits(magnitude, torch.where(odd, odd_low, even_low), torch.where(odd, odd_high, even_high), scales)


def candidate_levels(residuals: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per quantizer, the levels of the points on either side of each residual and zero: (chains, 3) each."""
    even = torch.floor(residuals / (2 * step))
    odd = torch.where(residuals.abs() < step, 0.0, torch.floor((residuals.abs() / step + 1) / 2))
    sign = torch.where(residuals < 0, -1.0, 1.0)
    zero = torch.zeros_like(residuals)
    return torch.stack([even, even + 1, zero], -1), torch.stack([odd, odd + 1, zero], -1) * sign[:, None]


def trellis(residuals: torch.Tensor, scales: torch.Tensor, weights: torch.Tensor, step: float,
            lmbda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Viterbi search over (links, chains) residuals, ``weights`` (links, 1) the squared image error per squared
    error of each link's channel: the reconstruction points and each chain's bits."""
    links, chains = residuals.shape
    cost = torch.full((chains, 4), math.inf)
    cost[:, 0] = 0.0
    came_from = torch.empty(links, chains, 4, dtype=torch.long)
    choices = torch.empty(links, chains, 12, 3)
    for link in range(links):
        even, odd = candidate_levels(residuals[link], step)
        totals, targets, rows = [], [], []
        for state in range(4):
            levels = even if state < 2 else odd
            odd_quantizer = torch.full_like(levels, state >= 2, dtype=torch.bool)
            error = residuals[link][:, None] - reconstruction(levels, odd_quantizer, step)
            bits = level_bits(levels, odd_quantizer, step, scales[link][:, None])
            totals.append(cost[:, state:state + 1] + weights[link][:, None] * error ** 2 + lmbda * bits)
            targets.append(NEXT_STATE[state][levels.abs().long() % 2])
            rows.append(torch.stack([levels, bits, torch.full_like(levels, state)], -1))
        totals, targets = torch.cat(totals, 1), torch.cat(targets, 1)
        choices[link] = torch.cat(rows, 1)
        for state in range(4):
            cost[:, state], came_from[link, :, state] = torch.where(targets == state, totals, math.inf).min(1)
    return traced_back(cost, came_from, choices, step)


def traced_back(cost, came_from, choices, step) -> tuple[torch.Tensor, torch.Tensor]:
    """The cheapest path's points and bits, followed back from its last state."""
    links, chains = came_from.shape[:2]
    state = cost.argmin(1)
    points, bits = torch.empty(links, chains), torch.zeros(chains)
    every = torch.arange(chains)
    for link in range(links - 1, -1, -1):
        level, level_cost, previous = choices[link, every, came_from[link, every, state]].unbind(-1)
        points[link] = reconstruction(level, previous >= 2, step)
        bits += level_cost
        state = previous.long()
    return points, bits


def as_chains(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) at ``positions`` (H, W) -> (C, N * P): one chain per tile and position, along the channels."""
    channels = values.shape[1]
    return values.transpose(0, 1).flatten(2)[:, :, positions.flatten()].reshape(channels, -1)


def from_chains(chains: torch.Tensor, positions: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    tiles, channels = shape[:2]
    values = torch.zeros(channels, tiles, positions.numel())
    values[:, :, positions.flatten()] = chains.reshape(channels, tiles, -1)
    return values.reshape(channels, tiles, *shape[2:]).transpose(0, 1)


def coded(model, tiles: torch.Tensor, quality: float, quantizer=None) -> tuple[float, float]:
    """bpp of the latent's ideal code and mean PSNR of the decoded tiles; ``quantizer(residuals, scales)`` gives
    the points and bits of (C, chains) residuals (None: rounding)."""
    qualities = torch.full((len(tiles),), quality)
    latent, prior = model.encode(tiles, qualities), model.prior
    hyper = prior.hyper(torch.round(prior.hyper_encoder(latent)), latent.shape[-2:])
    anchors = anchor_mask(*latent.shape[-2:])
    decoded, bits = torch.zeros_like(latent), 0.0
    for positions in (anchors, ~anchors):
        means, scales = prior.gaussian(hyper, None if positions is anchors else decoded * anchors)
        residuals, chain_scales = as_chains(latent - means, positions), as_chains(scales, positions)
        if quantizer is None:
            points = torch.round(residuals)
            chain_bits = bin_bits(points.abs(), points.abs() - 0.5, points.abs() + 0.5, chain_scales)
        else:
            points, chain_bits = quantizer(residuals, chain_scales)
        decoded = decoded + (from_chains(points, positions, latent.shape) + means) * positions
        bits += float(chain_bits.sum())
    return bits / tiles.numel(), psnr(model.decode(decoded, qualities), tiles)


def trellis_rows(model, tiles: torch.Tensor, quality: float) -> list[str]:
    """Each trellis point within the scalar curve's range, against the scalar rate at its PSNR."""
    top = model.spec.rate_levels - 1.0
    curve = np.array([coded(model, tiles, value)
                      for value in sorted({min(max(quality + offset, 0.0), top) for offset in CURVE_OFFSETS})])
    near = [coded(model, tiles, min(max(quality + offset, 0.0), top)) for offset in (-0.25, 0.25)]
    slope = (10 ** (-near[0][1] / 10) - 10 ** (-near[1][1] / 10)) / (near[1][0] - near[0][0])
    weights = channel_weights(model, tiles[::max(len(tiles) // WEIGHT_TILES, 1)], quality)[:, None]
    rows = []
    for step in STEPS:
        for multiple in LAMBDA_MULTIPLES:
            quantizer = partial(trellis, weights=weights, step=step, lmbda=multiple * slope)
            bpp, psnr_db = coded(model, tiles, quality, quantizer)
            scalar = rate_at_psnr(curve, psnr_db)
            if scalar is not None:
                rows.append(f"| {quality:g} | {step:g} | {multiple:g} | {bpp:.4f} | {psnr_db:.3f} | {scalar:.4f} | "
                            f"{100 * (bpp / scalar - 1):+.2f} % |")
    return rows


def main() -> None:
    model, tiles, qualities = headroom_inputs(__doc__.split("\n\n")[0])
    with torch.inference_mode():
        print("| quality | " + " | ".join(name for name in SURVIVALS if name != "Gaussian") + " |")
        print("|---:|" + "---:|" * (len(SURVIVALS) - 1))
        for value in qualities:
            latent, means, scales = latent_and_parameters(model, tiles, value)
            changes = shape_changes(torch.round(latent - means), scales)
            print(f"| {value:g} | " + " | ".join(f"{change:+.2f} %" for change in changes.values()) + " |")
        print("\n| quality | step | lambda x | bpp | PSNR | scalar bpp at that PSNR | change |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for value in qualities:
            print("\n".join(trellis_rows(model, tiles, value)), flush=True)


if __name__ == "__main__":
    main()
