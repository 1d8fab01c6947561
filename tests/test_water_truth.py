"""The water map scored against ground truth (``water_iou_truth``): known answers on a labelled synthetic flood."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.api import MetricInput
from harness.sar import db_to_linear, linear_to_db, normalize_db
from harness.task_metrics import WATER_THRESHOLD_DB, water_truth

DB_RANGE = {"VV": (-25.0, 5.0), "VH": (-32.0, -2.0)}
SIZE = 96
WATER_COLUMNS = 40
"""The label's water: the left 40 columns."""


def flood_db(pol: str = "VV", seed: int = 0) -> np.ndarray:
    """Water 7 dB below the polarisation's threshold on the left (a few columns further, so the map and the label
    disagree at the shore, as real ones do), land 7 dB above it on the right, with 4.4-look speckle."""
    threshold = WATER_THRESHOLD_DB[pol]
    mean_db = np.full((SIZE, SIZE), threshold + 7.0)
    mean_db[:, :WATER_COLUMNS + 4] = threshold - 7.0
    speckle = np.random.default_rng(seed).gamma(4.4, 1 / 4.4, size=mean_db.shape)
    return np.clip(linear_to_db(db_to_linear(mean_db) * speckle), *DB_RANGE[pol])


def hand_labels() -> np.ndarray:
    labels = np.zeros((SIZE, SIZE), dtype=np.int16)
    labels[:, :WATER_COLUMNS] = 1
    return labels


def scored(original_db: np.ndarray, decoded_db: np.ndarray, labels: np.ndarray | None, pol: str = "VV",
           mask: np.ndarray | None = None) -> dict[str, float]:
    low_high = DB_RANGE[pol]
    mask = np.ones(original_db.shape, dtype=bool) if mask is None else mask
    return water_truth(MetricInput(normalize_db(original_db, low_high).astype(np.float32),
                                   normalize_db(decoded_db, low_high).astype(np.float32), mask, low_high,
                                   labels=labels, pol=pol))


def numpy_iou(db: np.ndarray, labels: np.ndarray, mask: np.ndarray, threshold: float) -> float:
    """IoU of water written out here, apart from the metric: dB below the threshold against label 1, on valid
    pixels labelled 0 or 1."""
    counted = mask & ((labels == 0) | (labels == 1))
    mapped = db < threshold
    truth = labels == 1
    both = np.sum(mapped & truth & counted)
    either = np.sum((mapped | truth) & counted)
    return float(both / either)


def test_a_perfect_decode_scores_the_originals_iou():
    scene = flood_db()
    values = scored(scene, scene, hand_labels())
    assert values["water_iou_truth"] == values["water_iou_truth_original"]
    assert 0.8 < values["water_iou_truth_original"] < 1.0  # the shore columns map as water the label does not


def test_the_scores_equal_an_independent_numpy_iou():
    original = flood_db(seed=1)
    decoded = original + np.random.default_rng(2).normal(0.0, 3.0, original.shape)  # a noisy codec
    mask = np.ones(original.shape, dtype=bool)
    mask[:10] = False
    labels = hand_labels()
    labels[50:60, 30:70] = -1
    values = scored(original, decoded, labels, mask=mask)
    clipped_decoded = np.clip(decoded, *DB_RANGE["VV"])
    assert values["water_iou_truth"] == pytest.approx(numpy_iou(clipped_decoded, labels, mask, -15.0), abs=1e-12)
    assert values["water_iou_truth_original"] == pytest.approx(numpy_iou(original, labels, mask, -15.0), abs=1e-12)
    assert values["water_iou_truth"] < values["water_iou_truth_original"]


def test_the_change_is_the_decoded_score_minus_the_originals():
    original = flood_db(seed=1)
    decoded = original + np.random.default_rng(2).normal(0.0, 3.0, original.shape)
    values = scored(original, decoded, hand_labels())
    assert values["water_iou_truth_change"] == values["water_iou_truth"] - values["water_iou_truth_original"] < 0


def test_a_blank_decode_maps_no_water_and_scores_zero_where_the_label_has_water():
    scene = flood_db()
    land = np.full(scene.shape, -5.0)
    values = scored(scene, land, hand_labels())
    assert values["water_iou_truth"] == 0.0
    assert values["water_iou_truth_original"] > 0.8


def test_pixels_labelled_minus_one_are_ignored():
    scene = flood_db()
    labels = hand_labels()
    labels[:, WATER_COLUMNS:] = -1  # only the water half is labelled
    decoded = scene.copy()
    decoded[:, WATER_COLUMNS:] = -24.0  # the decoded tile floods the unlabelled half
    assert scored(scene, decoded, labels)["water_iou_truth"] == scored(scene, scene, labels)["water_iou_truth"]


def test_no_data_pixels_are_ignored():
    scene = flood_db()
    mask = np.ones(scene.shape, dtype=bool)
    mask[:, WATER_COLUMNS:] = False
    decoded = scene.copy()
    decoded[:, WATER_COLUMNS:] = -24.0
    assert scored(scene, decoded, hand_labels(), mask=mask)["water_iou_truth"] == pytest.approx(
        scored(scene, scene, hand_labels(), mask=mask)["water_iou_truth"])


def test_tiles_without_labels_give_empty_columns():
    scene = flood_db()
    values = scored(scene, scene, None)
    assert set(values) == {"water_iou_truth", "water_iou_truth_original", "water_iou_truth_change"}
    assert all(math.isnan(value) for value in values.values())


def test_a_polarisation_without_a_threshold_gives_empty_columns():
    scene = flood_db()
    values = water_truth(MetricInput(normalize_db(scene, DB_RANGE["VV"]), normalize_db(scene, DB_RANGE["VV"]),
                                     np.ones(scene.shape, dtype=bool), DB_RANGE["VV"], labels=hand_labels(),
                                     pol="XX"))
    assert all(math.isnan(value) for value in values.values())


def test_cross_polarisation_maps_water_at_its_own_lower_threshold():
    between = np.full((SIZE, SIZE), -18.0)  # below VV's -15 dB, above VH's -22 dB
    labels = np.ones((SIZE, SIZE), dtype=np.int16)
    assert scored(between, between, labels, pol="VV")["water_iou_truth"] == 1.0
    assert scored(between, between, labels, pol="VH")["water_iou_truth"] == 0.0


def test_labelled_pixels_without_water_in_label_or_map_have_no_iou():
    land = np.full((SIZE, SIZE), -5.0)
    assert math.isnan(scored(land, land, np.zeros((SIZE, SIZE), dtype=np.int16))["water_iou_truth"])
