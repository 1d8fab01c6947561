"""SAR domain conversions: DN, linear intensity, dB and the normalized codec domain."""

import numpy as np
import pytest

from harness.sar import (
    db_to_linear,
    denormalize_db,
    dn_to_linear,
    fill_no_data,
    linear_to_db,
    normalize_db,
    to_db,
)


def test_dn_to_linear_divides_squared_amplitude_by_squared_calibration_constant():
    assert dn_to_linear(np.array([100.0]), calibration=10.0)[0] == pytest.approx(100.0)


def test_linear_and_db_round_trip():
    intensity = np.array([1e-4, 0.01, 1.0, 31.6])
    np.testing.assert_allclose(db_to_linear(linear_to_db(intensity)), intensity, rtol=1e-12)


def test_zero_or_negative_intensity_is_nan_db_not_minus_infinity():
    assert np.isnan(linear_to_db(np.array([0.0, -1.0]))).all()


def test_dn_units_give_ten_log_of_squared_amplitude():
    assert to_db(np.array([10.0]), "dn")[0] == pytest.approx(20.0)


def test_unknown_units_are_rejected():
    with pytest.raises(ValueError, match="unknown units"):
        to_db(np.array([1.0]), "amplitude")


def test_normalize_maps_range_ends_to_zero_and_one_and_clips_outside():
    normalized = normalize_db(np.array([-30.0, -25.0, -10.0, 5.0, 12.0]), (-25.0, 5.0))
    np.testing.assert_allclose(normalized, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert normalized.dtype == np.float32


def test_normalize_and_denormalize_round_trip_inside_the_range():
    db = np.linspace(-32.0, -2.0, 101)
    np.testing.assert_allclose(denormalize_db(normalize_db(db, (-32.0, -2.0)), (-32.0, -2.0)), db, atol=1e-5)


def test_nan_stays_nan_through_normalization():
    assert np.isnan(normalize_db(np.array([np.nan]), (-25.0, 5.0))[0])


def swath_border_tile() -> tuple[np.ndarray, np.ndarray]:
    """A speckled level of 0.6 with its first 20 columns no-data, as beside a GRD swath edge."""
    data = (0.6 + 0.05 * np.random.default_rng(0).standard_normal((64, 64))).astype(np.float32)
    mask = np.ones(data.shape, dtype=bool)
    mask[:, :20] = False
    return data, mask


def water_beside_the_border_tile(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """No-data in columns 0-19, then 10 columns of water at the range floor (clipped to 0), then land at 0.6."""
    rng = np.random.default_rng(seed)
    data = 0.6 + 0.05 * rng.standard_normal((64, 64))
    data[:, 20:30] = np.clip(0.01 + 0.03 * rng.standard_normal((64, 10)), 0.0, None)
    mask = np.ones(data.shape, dtype=bool)
    mask[:, :20] = False
    return np.where(mask, data, 0.0).astype(np.float32), mask


def test_no_data_is_filled_with_the_level_of_the_valid_pixels_beside_it_not_the_range_minimum():
    data, mask = swath_border_tile()
    filled = fill_no_data(np.where(mask, data, 0.0).astype(np.float32), mask)
    assert filled[:, 15:20].mean() == pytest.approx(0.6, abs=0.02)
    assert filled[:, 0].mean() == pytest.approx(0.6, abs=0.02)  # 20 px from the data


def test_filling_no_data_leaves_the_valid_pixels_unchanged():
    data, mask = swath_border_tile()
    filled = fill_no_data(data, mask)
    np.testing.assert_array_equal(filled[mask], data[mask])
    assert filled.dtype == np.float32


def test_a_tile_without_valid_pixels_is_filled_with_zeros():
    data = np.full((8, 8), np.nan, dtype=np.float32)
    assert not fill_no_data(data, np.zeros(data.shape, dtype=bool)).any()


def test_the_fill_puts_no_step_at_the_border_where_the_valid_pixels_there_differ_from_those_further_in():
    """Water at the range floor along the border, land behind it: the fill takes the water's level, not the land's
    (the former local mean, 8 px wide, put 0.13 there: a step up that codecs spread into the water)."""
    data, mask = water_beside_the_border_tile()
    filled = fill_no_data(data, mask)
    assert abs(filled[:, 18:20].mean() - data[:, 20:22].mean()) < 0.01


def test_the_fill_continues_the_speckle_of_the_valid_pixels_beside_the_border():
    data, mask = swath_border_tile()
    filled = fill_no_data(data, mask)
    assert filled[:, 19].mean() == pytest.approx(data[:, 20].mean(), abs=0.01)
    assert filled[:, 19].std() == pytest.approx(data[:, 20].std(), rel=0.2)


def test_the_fill_is_smooth_far_from_the_data():
    """Far from the data the fill carries no speckle for a codec to spend bits on."""
    data, mask = swath_border_tile()
    filled = fill_no_data(data, mask)
    assert np.abs(np.diff(filled[:, :4], axis=0)).mean() < 0.2 * np.abs(np.diff(data[:, 20:], axis=0)).mean()


def test_the_fill_stays_within_the_values_of_the_valid_pixels():
    data, mask = water_beside_the_border_tile()
    filled = fill_no_data(data, mask)
    assert data[mask].min() <= filled[~mask].min() and filled[~mask].max() <= data[mask].max()


def test_the_fill_is_deterministic_and_independent_of_what_lies_under_the_no_data():
    data, mask = swath_border_tile()
    scribbled = np.where(mask, data, np.random.default_rng(1).random(data.shape)).astype(np.float32)
    np.testing.assert_array_equal(fill_no_data(data, mask), fill_no_data(data.copy(), mask))
    np.testing.assert_array_equal(fill_no_data(data, mask), fill_no_data(scribbled, mask))


def test_a_transform_codec_no_longer_darkens_the_valid_pixels_beside_a_swath_border():
    """JPEG 2000 at 0.25 bpp: a step down to 0 at the border pulled the border pixels down; the fill removes it."""
    from harness_codecs.jpeg2000 import Jpeg2000

    data, mask = swath_border_tile()
    codec = Jpeg2000(bpp=0.25)
    border = np.s_[:, 20:23]

    def border_bias(tile: np.ndarray) -> float:
        return float((codec.decode(codec.encode(tile), tile.shape)[border] - data[border]).mean())

    zero_filled, filled = np.where(mask, data, 0.0).astype(np.float32), fill_no_data(data, mask)
    assert abs(border_bias(filled)) < 0.2 * abs(border_bias(zero_filled))


def test_a_transform_codec_does_not_brighten_dark_water_beside_a_swath_border():
    """JPEG 2000 at 0.25 bpp, water at the range floor along the border: within the 0.2 dB of issue 26 (the former
    local-mean fill: +0.49 dB on this tile, +0.38 to +0.96 on three seeds)."""
    from harness_codecs.jpeg2000 import Jpeg2000

    data, mask = water_beside_the_border_tile()
    codec = Jpeg2000(bpp=0.25)
    filled = fill_no_data(data, mask)
    decoded = np.clip(codec.decode(codec.encode(filled), filled.shape), 0.0, 1.0)
    db_span = 30.0
    assert abs((decoded[:, 20:22] - data[:, 20:22]).mean() * db_span) < 0.2
