"""Alterations of training patches that keep SAR physics: dB gain offsets and no-data regions.

Flips and quarter turns (``data.draw_crops``) keep a patch a possible
Sentinel-1 patch, since speckle has no orientation. Two more do too:

- **A gain offset in dB**: calibration constants, incidence angle and the
  scene's moisture shift a whole patch's backscatter without changing its
  structure or speckle. Adding the offset to the dB values *before* clipping
  to the dB range keeps what clipping does to the shifted patch physical: a
  patch made brighter shows its dark water above the range's floor, as a
  brighter acquisition would, instead of a flat floor lifted off the bound.
  Training data whose absolute level is unknown (``stretched`` images) needs
  it most.
- **A no-data region**: real products have no-data beyond the swath's edge
  (0 in amplitude products, NaN in sigma0 exports: the dataset plugins read
  both as no-data), with a straight border at any angle. The patch gets a
  half-plane of no-data covering a drawn share of it, which then goes
  through ``harness.sar.fill_no_data`` exactly as a test tile does, and the
  loss ignores it (``loop``): the model learns to code the fill cheaply and
  the valid pixels beside it faithfully, which is what ``border_bias_db``
  measures.

Each patch's alteration is drawn in the training process with the crop plan's
generator, so the number of data-loader workers never changes a batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NO_DATA_SHARES = (0.05, 0.5)
"""A no-data region covers a share of its patch drawn uniformly from this range."""


@dataclass(frozen=True)
class Augmentation:
    """How strongly to alter patches; the defaults alter nothing (and draw nothing from the generator)."""

    gain_db: float = 0.0
    """Largest gain offset: each patch is shifted by a dB offset drawn uniformly from [-gain_db, gain_db]."""
    no_data_fraction: float = 0.0
    """Share of the patches that get a no-data region."""

    @property
    def active(self) -> bool:
        return self.gain_db > 0 or self.no_data_fraction > 0

    def draw(self, generator: torch.Generator) -> Alteration:
        """One patch's alteration: four numbers from ``generator`` (always four, so the draws stay aligned)."""
        gain, chance, angle, share = torch.rand(4, generator=generator).tolist()
        no_data = chance < self.no_data_fraction
        return Alteration(gain_db=(2.0 * gain - 1.0) * self.gain_db,
                          no_data_angle=2.0 * math.pi * angle if no_data else None,
                          no_data_share=NO_DATA_SHARES[0] + share * (NO_DATA_SHARES[1] - NO_DATA_SHARES[0]))


@dataclass(frozen=True)
class Alteration:
    """What is done to one patch."""

    gain_db: float = 0.0
    no_data_angle: float | None = None
    """Direction (radians) in which the no-data half-plane lies; None: no no-data region."""
    no_data_share: float = 0.0

    def apply(self, db: np.ndarray) -> np.ndarray:
        """The patch's dB values (NaN: no-data) shifted by the gain, with the no-data region set to NaN."""
        altered = db + np.float32(self.gain_db)
        if self.no_data_angle is not None:
            altered[half_plane(db.shape, self.no_data_angle, self.no_data_share)] = np.nan
        return altered


def half_plane(shape: tuple[int, int], angle: float, share: float) -> np.ndarray:
    """True on the ``share`` of the pixels that lie furthest in direction ``angle``: a straight border."""
    rows, cols = np.indices(shape, dtype=np.float64)
    reach = cols * math.cos(angle) + rows * math.sin(angle)
    return reach > np.quantile(reach, 1.0 - share)
