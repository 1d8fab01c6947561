"""The scene statistics of ``shared/data/STATS.md``, computed exactly as that table defines them.

One estimator serves both sides of the realism check: the tests first show it
reproduces the table on the real chips, then hold the synthetic scenes to the
real ranges with it. A different estimator on either side would make the
comparison meaningless (ENL in particular depends heavily on how it is taken).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WATER_BELOW_VV_DB = -15.0
ENL_BLOCK_PX = 16
ENL_CV_PERCENTILE = 5.0


@dataclass(frozen=True)
class SceneStatistics:
    """One row of the STATS.md table. ENL and lag-1 correlation are taken on VV."""

    vv_mean_db: float
    vv_std_db: float
    vv_p1_db: float
    vv_p99_db: float
    vh_mean_db: float
    vh_std_db: float
    vv_minus_vh_db: float
    vv_vh_correlation: float
    water_fraction: float
    enl: float
    lag1_correlation: float


def measure_scene_statistics(vv_db: np.ndarray, vh_db: np.ndarray, valid: np.ndarray) -> SceneStatistics:
    """Statistics over the pixels where ``valid`` is True (no-data never counts as signal)."""
    valid = valid & np.isfinite(vv_db) & np.isfinite(vh_db)
    vv = vv_db[valid].astype(np.float64)
    vh = vh_db[valid].astype(np.float64)
    return SceneStatistics(
        vv_mean_db=float(vv.mean()),
        vv_std_db=float(vv.std()),
        vv_p1_db=float(np.percentile(vv, 1)),
        vv_p99_db=float(np.percentile(vv, 99)),
        vh_mean_db=float(vh.mean()),
        vh_std_db=float(vh.std()),
        vv_minus_vh_db=float(vv.mean() - vh.mean()),
        vv_vh_correlation=float(np.corrcoef(vv, vh)[0, 1]),
        water_fraction=float(np.mean(vv < WATER_BELOW_VV_DB)),
        enl=equivalent_number_of_looks(vv_db, valid),
        lag1_correlation=lag1_correlation(vv_db, valid),
    )


def equivalent_number_of_looks(db: np.ndarray, valid: np.ndarray) -> float:
    """1/CV**2 of linear intensity on the most homogeneous blocks. Edges and texture only
    raise CV, so the low tail of CV (its 5th percentile over fully valid, non-overlapping
    16x16 blocks tiled from the top-left) isolates speckle."""
    blocks_down, blocks_across = db.shape[0] // ENL_BLOCK_PX, db.shape[1] // ENL_BLOCK_PX
    cropped = (slice(0, blocks_down * ENL_BLOCK_PX), slice(0, blocks_across * ENL_BLOCK_PX))
    intensity = as_blocks(np.power(10.0, db[cropped].astype(np.float64) / 10.0))
    fully_valid = as_blocks(valid[cropped]).all(axis=1)
    if not fully_valid.any():
        raise ValueError(f"no fully valid {ENL_BLOCK_PX}x{ENL_BLOCK_PX} block to estimate ENL on")
    homogeneous = intensity[fully_valid]
    variation = homogeneous.std(axis=1) / homogeneous.mean(axis=1)
    return float(1.0 / np.percentile(variation, ENL_CV_PERCENTILE) ** 2)


def as_blocks(image: np.ndarray) -> np.ndarray:
    """Rows of ``ENL_BLOCK_PX**2`` pixels, one per non-overlapping block."""
    down, across = image.shape[0] // ENL_BLOCK_PX, image.shape[1] // ENL_BLOCK_PX
    tiled = image.reshape(down, ENL_BLOCK_PX, across, ENL_BLOCK_PX).swapaxes(1, 2)
    return tiled.reshape(down * across, ENL_BLOCK_PX * ENL_BLOCK_PX)


def lag1_correlation(db: np.ndarray, valid: np.ndarray) -> float:
    """Correlation of each dB pixel with its right-hand neighbour, where both are valid.
    The horizontal neighbour is the one STATS.md used (checked against its table)."""
    left, right = db[:, :-1], db[:, 1:]
    both = valid[:, :-1] & valid[:, 1:]
    return float(np.corrcoef(left[both], right[both])[0, 1])
