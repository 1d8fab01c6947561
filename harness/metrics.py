"""Distortion and SAR metrics, registered through the ``harness_metrics`` hook.

Every metric sees the tile pair in the normalized dB domain and judges only
valid pixels: no-data is not signal, so a codec is neither rewarded nor
punished for what it writes there. PSNR and SSIM speak to image-coding
habits; dB error, ENL ratio and edge preservation speak to what SAR users
measure in the decoded data.
"""

from __future__ import annotations

import math

import numpy as np
import pytorch_msssim
import torch
from pytorch_msssim.ssim import _fspecial_gauss_1d, gaussian_filter
from scipy import ndimage

from harness.api import Metric, MetricColumn, MetricInput, hookimpl, metric
from harness.sar import db_to_linear, denormalize_db

DATA_RANGE = 1.0
SSIM_WINDOW_SIZE = 11
SSIM_WINDOW_SIGMA = 1.5
SSIM_K = (0.01, 0.03)
MS_SSIM_SCALES = 5
MS_SSIM_MIN_SIDE = (SSIM_WINDOW_SIZE - 1) * 2 ** (MS_SSIM_SCALES - 1)
ENL_BLOCK_SIZE = 16
ENL_HOMOGENEOUS_FRACTION = 0.1
FLAT_VARIATION = 1e-6
"""Coefficient of variation below which a block counts as constant (speckle has 0.2 to 1)."""
EPI_NEIGHBOURHOOD = 3
BORDER_WIDTH = 2

_SSIM_WINDOW = _fspecial_gauss_1d(SSIM_WINDOW_SIZE, SSIM_WINDOW_SIGMA).reshape(1, 1, 1, -1)

Pair = tuple[np.ndarray, np.ndarray]


def _in_domain(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and blank no-data.

    The normalized domain is bounded by construction (dB clipped to the fixed
    range, then scaled), so a decoded value outside [0, 1] has no dB meaning
    and is read as the nearest bound. No-data is set to 0 so that whatever a
    decoder left there, NaN included, cannot reach a filter or a sum.
    """
    clipped = np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)
    return np.where(mask, clipped, np.float32(0.0))


def _normalized_pair(pair: MetricInput) -> Pair:
    return _in_domain(pair.original, pair.mask), _in_domain(pair.reconstructed, pair.mask)


def db_pair(pair: MetricInput) -> Pair:
    """Original and reconstruction in dB, as the codec saw them: clipped to the range, no-data at its low end."""
    original, reconstructed = _normalized_pair(pair)
    return denormalize_db(original, pair.db_range), denormalize_db(reconstructed, pair.db_range)


def linear_pair(pair: MetricInput) -> Pair:
    """Linear intensity, where speckle is multiplicative and ENL is defined."""
    original_db, reconstructed_db = db_pair(pair)
    return db_to_linear(original_db), db_to_linear(reconstructed_db)


def _fully_valid_neighbourhood(mask: np.ndarray, size: int) -> np.ndarray:
    """Pixels whose centred ``size`` x ``size`` neighbourhood is inside the tile and all valid.

    A filter output there depends on valid pixels only, so no-data cannot leak in.
    """
    return ndimage.minimum_filter(mask, size=size, mode="constant", cval=False)


def _as_image_batch(image: np.ndarray) -> torch.Tensor:
    """Shares memory with ``image``: an N, C, H, W view, as pytorch_msssim expects."""
    return torch.from_numpy(image)[None, None]


def _ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per window, with pytorch_msssim's filter and arithmetic.

    pytorch_msssim only returns the mean; the map is needed so that windows
    touching no-data can be left out before averaging. Operations follow its
    ``_ssim`` in the same order, so a fully valid tile gives the same number.
    """
    c1 = (SSIM_K[0] * DATA_RANGE) ** 2
    c2 = (SSIM_K[1] * DATA_RANGE) ** 2
    mu_x = gaussian_filter(x, _SSIM_WINDOW)
    mu_y = gaussian_filter(y, _SSIM_WINDOW)
    mu_x_sq, mu_y_sq, mu_xy = mu_x.pow(2), mu_y.pow(2), mu_x * mu_y
    var_x = gaussian_filter(x * x, _SSIM_WINDOW) - mu_x_sq
    var_y = gaussian_filter(y * y, _SSIM_WINDOW) - mu_y_sq
    covariance = gaussian_filter(x * y, _SSIM_WINDOW) - mu_xy
    contrast_structure = (2 * covariance + c2) / (var_x + var_y + c2)
    return (((2 * mu_xy + c1) / (mu_x_sq + mu_y_sq + c1)) * contrast_structure)[0, 0]


def _fully_valid_windows(mask: np.ndarray) -> np.ndarray:
    """One flag per SSIM window ("valid" filtering), true when its whole support is valid."""
    radius = SSIM_WINDOW_SIZE // 2
    valid_centres = _fully_valid_neighbourhood(mask, SSIM_WINDOW_SIZE)
    return valid_centres[radius : mask.shape[0] - radius, radius : mask.shape[1] - radius]


PSNR = "psnr"
"""The PSNR metric's column, which the report also reads to tell a lossless point by measurement (+inf)."""


@metric(MetricColumn(PSNR, "PSNR", unit="dB", decimals=2, higher_is_better=True, rd_plot=True,
                     axis="PSNR, normalized dB domain", bd_rate=True, headline=True))
def psnr(pair: MetricInput) -> dict[str, float]:
    """Peak 1, the full span of the normalized domain; +inf for an exact reconstruction."""
    original, reconstructed = _normalized_pair(pair)
    error = reconstructed[pair.mask].astype(np.float64) - original[pair.mask]
    if error.size == 0:
        return {PSNR: math.nan}
    with np.errstate(divide="ignore"):
        return {PSNR: float(10.0 * np.log10(DATA_RANGE**2 / np.mean(error**2)))}


@metric(MetricColumn("ssim", "SSIM", decimals=4, higher_is_better=True))
def ssim(pair: MetricInput) -> dict[str, float]:
    """Mean SSIM over the windows whose whole support is valid.

    Windows that overlap no-data are dropped rather than filled, because any
    fill value would invent structure. NaN when no window is fully valid
    (a tile smaller than the window, or no-data everywhere within reach).
    """
    windows = _fully_valid_windows(pair.mask)
    if not windows.any():
        return {"ssim": math.nan}
    original, reconstructed = _normalized_pair(pair)
    with torch.inference_mode():
        ssim_map = _ssim_map(_as_image_batch(original), _as_image_batch(reconstructed))
        return {"ssim": _at_most_one(float(ssim_map[torch.from_numpy(windows)].mean()))}


@metric(MetricColumn("ms_ssim", "MS-SSIM", decimals=4, higher_is_better=True, rd_plot=True,
                     axis="MS-SSIM (1 = identical)", bd_rate=True, headline=True))
def ms_ssim(pair: MetricInput) -> dict[str, float]:
    """MS-SSIM (five scales, 11-px window); NaN unless the tile is fully valid and each side > 160 px.

    The pyramid averages pixels together at every scale, so no-data would be
    mixed into valid pixels and no mask can be honoured: a tile with any
    no-data gets NaN. Each of the four 2x downsamplings must leave room for
    the 11-px window, which needs each side > (11 - 1) * 2**4 = 160 px.
    """
    if not pair.mask.all() or min(pair.mask.shape) <= MS_SSIM_MIN_SIDE:
        return {"ms_ssim": math.nan}
    original, reconstructed = _normalized_pair(pair)
    with torch.inference_mode():
        value = pytorch_msssim.ms_ssim(
            _as_image_batch(original),
            _as_image_batch(reconstructed),
            data_range=DATA_RANGE,
            win_size=SSIM_WINDOW_SIZE,
            win_sigma=SSIM_WINDOW_SIGMA,
            K=SSIM_K,
        )
    return {"ms_ssim": _at_most_one(float(value))}


def _at_most_one(similarity: float) -> float:
    """SSIM and MS-SSIM are at most 1 (identical images), but their float32 arithmetic is not: on a constant
    tile a variance E[x²] - E[x]² rounds below 0, the contrast term above 1, and MS-SSIM came out 1.0002."""
    return min(similarity, 1.0)


@metric(MetricColumn("rmse_db", "RMSE", unit="dB", decimals=3, higher_is_better=False, rd_plot=True,
                     axis="RMSE of backscatter", bd_rate=True),
        MetricColumn("bias_db", "bias", unit="dB", decimals=3))
def db_error(pair: MetricInput) -> dict[str, float]:
    """RMSE and bias in dB, the unit SAR users threshold and calibrate in.

    The bias is reconstructed minus original: positive means the codec
    brightened the scene, a radiometric shift PSNR cannot reveal. The
    original is the one before clipping to the dB range where the tile
    has it, so that what clipping loses (dark water below the range, bright
    targets above it) counts as the error it is for a user of the dB values.
    """
    if pair.original_db is None:
        original_db, reconstructed_db = db_pair(pair)
    else:
        original_db = pair.original_db.astype(np.float64)
        reconstructed_db = denormalize_db(_in_domain(pair.reconstructed, pair.mask), pair.db_range)
    error = reconstructed_db[pair.mask] - original_db[pair.mask]
    if error.size == 0:
        return {"rmse_db": math.nan, "bias_db": math.nan}
    return {"rmse_db": float(np.sqrt(np.mean(error**2))), "bias_db": float(np.mean(error))}


@metric(MetricColumn("border_bias_db", "border bias", unit="dB", decimals=3))
def border_bias(pair: MetricInput) -> dict[str, float]:
    """Mean dB bias (reconstructed − original) of the valid pixels within 2 px of no-data.

    What a codec fills no-data with, or what the dataset filled it with, can
    bleed into the valid pixels beside a swath border; the tile's mean bias
    hides it among all the others. Measured against the clipped original, so
    that it is the codec's doing alone. NaN on a tile without no-data.
    """
    beside_no_data = pair.mask & ndimage.binary_dilation(~pair.mask, iterations=BORDER_WIDTH)
    if not beside_no_data.any():
        return {"border_bias_db": math.nan}
    original_db, reconstructed_db = db_pair(pair)
    return {"border_bias_db": float(np.mean(reconstructed_db[beside_no_data] - original_db[beside_no_data]))}


def equivalent_number_of_looks(intensity_blocks: np.ndarray) -> np.ndarray:
    """mean² / variance of linear intensity along the last axis, per block.

    L-look speckle is Gamma distributed with variance mean² / L, so on a
    homogeneous area this estimates L. A constant block gives +inf: float
    rounding leaves a flat block a variance of about 1e-30 of its mean², which
    would read as 1e30 looks, so a coefficient of variation below
    ``FLAT_VARIATION`` (far below any speckle's, 1/sqrt(L)) counts as flat.
    """
    mean_squared = intensity_blocks.mean(axis=-1) ** 2
    variance = intensity_blocks.var(axis=-1)
    flat = variance <= FLAT_VARIATION**2 * mean_squared
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, np.inf, mean_squared / np.where(flat, 1.0, variance))


def _blocks(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size blocks as rows; an incomplete last row or column is dropped."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    cropped = image[: rows * size, : cols * size]
    return cropped.reshape(rows, size, cols, size).swapaxes(1, 2).reshape(rows * cols, size * size)


def _most_homogeneous(original_blocks: np.ndarray) -> np.ndarray:
    """Indices of the lowest coefficient-of-variation blocks, at least one.

    Blocks constant in the original (flat at the clip floor) carry no
    speckle to measure and are never chosen: a coefficient of variation
    of ``FLAT_VARIATION`` or less, as in ``equivalent_number_of_looks``, since
    rounding leaves a constant block a variation of about 1e-16, not 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        variation = original_blocks.std(axis=-1) / original_blocks.mean(axis=-1)
    candidates = np.flatnonzero(variation > FLAT_VARIATION)
    count = max(1, round(ENL_HOMOGENEOUS_FRACTION * candidates.size))
    return candidates[np.argsort(variation[candidates], kind="stable")[:count]]


@metric(MetricColumn("enl_ratio", "ENL ratio", decimals=3, rd_plot=True, axis="ENL ratio, reconstructed / original",
                     ideal=1.0, headline=True))
def enl_ratio(pair: MetricInput) -> dict[str, float]:
    """ENL of the reconstruction over ENL of the original, on the original's most homogeneous blocks.

    A codec that smooths speckle can score a fine PSNR while destroying the
    statistics SAR users rely on (ENL drives detection thresholds and
    despeckling), so > 1 flags smoothing and < 1 added noise. Blocks are
    16 x 16 and fully valid; the most homogeneous 10% by coefficient of
    variation in the original stand in for "homogeneous area", and both
    images are measured on the same blocks. NaN when no fully valid,
    non-constant block exists; +inf when the reconstruction is flat on a
    chosen block (all speckle removed).
    """
    original_blocks, reconstructed_blocks = homogeneous_blocks(pair)
    if not len(original_blocks):
        return {"enl_ratio": math.nan}
    original_enl = equivalent_number_of_looks(original_blocks).mean()
    if not np.isfinite(original_enl):  # a chosen block flat after all, by rounding at FLAT_VARIATION
        return {"enl_ratio": math.nan}
    reconstructed_enl = equivalent_number_of_looks(reconstructed_blocks).mean()
    return {"enl_ratio": float(reconstructed_enl / original_enl)}


def homogeneous_blocks(pair: MetricInput) -> Pair:
    """Linear intensity of original and reconstruction on the original's most homogeneous fully valid blocks
    (one row per block, ``ENL_BLOCK_SIZE``² pixels): the "distributed targets" of speckle and level statistics.
    Empty when no fully valid, non-constant block exists."""
    original, reconstructed = linear_pair(pair)
    valid = _blocks(pair.mask, ENL_BLOCK_SIZE).all(axis=-1)
    original_blocks = _blocks(original, ENL_BLOCK_SIZE)[valid]
    chosen = _most_homogeneous(original_blocks)
    return original_blocks[chosen], _blocks(reconstructed, ENL_BLOCK_SIZE)[valid][chosen]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (nothing to correlate)."""
    if a.size < 2:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b)) / denominator if denominator > 0 else math.nan


@metric(MetricColumn("epi", "EPI", decimals=3, higher_is_better=True))
def epi(pair: MetricInput) -> dict[str, float]:
    """Edge preservation index (Sattar et al. 1997): 1 when edges are kept exactly.

    Correlates the Laplacians of original and reconstruction in dB, the
    domain where SAR edges (field borders, coastlines) are read. Only pixels
    whose 3 x 3 neighbourhood is valid count, so the Laplacian never sees
    no-data. NaN when either Laplacian is constant there (a flat image has
    no edges) or fewer than two such pixels exist.
    """
    original_db, reconstructed_db = db_pair(pair)
    inside = _fully_valid_neighbourhood(pair.mask, EPI_NEIGHBOURHOOD)
    original_edges = ndimage.laplace(original_db)[inside]
    reconstructed_edges = ndimage.laplace(reconstructed_db)[inside]
    return {"epi": _correlation(original_edges, reconstructed_edges)}


@hookimpl
def harness_metrics() -> list[Metric]:
    return [psnr, ssim, ms_ssim, db_error, border_bias, enl_ratio, epi]
