"""Each tile's refinement weight: how much of the refinement's correction its decoder adds, chosen by the encoder.

Why: the refinement (``model.refinement``) learned its correction on the training data's processing chains. On a
chain it did not see, the correction can hurt: measured with the ``gdn-dct-light`` model, the refinement trained
alone added 0.02 to 0.28 dB to the test chips and to BigEarthNet-S1 over the nine levels, but took 0.04 to
0.26 dB from pyroSAR's (GAMMA, terrain-normalised) five upper levels. The encoder holds both the tile and the
correction, so, as with the post-filter, it chooses the weight that brings the tile closest to the original (the
least-squares scale of the correction, over the tile's pixels) and writes it in one byte; the decoder reads it.
Every byte is a valid weight, from 0 (the synthesis alone) to 255/128.
"""

from __future__ import annotations

import numpy as np
import torch

WEIGHT_STEP = 1 / 128
"""A weight code's unit: codes 0 to 255 are weights 0 to 1.99."""
LARGEST_CODE = 255
TRAINED_CODE = 128
"""The weight the refinement was trained with (1), which a tile whose correction is all zero keeps."""


def weight_of(code: int) -> float:
    """The weight a stored code stands for."""
    return code * WEIGHT_STEP


def chosen_code(original: np.ndarray, decoded: torch.Tensor, correction: torch.Tensor) -> int:
    """The code of the weight ``w`` that minimises ``|decoded + w * correction - original|^2`` over the tile
    (``decoded`` and ``correction``: H x W, cropped to the tile), clipped to the codes there are."""
    target = torch.from_numpy(original.astype(np.float32)).to(decoded.device) - decoded.float()
    correction = correction.float()
    energy = float(torch.sum(correction * correction))
    if energy == 0.0:
        return TRAINED_CODE
    weight = float(torch.sum(target * correction)) / energy
    return int(np.clip(round(weight / WEIGHT_STEP), 0, LARGEST_CODE))
