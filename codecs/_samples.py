"""The integer samples that the image codecs (JPEG 2000, HTJ2K, JPEG XL at 16 bits, AVIF at 10/12) code.

Image codecs take integers, the harness gives float tiles in [0, 1]: every
such codec must map between them the same way, or their rates and errors
would not be comparable.
"""

from __future__ import annotations

import numpy as np

SAMPLE_BITS = 16


def to_samples(tile: np.ndarray, bits: int = SAMPLE_BITS) -> np.ndarray:
    """Round the tile to unsigned ``bits``-bit samples (in uint16); values outside [0, 1] saturate."""
    return np.round(np.clip(tile.astype(np.float64), 0.0, 1.0) * (2**bits - 1)).astype(np.uint16)


def from_samples(samples: np.ndarray, shape: tuple[int, int], codec: str, bits: int = SAMPLE_BITS) -> np.ndarray:
    """Decoded samples back to a float32 tile, refusing a decode of another shape or sample type."""
    if samples.shape != tuple(shape) or samples.dtype != np.uint16:
        raise ValueError(f"{codec}: decoded {samples.dtype} samples of shape {samples.shape}; "
                         f"the tile needs uint16 of shape {tuple(shape)}")
    return (samples / (2**bits - 1)).astype(np.float32)
