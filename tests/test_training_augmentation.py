"""Specification of the training patches' alterations that keep SAR physics (gain offsets in dB, no-data regions),
of the loss that ignores no-data, and of validation per source."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from harness.sar import fill_no_data, normalize_db
from harness_codecs._autoencoder.training.augmentation import Alteration, Augmentation, half_plane
from harness_codecs._autoencoder.model.autoencoder import spec_for
from harness_codecs._autoencoder.training.data import CropPlan, PatchCutter, TrainingSplit, TrainingTile
from harness_codecs._autoencoder.training.log import by_source
from harness_codecs._autoencoder.training.loop import Fitter, FitSettings

VV_RANGE = (-25.0, 5.0)


def speckled_db(shape=(64, 64), level=-12.0, seed=0) -> np.ndarray:
    """dB of fully developed speckle (exponential intensity) around ``level``."""
    intensity = np.random.default_rng(seed).exponential(1.0, shape)
    return (level + 10.0 * np.log10(intensity)).astype(np.float32)


def cut(tile: TrainingTile, alteration: Alteration) -> tuple[np.ndarray, np.ndarray]:
    patch = PatchCutter([tile]).cut((0, 0, 0, 0, 0, tile.shape[0], alteration)).numpy()
    return patch[0], patch[1]


def test_an_unaltered_patch_is_the_tile_normalized_as_a_codec_sees_it():
    db = speckled_db()
    data, mask = cut(TrainingTile(db, VV_RANGE), Alteration())

    assert np.array_equal(data, normalize_db(db, VV_RANGE)) and mask.all()


def test_a_gain_offset_shifts_the_db_values_before_they_are_clipped_to_the_range():
    db = np.full((16, 16), -27.0, np.float32)  # below the range: clipped to 0 as it is
    data, _ = cut(TrainingTile(db, VV_RANGE), Alteration(gain_db=3.0))

    assert np.allclose(data, (-24.0 - VV_RANGE[0]) / 30.0)  # brighter water shows above the floor, as it would


def test_a_no_data_region_is_filled_as_the_datasets_fill_a_tile_and_masked_out():
    db = speckled_db()
    alteration = Alteration(no_data_angle=0.3, no_data_share=0.3)
    data, mask = cut(TrainingTile(db, VV_RANGE), alteration)

    region = half_plane(db.shape, 0.3, 0.3)
    assert np.array_equal(mask == 0, region)
    assert np.allclose(data, fill_no_data(normalize_db(np.where(region, VV_RANGE[0], db), VV_RANGE), ~region))


@pytest.mark.parametrize("angle", [0.0, 1.0, math.pi, 4.5])
def test_a_no_data_region_covers_the_drawn_share_beyond_a_straight_border(angle):
    region = half_plane((128, 128), angle, 0.25)
    rows, cols = np.indices(region.shape)
    reach = cols * math.cos(angle) + rows * math.sin(angle)

    assert abs(region.mean() - 0.25) < 0.01
    assert reach[region].min() >= reach[~region].max()  # every no-data pixel lies beyond every valid one


def test_an_inactive_augmentation_draws_nothing_so_a_seed_keeps_its_patches():
    shapes = [(64, 64), (96, 96)]
    plain = list(CropPlan(shapes, 32, 4, torch.Generator().manual_seed(3), 0, 5))
    explicit = list(CropPlan(shapes, 32, 4, torch.Generator().manual_seed(3), 0, 5, augmentation=Augmentation()))

    assert plain == explicit and all(crop[6] == Alteration() for batch in plain for crop in batch)


def test_alterations_are_drawn_with_the_plan_so_the_same_seed_gives_the_same_patches():
    augmentation = Augmentation(gain_db=3.0, no_data_fraction=0.5)
    first, second = (list(CropPlan([(64, 64)], 32, 8, torch.Generator().manual_seed(1), 0, 20,
                                   augmentation=augmentation)) for _ in range(2))
    alterations = [crop[6] for batch in first for crop in batch]

    assert first == second
    assert all(abs(alteration.gain_db) <= 3.0 for alteration in alterations)
    assert 0.3 < np.mean([alteration.no_data_angle is not None for alteration in alterations]) < 0.7


def test_validation_by_source_averages_each_sources_psnr_and_bpp_over_the_levels():
    sources = ("a", "b", "a")
    levels = [(torch.tensor([0.01, 0.0001, 0.01]), torch.tensor([1.0, 3.0, 1.0])),
              (torch.tensor([0.001, 0.0001, 0.001]), torch.tensor([2.0, 5.0, 2.0]))]

    result = by_source(sources, levels)

    assert result["a"] == pytest.approx((1.5, 25.0)) and result["b"] == pytest.approx((4.0, 40.0))


def fitter(tmp_path, msssim_weight: float) -> Fitter:
    settings = FitSettings(spec=spec_for("tiny"), bits=4, patch_size=64, batch_size=2, steps=1, lr=1e-3,
                           msssim_weight=msssim_weight, device=torch.device("cpu"), amp="none", compile=False, seed=0,
                           output=tmp_path / "m.pt", checkpoint_every=1, normalization={}, training_record={},
                           git_commit="")
    return Fitter(settings, TrainingSplit([], torch.zeros(0), frozenset(), frozenset()))


def test_the_squared_error_ignores_what_the_model_makes_of_no_data_pixels(tmp_path):
    generator = torch.Generator().manual_seed(0)
    original = torch.rand(2, 1, 64, 64, generator=generator)
    mask = torch.ones_like(original)
    mask[..., :, 40:] = 0.0
    reconstruction = (original + 0.05 * torch.randn(original.shape, generator=generator)).clamp(0, 1)
    elsewhere = torch.where(mask > 0, reconstruction, torch.rand(original.shape, generator=generator))

    loss = fitter(tmp_path, 0.0)

    assert torch.allclose(loss.distortion(original, reconstruction, mask), loss.distortion(original, elsewhere, mask))


def test_the_masked_squared_error_is_the_mean_over_the_valid_pixels(tmp_path):
    original = torch.zeros(1, 1, 64, 64)
    reconstruction = torch.full_like(original, 0.1)
    mask = torch.ones_like(original)
    mask[..., :32, :] = 0.0

    assert float(fitter(tmp_path, 0.0).distortion(original, reconstruction, mask)) == pytest.approx(0.01)
