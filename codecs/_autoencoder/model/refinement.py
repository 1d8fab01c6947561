"""A small full-resolution network after the synthesis: the decoded tile plus a learned correction.

Why: a light synthesis (``gdn-dct-light`` narrows to 32 channels before the image) leaves the seed's decode budget
(20k MAC/px) about 7k MAC/px unspent, and the last layers are where its output is least flexible. A few 3x3
convolutions at full resolution, fed the decoded tile and the tile's quality level, learn what the synthesis
cannot express: trained alone on the ``gdn-dct-light`` model for 8 minutes (its stage 7), three layers of 16
channels, 5k MAC/px, raised the validation PSNR of the held-out BigEarthNet-S1 and pyroSAR tiles by 0.01 to 0.25 dB
over the levels (``docs/learned-codec.md``).

The last layer starts at zero, so a model that gains a refinement decodes exactly as before until it is trained:
training one on a frozen model can only move it away from where it was by what lowers the training loss. It runs
inside ``Autoencoder.decode``, so the codec, the encoder's post-filter fit and validation all see the same output.
The codec scales each tile's correction by a weight its encoder chooses and writes (``runtime.refinement_weight``),
so that a processing chain on which the correction does not help can turn it down.
"""

from __future__ import annotations

import torch
from torch import nn

KERNEL = 3
SLOPE = 0.1
"""LeakyReLU's negative slope: no unit goes dead when the frozen model's output is shifted."""
CENTRE = 0.5
"""Subtracted from the normalized tile ([0, 1]) so that the first layer's inputs are centred."""


class Refinement(nn.Module):
    """The correction ``body(image, level)`` to add to the image: ``widths`` hidden layers of 3x3 convolutions; a
    variable-rate model's quality enters as one more input plane, its position in [0, 1] over the levels
    (fractional qualities too)."""

    def __init__(self, widths: tuple[int, ...], rate_levels: int):
        super().__init__()
        self.rate_levels = rate_levels
        channels = [2 if rate_levels else 1, *widths]
        layers: list[nn.Module] = []
        for inputs, outputs in zip(channels, channels[1:]):
            layers += [nn.Conv2d(inputs, outputs, KERNEL, padding=KERNEL // 2), nn.LeakyReLU(SLOPE, inplace=True)]
        last = nn.Conv2d(channels[-1], 1, KERNEL, padding=KERNEL // 2)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, image: torch.Tensor, position: torch.Tensor | None) -> torch.Tensor:
        """``position``: each tile's quality clamped to the levels, (N,); None for a single-rate model."""
        return self.body(self.inputs(image, position))

    def inputs(self, image: torch.Tensor, position: torch.Tensor | None) -> torch.Tensor:
        """What the first layer reads: the centred image and, for a variable-rate model, the level plane."""
        features = image - CENTRE
        if self.rate_levels:
            level = (position / max(self.rate_levels - 1, 1)).to(image.dtype)
            features = torch.cat([features, level[:, None, None, None].expand_as(image)], dim=1)
        return features


def corrected(image: torch.Tensor, correction: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``image + weight * correction``, one weight per tile (N,; None: 1), in the correction's precision: the one
    sum that both the decoder and the encoder (choosing the weight, fitting the post-filter) compute."""
    if weight is not None:
        correction = correction * weight.to(correction.device, correction.dtype)[:, None, None, None]
    return image + correction
