"""What the task metrics promise, on synthetic SAR with known answers: water masks, point targets, levels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.api import MetricInput
from harness.sar import db_to_linear, linear_to_db, normalize_db
from harness.task_metrics import (
    CFAR_GUARD,
    CFAR_LOOKS,
    CFAR_TRAINING,
    cfar_threshold_factor,
    distributed_bias,
    point_targets,
    water_mapping,
)

DB_RANGE = (-25.0, 5.0)
LOOKS = 4.4
SIZE = 128
TARGET = (60, 70)


def speckled(mean_db: np.ndarray, seed: int = 0) -> np.ndarray:
    """Backscatter in dB times L-look Gamma speckle, back in dB."""
    speckle = np.random.default_rng(seed).gamma(LOOKS, 1.0 / LOOKS, size=mean_db.shape)
    return linear_to_db(db_to_linear(mean_db) * speckle)


def normalized(db: np.ndarray) -> np.ndarray:
    return normalize_db(db, DB_RANGE).astype(np.float32)


def pair(original_db: np.ndarray, reconstructed_db: np.ndarray) -> MetricInput:
    mask = np.ones(original_db.shape, dtype=bool)
    return MetricInput(normalized(original_db), normalized(reconstructed_db), mask, DB_RANGE)


def flood_scene() -> np.ndarray:
    """Open water (-21 dB) on the left 48 columns, fields (-8 dB) on the right: 14 dB apart, as in STATS.md."""
    mean_db = np.full((SIZE, SIZE), -8.0)
    mean_db[:, :48] = -21.0
    return speckled(mean_db)


def sea_with_a_ship(ship_db: float = 10.0) -> np.ndarray:
    """Homogeneous sea clutter at -15 dB and one 3 x 3 bright target at TARGET."""
    scene = speckled(np.full((SIZE, SIZE), -15.0), seed=3)
    row, col = TARGET
    scene[row - 1:row + 2, col - 1:col + 2] = ship_db
    return scene


def test_an_identical_tile_maps_the_same_water():
    scene = flood_scene()
    assert water_mapping(pair(scene, scene)) == {"water_iou": 1.0, "water_flipped": 0.0}


def test_water_turned_into_land_lowers_the_iou_and_flips_exactly_those_pixels():
    scene = flood_scene()
    decoded = scene.copy()
    decoded[:, 40:48] = -8.0  # 8 of the 48 water columns now read as land
    result = water_mapping(pair(scene, decoded))

    water = np.count_nonzero(scene < -14.5)
    assert result["water_flipped"] == pytest.approx(8 * SIZE / SIZE**2, abs=0.01)
    assert result["water_iou"] == pytest.approx((water - 8 * SIZE) / water, abs=0.01)


def test_a_constant_tile_has_no_water_split():
    flat = np.full((SIZE, SIZE), -10.0)
    assert math.isnan(water_mapping(pair(flat, flat))["water_iou"])


def test_the_cfar_threshold_gives_its_false_alarm_rate_on_speckle():
    """Independent of the detector: simulate pixel and training mean as the factor's derivation assumes."""
    rng = np.random.default_rng(0)
    cells, rate = 50, 0.01
    pixels = rng.gamma(CFAR_LOOKS, 1.0 / CFAR_LOOKS, size=200_000)
    training = rng.gamma(CFAR_LOOKS * cells, 1.0 / (CFAR_LOOKS * cells), size=200_000)
    observed = np.mean(pixels / training > cfar_threshold_factor(cells, CFAR_LOOKS, rate))
    assert observed == pytest.approx(rate, rel=0.1)


def test_the_detector_finds_the_ship_and_an_identical_tile_scores_f1_one():
    scene = sea_with_a_ship()
    assert point_targets(pair(scene, scene)) == {"cfar_f1": 1.0, "cfar_peak_change_db": 0.0}


def test_a_codec_that_erases_the_ship_misses_it():
    scene = sea_with_a_ship()
    erased = scene.copy()
    row, col = TARGET
    erased[row - 1:row + 2, col - 1:col + 2] = -15.0
    assert point_targets(pair(scene, erased))["cfar_f1"] == 0.0


def test_a_dimmed_ship_still_detected_reports_its_peak_change():
    scene = sea_with_a_ship(ship_db=2.0)
    dimmer = scene.copy()
    row, col = TARGET
    dimmer[row - 1:row + 2, col - 1:col + 2] = -1.0
    result = point_targets(pair(scene, dimmer))
    assert result["cfar_f1"] == 1.0
    assert result["cfar_peak_change_db"] == pytest.approx(-3.0, abs=1e-3)


def test_no_target_in_either_tile_leaves_f1_undefined():
    sea = np.full((SIZE, SIZE), -15.0)
    assert math.isnan(point_targets(pair(sea, sea))["cfar_f1"])


def test_the_training_ring_leaves_out_the_guard_window():
    assert CFAR_TRAINING > CFAR_GUARD and CFAR_GUARD % 2 == CFAR_TRAINING % 2 == 1


@pytest.mark.parametrize("offset_db", [-1.0, 0.5])
def test_a_uniform_level_change_is_the_distributed_bias(offset_db):
    scene = speckled(np.full((SIZE, SIZE), -10.0))  # no pixel near the range's bounds: nothing clipped
    assert distributed_bias(pair(scene, scene + offset_db))["distributed_bias_db"] == pytest.approx(offset_db,
                                                                                                   abs=1e-3)


def test_an_identical_tile_has_no_distributed_bias():
    scene = flood_scene()
    assert distributed_bias(pair(scene, scene))["distributed_bias_db"] == pytest.approx(0.0, abs=1e-9)
