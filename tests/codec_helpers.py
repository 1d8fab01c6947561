"""Tiles and checks shared by the codec specifications."""

from __future__ import annotations

import math

import numpy as np

from harness.sar import db_to_linear, linear_to_db, normalize_db

LOOKS = 4.4
VV_RANGE_DB = (-25.0, 5.0)


def speckled_tile(size: int = 256, seed: int = 0) -> np.ndarray:
    """Piecewise-constant backscatter under 4.4-look speckle, normalized as the harness does.

    Region means stay well inside the dB range so that almost no pixel is
    clipped: a clipped pixel is exact, which would flatter the PSNR.
    """
    rng = np.random.default_rng(seed)
    region_db = rng.uniform(-18.0, -4.0, size=(8, 8))
    mean_db = np.kron(region_db, np.ones((size // 8, size // 8)))
    intensity = db_to_linear(mean_db) * rng.gamma(LOOKS, 1.0 / LOOKS, size=mean_db.shape)
    return normalize_db(linear_to_db(intensity), VV_RANGE_DB)


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
