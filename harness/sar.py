"""SAR radiometric domains and the fixed mapping into the codecs' [0, 1] domain.

Sentinel-1 GRD pixels are amplitude DN; calibrated intensity is
``sigma0 = DN**2 / A**2`` with ``A`` from the product's calibration LUT. The
codecs see dB intensity clipped to a fixed per-polarisation range and scaled
to [0, 1]: fixed, so that nothing tile-specific has to travel outside the
bitstream.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

UNITS = ("db", "linear", "dn")


def dn_to_linear(dn: np.ndarray, calibration: float | np.ndarray = 1.0) -> np.ndarray:
    """Amplitude DN to intensity; with the LUT's ``A`` this is sigma0/beta0/gamma0."""
    dn = np.asarray(dn, dtype=np.float64)
    return (dn * dn) / (np.asarray(calibration, dtype=np.float64) ** 2)


def linear_to_db(intensity: np.ndarray) -> np.ndarray:
    """Intensity to dB; zero or negative intensity (no signal) becomes NaN, not -inf."""
    intensity = np.asarray(intensity, dtype=np.float64)
    out = np.full(intensity.shape, np.nan)
    positive = intensity > 0
    out[positive] = 10.0 * np.log10(intensity[positive])
    return out


def db_to_linear(db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def to_db(values: np.ndarray, units: str) -> np.ndarray:
    """Convert raster values in ``units`` ('db', 'linear' or 'dn' amplitude) to dB."""
    if units == "db":
        return np.asarray(values, dtype=np.float64)
    if units == "linear":
        return linear_to_db(values)
    if units == "dn":
        return linear_to_db(dn_to_linear(values))
    raise ValueError(f"unknown units {units!r}; expected one of {', '.join(UNITS)}")


def normalize_db(db: np.ndarray, db_range: tuple[float, float]) -> np.ndarray:
    """Clip dB to ``db_range`` and scale to float32 [0, 1]; NaN stays NaN."""
    low, high = db_range
    scaled = (np.clip(db, low, high) - low) / (high - low)
    return scaled.astype(np.float32)


def denormalize_db(normalized: np.ndarray, db_range: tuple[float, float]) -> np.ndarray:
    """Inverse of ``normalize_db`` for values inside the range."""
    low, high = db_range
    return np.asarray(normalized, dtype=np.float64) * (high - low) + low


NO_DATA_FILL_SIGMA = 8.0
"""Width (pixels) of the Gaussian that averages the valid pixels around a no-data pixel."""
_NO_DATA_FILL_MIN_WEIGHT = 1e-3


def fill_no_data(data: np.ndarray, mask: np.ndarray, sigma: float = NO_DATA_FILL_SIGMA) -> np.ndarray:
    """``data`` with its no-data pixels (``mask`` False) set to the local mean of the valid pixels nearby.

    A codec codes the whole tile, no-data included, and a transform codec
    spreads a step at a swath border into the valid pixels beside it: filling
    no-data with the range minimum (dark as the darkest water) biased the
    learned codecs' valid border pixels by -3.4 to -3.7 dB. The local mean
    (a Gaussian-weighted average of the valid pixels, normalized by the weight
    of valid pixels in reach) continues the scene's level across the border
    without a step; pixels beyond the Gaussian's reach take the mean of the
    whole tile's valid pixels. Valid pixels are returned unchanged.
    """
    if mask.all() or not mask.any():
        return np.where(mask, data, 0.0).astype(data.dtype)
    values = np.where(mask, data, 0.0).astype(np.float64)
    weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    local = ndimage.gaussian_filter(values, sigma) / np.maximum(weight, _NO_DATA_FILL_MIN_WEIGHT)
    filled = np.where(weight >= _NO_DATA_FILL_MIN_WEIGHT, local, values[mask].mean())
    return np.where(mask, data, filled).astype(data.dtype)
