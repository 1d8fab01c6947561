"""SAR domain conversions: DN, linear intensity, dB and the normalized codec domain."""

import numpy as np
import pytest

from harness.sar import db_to_linear, denormalize_db, dn_to_linear, linear_to_db, normalize_db, to_db


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
