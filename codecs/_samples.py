"""The 16-bit integer samples that the image codecs (JPEG 2000, HTJ2K, JPEG XL) code.

Image codecs take integers, the harness gives float tiles in [0, 1]: every
such codec must map between them the same way, or their rates and errors
would not be comparable.
"""

from __future__ import annotations

import numpy as np

SAMPLE_BITS = 16
MAX_SAMPLE = 2**SAMPLE_BITS - 1


def to_samples(tile: np.ndarray) -> np.ndarray:
    """Round the tile to unsigned 16-bit samples; values outside [0, 1] saturate."""
    return np.round(np.clip(tile.astype(np.float64), 0.0, 1.0) * MAX_SAMPLE).astype(np.uint16)


def from_samples(samples: np.ndarray, shape: tuple[int, int], codec: str) -> np.ndarray:
    """Decoded samples back to a float32 tile, refusing a decode of another shape or sample type."""
    if samples.shape != tuple(shape) or samples.dtype != np.uint16:
        raise ValueError(f"{codec}: decoded {samples.dtype} {samples.shape}, expected uint16 {tuple(shape)}")
    return (samples / MAX_SAMPLE).astype(np.float32)
