"""What a channel-wise context could add to a checkerboard model's prior, estimated before building one.

A channel-conditional prior (Minnen & Singh 2020; ELIC) decodes the latent's channels in groups and predicts each
group's means and scales from the groups decoded before it too. Whether that pays depends on whether the residuals
the hyperprior and checkerboard context leave still depend on each other across channels. On a config's tiles, at
each quality, this splits the channels in two by their share of the bits (the costlier half first, the order a
channel-wise context would decode in) and, for the second half, measures the ideal code length of the rounded
residuals (Gaussian bins, as the range coder's tables are built) under the model's own parameters and under two
simple channel-conditional corrections fitted on half of the tiles and scored on the other half:

- scale: each channel's scale multiplied by ``m ** (a / 2)``, ``m`` the mean normalized squared residual of the first
  half at the same position, ``a`` fitted per channel group by a grid search;
- mean: each channel's mean moved by a ridge regression on the first half's rounded residuals at the same position.

    python benchmarks/channel_context_headroom.py CHECKPOINT [--config benchmarks.yaml] [--qualities 0,4,8]
"""

from __future__ import annotations

import numpy as np
import torch

from headroom_inputs import code_length, headroom_inputs, latent_and_parameters

SCALE_EXPONENTS = np.linspace(-0.5, 1.5, 21)


def headroom(latent: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> dict[str, float]:
    """Share of the bits in the second half of the channels, and what each correction saves of all the bits of the
    scored tiles (per cent; negative: it costs)."""
    residuals = latent - means
    rounded = torch.round(residuals)
    bits = code_length(rounded, scales)
    order = torch.argsort(bits.mean(dim=(0, 2, 3)), descending=True)
    first, second = order[: len(order) // 2], order[len(order) // 2:]
    fit, score = slice(0, None, 2), slice(1, None, 2)
    total = float(bits[score].sum())
    energy = (residuals[:, first] / scales[:, first]).pow(2).mean(1, keepdim=True).clamp_min(1e-3)
    fitted = min(SCALE_EXPONENTS, key=lambda a: float(code_length(
        rounded[fit][:, second], scales[fit][:, second] * energy[fit] ** (a / 2)).sum()))
    scaled = float(code_length(rounded[score][:, second], scales[score][:, second] * energy[score] ** (fitted / 2)).sum())
    features = [rounded[part][:, first].permute(0, 2, 3, 1).reshape(-1, len(first)).double() for part in (fit, score)]
    features = [torch.cat([part, torch.ones(len(part), 1, dtype=torch.double)], 1) for part in features]
    gram = features[0].T @ features[0] + torch.eye(features[0].shape[1], dtype=torch.double)
    targets = residuals[fit][:, second].permute(0, 2, 3, 1).reshape(-1, len(second)).double()
    weights = torch.linalg.solve(gram, features[0].T @ targets)
    predicted = (features[1] @ weights).float().reshape(*residuals[score][:, second].permute(0, 2, 3, 1).shape)
    moved = torch.round(residuals[score][:, second] - predicted.permute(0, 3, 1, 2))
    shifted = float(code_length(moved, scales[score][:, second]).sum())
    second_bits = float(bits[score][:, second].sum())
    return {"second half": 100 * second_bits / total, "scale": 100 * (second_bits - scaled) / total,
            "mean": 100 * (second_bits - shifted) / total}


def main() -> None:
    model, tiles, qualities = headroom_inputs(__doc__.split("\n\n")[0])
    print("| quality | bits in the second half | scale correction saves | mean prediction saves |")
    print("|---:|---:|---:|---:|")
    with torch.inference_mode():
        for quality in qualities:
            result = headroom(*latent_and_parameters(model, tiles, quality))
            print(f"| {quality:g} | {result['second half']:.1f} % | {result['scale']:+.2f} % | {result['mean']:+.2f} % |")


if __name__ == "__main__":
    main()
