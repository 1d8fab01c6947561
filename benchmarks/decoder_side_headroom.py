"""What more a checkerboard model's decoder could make of the same latent, estimated before building anything.

The codec already spends a few bytes per tile on what its encoder can see and its decoder cannot: a scale shift
(one multiplier of every scale of the prior), a refinement weight (one multiplier of the refinement's correction)
and a post-filter. On a config's tiles, at each quality, this measures three finer versions, each as an oracle
before the bytes it would cost:

- centroid: each latent element rebuilt at the mean of its quantization bin's residuals (by the prior's scale and
  the integer) instead of the bin's centre; the offsets are fitted on half of the tiles and scored on the other half
  (PSNR change of the decoded tiles; the decoder would know the offsets, nothing is sent);
- scale bands: the scale shift chosen per tile and per band of the prior's scale (the codec's five bands,
  ``BAND_SCALES``) instead of per tile (change of the ideal code length, Gaussian bins as the tables are built);
- channel weights: the refinement's correction weighted per tile and per hidden channel (16 weights and one for
  its bias, by least squares) instead of one weight per tile (PSNR change; the model must have a refinement).

    python benchmarks/decoder_side_headroom.py CHECKPOINT [--config benchmarks.yaml] [--qualities 0,4,8]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from headroom_inputs import (SCALE_MULTIPLIERS, code_length, fewest_bits_by_band, headroom_inputs, latent_and_parameters,
                             psnr)

CENTROID_SCALE_EDGES = torch.exp(torch.linspace(np.log(0.11), np.log(64.0), 25))
LARGEST_MAGNITUDE = 4
"""Integers of larger magnitude share the centroid offsets of this one."""
MINIMUM_COUNT = 50
"""Bins with fewer fitted residuals keep their centre."""


def centroid_change(model, tiles, quality, integers, means, scales, latent) -> float:
    """PSNR change from rebuilding each element at its bin's fitted centroid, fitted and scored on alternate tiles."""
    sign = torch.where(integers < 0, -1.0, 1.0)
    magnitude = integers.abs().clamp(max=LARGEST_MAGNITUDE).long()
    keys = torch.bucketize(scales, CENTROID_SCALE_EDGES) * (LARGEST_MAGNITUDE + 1) + magnitude
    signed_residual = (latent - means - integers) * sign
    size = (len(CENTROID_SCALE_EDGES) + 1) * (LARGEST_MAGNITUDE + 1)
    changes = []
    for fit, score in ((slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(0, None, 2))):
        total = torch.zeros(size).index_add_(0, keys[fit].flatten(), signed_residual[fit].flatten())
        count = torch.zeros(size).index_add_(0, keys[fit].flatten(), torch.ones(keys[fit].numel()))
        offsets = torch.where((count >= MINIMUM_COUNT) & (torch.arange(size) % (LARGEST_MAGNITUDE + 1) > 0),
                              total / count.clamp_min(1), 0.0)
        centre = means[score] + integers[score]
        shifted = centre + sign[score] * offsets[keys[score]]
        changes.append(psnr(model.decode(shifted, quality[score]), tiles[score])
                       - psnr(model.decode(centre, quality[score]), tiles[score]))
    return float(np.mean(changes))


def scale_band_change(integers: torch.Tensor, scales: torch.Tensor) -> float:
    """Per cent of the bits that one best shift per tile and scale band saves against one best shift per tile."""
    per_tile = per_band = 0.0
    for tile_integers, tile_scales in zip(integers, scales):
        bits = torch.stack([code_length(tile_integers, tile_scales * shift) for shift in SCALE_MULTIPLIERS])
        per_tile += float(bits.sum(dim=(1, 2, 3)).min())
        per_band += fewest_bits_by_band(bits, tile_scales)
    return 100 * (per_band / per_tile - 1)


def channel_weights_change(model, tiles, quality, integers, means) -> float:
    """PSNR change from weighting each hidden channel's share of the refinement's correction (and its bias) by
    least squares per tile, against one least-squares weight per tile."""
    image = model.synthesized(integers + means, quality)
    refinement = model.refinement
    hidden = refinement.body[:-1](refinement.inputs(image, model.level_position(quality)))
    last = refinement.body[-1]
    shares = torch.cat([F.conv2d(hidden[:, [k]], last.weight[:, [k]], padding=last.padding)
                        for k in range(hidden.shape[1])] + [last.bias.view(1, 1, 1, 1).expand_as(image)], dim=1)
    target = (tiles - image).flatten(1)
    correction = shares.sum(dim=1).flatten(1)
    one = (correction * target).sum(dim=1) / (correction * correction).sum(dim=1)
    parts = shares.flatten(2)
    weights = torch.linalg.solve(parts @ parts.transpose(1, 2), parts @ target[:, :, None])
    per_channel = (weights.transpose(1, 2) @ parts).view_as(image)
    return psnr(image + per_channel, tiles) - psnr(image + one[:, None, None, None] * correction.view_as(image), tiles)


def main() -> None:
    model, tiles, qualities = headroom_inputs(__doc__.split("\n\n")[0])
    print("| quality | centroid (PSNR) | scale bands (bits) | channel weights (PSNR) |")
    print("|---:|---:|---:|---:|")
    with torch.inference_mode():
        for value in qualities:
            quality = torch.full((len(tiles),), value)
            latent, means, scales = latent_and_parameters(model, tiles, value)
            integers = torch.round(latent - means)
            centroid = centroid_change(model, tiles, quality, integers, means, scales, latent)
            bands = scale_band_change(integers, scales)
            channels = (f"{channel_weights_change(model, tiles, quality, integers, means):+.3f} dB"
                        if model.refinement is not None else "no refinement")
            print(f"| {value:g} | {centroid:+.3f} dB | {bands:+.2f} % | {channels} |")


if __name__ == "__main__":
    main()
