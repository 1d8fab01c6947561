"""What the metrics promise: each test states one behaviour a codec comparison relies on.

Test tiles are synthetic SAR: piecewise-constant backscatter times Gamma
speckle with the ~4.4 looks of Sentinel-1 IW GRDH, normalized like real tiles.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import pytorch_msssim
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.api import MetricInput
from harness.metrics import (
    ENL_BLOCK_SIZE,
    MS_SSIM_MIN_SIDE,
    border_bias,
    db_error,
    enl_ratio,
    epi,
    equivalent_number_of_looks,
    harness_metrics,
    ms_ssim,
    psnr,
    ssim,
)
from harness.sar import db_to_linear, denormalize_db, linear_to_db, normalize_db

DB_RANGE = (-25.0, 5.0)
LOOKS = 4.4
NODATA_COLUMNS = 40


def speckled_scene(shape: tuple[int, int] = (256, 256), seed: int = 0, region: int = 32) -> np.ndarray:
    """Square regions of constant backscatter, each pixel multiplied by L-look Gamma speckle."""
    rng = np.random.default_rng(seed)
    levels_db = rng.uniform(-20.0, -2.0, size=(math.ceil(shape[0] / region), math.ceil(shape[1] / region)))
    backscatter = db_to_linear(np.kron(levels_db, np.ones((region, region))))[: shape[0], : shape[1]]
    speckle = rng.gamma(LOOKS, 1.0 / LOOKS, size=shape)
    return normalize_db(linear_to_db(backscatter * speckle), DB_RANGE)


def noisy(image: np.ndarray, sigma: float = 0.03, seed: int = 1) -> np.ndarray:
    """A lossy reconstruction that stays inside [0, 1], so reference libraries see the same input."""
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0.0, 1.0).astype(np.float32)


def blurred(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma)


def dimmed(image: np.ndarray) -> np.ndarray:
    """A brightness change, which only SSIM's luminance term sees."""
    return 0.5 * image


def speckle_smoothed(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Box filter in linear intensity: the multilooking a speckle-smoothing codec imitates."""
    intensity = db_to_linear(denormalize_db(image, DB_RANGE))
    return normalize_db(linear_to_db(ndimage.uniform_filter(intensity, size)), DB_RANGE)


def fully_valid(image: np.ndarray) -> np.ndarray:
    return np.ones(image.shape, dtype=bool)


def nodata_strip(image: np.ndarray) -> np.ndarray:
    """A GRD-like border: the first columns are no-data."""
    mask = fully_valid(image)
    mask[:, :NODATA_COLUMNS] = False
    return mask


def pair(original: np.ndarray, reconstructed: np.ndarray, mask: np.ndarray | None = None) -> MetricInput:
    mask = fully_valid(original) if mask is None else mask
    return MetricInput(original=original, reconstructed=reconstructed, mask=mask, db_range=DB_RANGE)


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image))[None, None]


def skimage_ssim(original: np.ndarray, reconstructed: np.ndarray) -> float:
    """skimage in float64 with the Gaussian-window settings of Wang et al. 2004."""
    return structural_similarity(
        original.astype(np.float64),
        reconstructed.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )


def test_hook_registers_seven_metrics_with_the_result_columns():
    original = speckled_scene()
    columns = {metric.name: set(metric(pair(original, noisy(original)))) for metric in harness_metrics()}
    assert columns == {
        "psnr": {"psnr"},
        "ssim": {"ssim"},
        "ms_ssim": {"ms_ssim"},
        "db_error": {"rmse_db", "bias_db"},
        "border_bias": {"border_bias_db"},
        "enl_ratio": {"enl_ratio"},
        "epi": {"epi"},
    }


@pytest.mark.parametrize("metric", harness_metrics(), ids=lambda metric: metric.name)
def test_masked_pixels_of_either_image_do_not_change_the_metric(metric):
    original = speckled_scene()
    reconstructed = noisy(original)
    mask = nodata_strip(original)
    garbage = np.random.default_rng(7).uniform(-5.0, 5.0, original.shape).astype(np.float32)
    garbage[::3, ::3] = np.nan
    scrambled_original = np.where(mask, original, garbage)
    scrambled_reconstruction = np.where(mask, reconstructed, garbage[::-1])

    np.testing.assert_equal(
        metric(pair(scrambled_original, scrambled_reconstruction, mask)),
        metric(pair(original, reconstructed, mask)),
    )


@pytest.mark.parametrize("metric", harness_metrics(), ids=lambda metric: metric.name)
def test_every_value_is_nan_on_a_tile_without_valid_pixels(metric):
    original = speckled_scene()
    values = metric(pair(original, noisy(original), np.zeros(original.shape, dtype=bool)))
    assert all(math.isnan(value) for value in values.values())


CONSTANT_LEVEL = np.float32(25 / 30)
"""0 dB in the VV range: the level a whole tile of zeros had before zero DN was no-data."""


def constant_tile(shift: float = 0.0) -> np.ndarray:
    return np.full((256, 256), CONSTANT_LEVEL + np.float32(shift), dtype=np.float32)


@pytest.mark.parametrize("shift", [0.0, 1e-3], ids=["identical", "shifted"])
@pytest.mark.parametrize("metric", [ssim, ms_ssim], ids=lambda metric: metric.name)
def test_ssim_and_ms_ssim_never_exceed_one_on_a_constant_tile(metric, shift):
    """float32 rounding made a constant tile's variance negative: MS-SSIM 1.0002, SSIM 1.0001."""
    (value,) = metric(pair(constant_tile(), constant_tile(shift))).values()
    assert 0.99 < value <= 1.0


@pytest.mark.parametrize("shift", [0.0, 1e-3, -0.3], ids=["identical", "shifted", "far"])
def test_no_metric_warns_on_a_constant_tile(shift):
    from harness.task_metrics import harness_metrics as task_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for metric in [*harness_metrics(), *task_metrics()]:
            metric(pair(constant_tile(), constant_tile(shift)))


def test_enl_ratio_is_nan_on_a_constant_tile_which_has_no_speckle_to_measure():
    assert math.isnan(enl_ratio(pair(constant_tile(), constant_tile(1e-3)))["enl_ratio"])


def test_reconstruction_beyond_the_unit_range_counts_as_the_nearest_bound():
    original = speckled_scene()
    original[:, :32] = 0.0
    original[:, -32:] = 1.0
    reconstructed = original.copy()
    reconstructed[:, :32] = -0.3
    reconstructed[:, -32:] = 1.3

    assert psnr(pair(original, reconstructed))["psnr"] == math.inf
    assert db_error(pair(original, reconstructed))["rmse_db"] == 0.0


def test_psnr_equals_skimage_on_the_valid_pixels():
    original = speckled_scene()
    reconstructed = noisy(original)
    mask = nodata_strip(original)
    expected = peak_signal_noise_ratio(original[mask], reconstructed[mask], data_range=1.0)

    assert psnr(pair(original, reconstructed, mask))["psnr"] == pytest.approx(expected, abs=1e-9)


def test_psnr_is_infinite_for_identical_images():
    original = speckled_scene()
    assert psnr(pair(original, original.copy()))["psnr"] == math.inf


@pytest.mark.parametrize("degrade", [noisy, blurred, dimmed], ids=lambda degrade: degrade.__name__)
def test_ssim_equals_skimage_gaussian_ssim_on_a_fully_valid_tile(degrade):
    """skimage filters with reflection and then crops 5 px per side, which leaves exactly
    the windows our "valid" filtering computes, with the same 11-tap kernel: only
    float32 against float64 rounding remains, far below the 1e-3 one might expect."""
    original = speckled_scene()
    reconstructed = degrade(original)

    expected = skimage_ssim(original, reconstructed)

    assert ssim(pair(original, reconstructed))["ssim"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("degrade", [noisy, blurred, dimmed], ids=lambda degrade: degrade.__name__)
def test_ssim_equals_pytorch_msssim_on_a_fully_valid_tile(degrade):
    original = speckled_scene()
    reconstructed = degrade(original)

    expected = pytorch_msssim.ssim(as_batch(original), as_batch(reconstructed), data_range=1.0)

    assert ssim(pair(original, reconstructed))["ssim"] == pytest.approx(float(expected), abs=1e-6)


def test_ssim_with_a_nodata_strip_equals_ssim_of_the_valid_part_alone():
    original = speckled_scene()
    reconstructed = noisy(original)
    valid = np.s_[:, NODATA_COLUMNS:]

    expected = pytorch_msssim.ssim(as_batch(original[valid]), as_batch(reconstructed[valid]), data_range=1.0)

    assert ssim(pair(original, reconstructed, nodata_strip(original)))["ssim"] == pytest.approx(
        float(expected), abs=1e-6
    )


def test_ssim_is_nan_when_no_window_is_fully_valid():
    original = speckled_scene()
    mask = fully_valid(original)
    mask[:, ::8] = False

    assert math.isnan(ssim(pair(original, noisy(original), mask))["ssim"])


def test_ssim_is_one_for_identical_images():
    original = speckled_scene()
    assert ssim(pair(original, original.copy()))["ssim"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(128, 128), (256, MS_SSIM_MIN_SIDE)])
def test_ms_ssim_is_nan_when_a_side_is_too_short_for_five_scales(shape):
    original = speckled_scene(shape)
    assert math.isnan(ms_ssim(pair(original, noisy(original)))["ms_ssim"])


def test_ms_ssim_is_nan_when_the_tile_has_any_nodata():
    original = speckled_scene()
    mask = fully_valid(original)
    mask[100, 100] = False

    assert math.isnan(ms_ssim(pair(original, noisy(original), mask))["ms_ssim"])


@pytest.mark.parametrize("shape", [(256, 256), (MS_SSIM_MIN_SIDE + 1, MS_SSIM_MIN_SIDE + 1)])
def test_ms_ssim_on_a_fully_valid_large_tile_is_pytorch_msssim_with_unit_range(shape):
    original = speckled_scene(shape)
    reconstructed = noisy(original)

    expected = pytorch_msssim.ms_ssim(as_batch(original), as_batch(reconstructed), data_range=1.0)

    value = ms_ssim(pair(original, reconstructed))["ms_ssim"]
    assert 0.0 < value < 1.0
    assert value == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize("offset_db", [0.6, -0.6])
def test_bias_db_has_the_sign_and_size_of_a_known_offset(offset_db):
    original = 0.1 + 0.8 * speckled_scene()
    reconstructed = original + offset_db / (DB_RANGE[1] - DB_RANGE[0])

    errors = db_error(pair(original, reconstructed))

    assert errors["bias_db"] == pytest.approx(offset_db, abs=1e-4)
    assert errors["rmse_db"] == pytest.approx(abs(offset_db), abs=1e-4)


def test_rmse_db_equals_the_size_of_a_known_symmetric_error():
    error_db = 0.5
    original = 0.1 + 0.8 * speckled_scene()
    signs = np.where(np.indices(original.shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    reconstructed = original + signs * error_db / (DB_RANGE[1] - DB_RANGE[0])

    errors = db_error(pair(original, reconstructed))

    assert errors["rmse_db"] == pytest.approx(error_db, abs=1e-4)
    assert errors["bias_db"] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("looks", [1.0, LOOKS])
def test_enl_of_pure_gamma_speckle_with_l_looks_is_l(looks):
    """Independent of the metric: intensity ~ Gamma(L, mean / L) has mean² / variance = L."""
    rng = np.random.default_rng(3)
    blocks = rng.gamma(looks, 0.2 / looks, size=(4096, 16 * 16))

    assert equivalent_number_of_looks(blocks).mean() == pytest.approx(looks, rel=0.05)


def test_enl_ratio_is_one_for_identical_images():
    original = speckled_scene()
    assert enl_ratio(pair(original, original.copy()))["enl_ratio"] == pytest.approx(1.0, abs=1e-12)


def test_enl_ratio_exceeds_one_when_the_codec_smooths_speckle():
    original = speckled_scene()
    assert enl_ratio(pair(original, speckle_smoothed(original)))["enl_ratio"] > 2.0


def test_enl_ratio_is_infinite_when_the_codec_flattens_a_homogeneous_block():
    """A coarse quantizer maps a calm area to one level: all speckle is gone, whatever float rounding says."""
    original = speckled_scene()
    reconstructed = original.copy()
    reconstructed[:, :] = np.float32(0.4123)

    assert enl_ratio(pair(original, reconstructed))["enl_ratio"] == math.inf


def test_enl_ratio_judges_only_the_homogeneous_blocks():
    """Smoothing a busy texture is not speckle loss: only calm areas measure ENL."""
    calm = speckled_scene(region=32)
    busy = speckled_scene(region=2, seed=5)
    original = np.hstack([calm[:, :128], busy[:, 128:]])
    reconstructed = np.hstack([calm[:, :128], speckle_smoothed(busy)[:, 128:]])

    assert enl_ratio(pair(original, reconstructed))["enl_ratio"] == pytest.approx(1.0, abs=1e-12)


def test_enl_ratio_with_a_nodata_strip_uses_only_the_blocks_clear_of_it():
    original = speckled_scene()
    reconstructed = noisy(original)
    first_clear_column = math.ceil(NODATA_COLUMNS / ENL_BLOCK_SIZE) * ENL_BLOCK_SIZE
    clear = np.s_[:, first_clear_column:]

    expected = enl_ratio(pair(original[clear], reconstructed[clear]))["enl_ratio"]

    assert enl_ratio(pair(original, reconstructed, nodata_strip(original)))["enl_ratio"] == expected


def test_enl_ratio_is_nan_without_a_fully_valid_block():
    original = speckled_scene()
    mask = fully_valid(original)
    mask[::8, :] = False

    assert math.isnan(enl_ratio(pair(original, noisy(original), mask))["enl_ratio"])


def test_epi_is_one_for_identical_images():
    original = speckled_scene()
    assert epi(pair(original, original.copy()))["epi"] == pytest.approx(1.0, abs=1e-12)


def test_epi_drops_when_the_reconstruction_is_blurred():
    original = speckled_scene()
    assert epi(pair(original, blurred(original)))["epi"] < 0.9


def test_epi_with_a_nodata_strip_equals_epi_of_the_valid_part_alone():
    original = speckled_scene()
    reconstructed = blurred(original)
    valid = np.s_[:, NODATA_COLUMNS:]

    expected = epi(pair(original[valid], reconstructed[valid]))["epi"]

    value = epi(pair(original, reconstructed, nodata_strip(original)))["epi"]
    assert value == pytest.approx(expected, abs=1e-12)


def test_epi_is_nan_for_a_constant_image():
    flat = np.full((64, 64), 0.5, dtype=np.float32)
    assert math.isnan(epi(pair(flat, flat.copy()))["epi"])


def test_db_error_scores_against_the_original_before_clipping_so_clipping_costs_what_it_costs():
    original_db = denormalize_db(0.1 + 0.8 * speckled_scene(), DB_RANGE)
    original_db[:8] = DB_RANGE[0] - 6.0  # dark water 6 dB below the range, on 8 of the rows
    clipped = normalize_db(original_db, DB_RANGE)
    scored = MetricInput(original=clipped, reconstructed=clipped, mask=fully_valid(clipped), db_range=DB_RANGE,
                         original_db=original_db.astype(np.float32))

    errors = db_error(scored)

    share = 8 / original_db.shape[0]
    assert errors["bias_db"] == pytest.approx(6.0 * share, abs=1e-4)
    assert errors["rmse_db"] == pytest.approx(np.sqrt(36.0 * share), abs=1e-4)
    assert db_error(pair(clipped, clipped))["rmse_db"] == pytest.approx(0.0, abs=1e-9)  # without it: clipped original


def test_border_bias_is_the_mean_db_shift_of_the_valid_pixels_beside_no_data():
    original = 0.1 + 0.8 * speckled_scene()
    mask = nodata_strip(original)
    reconstructed = original.copy()
    beside = slice(NODATA_COLUMNS, NODATA_COLUMNS + 2)
    reconstructed[:, beside] -= 3.0 / (DB_RANGE[1] - DB_RANGE[0])  # a fill that bled 3 dB darker into 2 columns
    reconstructed[:, NODATA_COLUMNS + 2:] += 0.5 / (DB_RANGE[1] - DB_RANGE[0])  # and the rest 0.5 dB brighter

    assert border_bias(pair(original, reconstructed, mask))["border_bias_db"] == pytest.approx(-3.0, abs=1e-4)


def test_border_bias_is_nan_on_a_tile_without_no_data():
    original = speckled_scene()
    assert math.isnan(border_bias(pair(original, noisy(original)))["border_bias_db"])
