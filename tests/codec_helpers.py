"""Tiles and checks shared by the codec specifications."""

from __future__ import annotations

import math

import numpy as np

from harness import testing


def speckled_tile(size: int = 256, seed: int = 0) -> np.ndarray:
    """A square SAR-like tile (``harness.testing.speckled_tile``)."""
    return testing.speckled_tile((size, size), seed)


def noise_tile(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def round_trip(codec, tile: np.ndarray) -> np.ndarray:
    return codec.decode(codec.encode(tile), tile.shape)


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    mse = np.mean((original.astype(np.float64) - decoded) ** 2)
    return 10.0 * math.log10(1.0 / mse)


def rates(codec_class, option: str, values: list[float], tile: np.ndarray) -> list[float]:
    """Achieved bits per pixel of one tile at each knob value, in the order given."""
    return [8 * len(codec_class(**{option: value}).encode(tile)) / tile.size for value in values]
