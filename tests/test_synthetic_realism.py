"""The synthetic default scenes must look like real Sentinel-1 IW GRDH data.

Codecs tuned on unrealistic images rank differently on real SAR, so every
statistic STATS.md measured on real chips must land, for the synthetic scenes,
inside the range STATS.md reports across real scenes. The statistics come from
``tests/sar_statistics.py``; the last tests prove it is the estimator that
produced the STATS.md table, by reproducing the table on the real chips.
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import rasterio

from harness_datasets._synthetic_scene import MIN_SIZE, SyntheticScene, generate_scene
from tests.sar_statistics import SceneStatistics, equivalent_number_of_looks, measure_scene_statistics

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STATS_MD = SHARED_DATA / "STATS.md"
REAL_CHIPS = SHARED_DATA / "sen1floods11"

SCENES = [(seed, 512) for seed in range(6)] + [(seed, 1024) for seed in range(2)]
"""Six small scenes for variety, and two at the synthetic dataset's default size."""

# Ranges "seen across real scenes", from STATS.md.
REAL_VV_MEAN_DB = (-15.0, -8.0)
REAL_VV_STD_DB = (2.0, 6.0)
REAL_VV_MINUS_VH_DB = (5.0, 9.0)
REAL_VV_VH_CORRELATION = (0.1, 0.8)
REAL_WATER_FRACTION = (0.0, 0.5)
REAL_LAG1_CORRELATION = (0.7, 0.95)
ESTIMATED_ENL = (4.0, 8.0)
"""Native IW GRDH has about 4.4 looks, but picking the 5% smoothest blocks favours blocks
whose sample CV came out low, so the estimator reads high: 6.2 on the real GRDH crop."""
GRD_INVALID_FRACTION = (0.05, 0.20)
"""A scene-sized window of a GRD product loses a corner or an edge strip to the swath border."""


@cache
def synthetic_scene(seed: int, size: int) -> SyntheticScene:
    return generate_scene(seed, size)


@cache
def synthetic_statistics(seed: int, size: int) -> SceneStatistics:
    scene = synthetic_scene(seed, size)
    return measure_scene_statistics(scene.vv_db, scene.vh_db, scene.valid)


def scene_id(scene: tuple[int, int]) -> str:
    seed, size = scene
    return f"seed{seed}-{size}px"


def assert_within(value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    assert low <= value <= high, f"{value:.3f} is outside the real range [{low}, {high}]"


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_vv_mean_lies_in_the_range_of_real_scenes(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).vv_mean_db, REAL_VV_MEAN_DB)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_vv_spread_lies_in_the_range_of_real_scenes(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).vv_std_db, REAL_VV_STD_DB)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_vh_lies_5_to_9_db_below_vv(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).vv_minus_vh_db, REAL_VV_MINUS_VH_DB)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_vv_and_vh_correlate_like_real_scenes(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).vv_vh_correlation, REAL_VV_VH_CORRELATION)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_water_fraction_lies_in_the_range_of_real_scenes(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).water_fraction, REAL_WATER_FRACTION)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_speckle_has_the_equivalent_looks_of_iw_grdh(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).enl, ESTIMATED_ENL)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_neighbouring_pixels_correlate_like_real_scenes(scene: tuple[int, int]) -> None:
    assert_within(synthetic_statistics(*scene).lag1_correlation, REAL_LAG1_CORRELATION)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_urban_point_scatterers_rise_above_0_db(scene: tuple[int, int]) -> None:
    assert np.nanmax(synthetic_scene(*scene).vv_db) > 0.0


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_no_data_border_covers_a_grd_like_share_of_the_scene(scene: tuple[int, int]) -> None:
    assert_within(1.0 - synthetic_scene(*scene).valid.mean(), GRD_INVALID_FRACTION)


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_a_scene_corner_falls_outside_the_slanted_footprint(scene: tuple[int, int]) -> None:
    valid = synthetic_scene(*scene).valid
    assert not valid[[0, 0, -1, -1], [0, -1, 0, -1]].all()


@pytest.mark.parametrize("scene", SCENES, ids=scene_id)
def test_pixels_are_nan_exactly_outside_the_footprint(scene: tuple[int, int]) -> None:
    generated = synthetic_scene(*scene)
    assert np.array_equal(np.isnan(generated.vv_db), ~generated.valid)
    assert np.array_equal(np.isnan(generated.vh_db), ~generated.valid)


def test_scene_arrays_have_the_documented_types_and_shape() -> None:
    generated = synthetic_scene(*SCENES[0])
    size = SCENES[0][1]
    assert (generated.vv_db.dtype, generated.vh_db.dtype, generated.valid.dtype) == (np.float32, np.float32, bool)
    assert generated.vv_db.shape == generated.vh_db.shape == generated.valid.shape == (size, size)


def test_same_seed_gives_an_identical_scene() -> None:
    first, second = generate_scene(11, 256), generate_scene(11, 256)
    assert np.array_equal(first.vv_db, second.vv_db, equal_nan=True)
    assert np.array_equal(first.vh_db, second.vh_db, equal_nan=True)
    assert np.array_equal(first.valid, second.valid)


def test_different_seeds_give_different_scenes() -> None:
    first, second = generate_scene(11, 256), generate_scene(12, 256)
    assert not np.array_equal(first.vv_db, second.vv_db, equal_nan=True)
    assert not np.array_equal(first.valid, second.valid)


def test_water_share_varies_between_seeds() -> None:
    water = [synthetic_statistics(*scene).water_fraction for scene in SCENES]
    assert min(water) < 0.15 and max(water) > 0.3


def test_a_scene_smaller_than_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_scene(0, MIN_SIZE - 1)


def stats_md_text() -> str:
    if not STATS_MD.exists():
        pytest.skip(f"real Sentinel-1 statistics not available at {STATS_MD}")
    return STATS_MD.read_text(encoding="utf-8").replace("\u2212", "-")


def printed_numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?", text)


def printed_precision(number: str) -> float:
    """One unit in the last printed digit: the table is rounded, so that is as close as it can be matched."""
    decimals = len(number.partition(".")[2])
    return 10.0 ** -decimals


def stats_md_table() -> dict[str, list[str]]:
    """Chip name -> the numbers of its STATS.md row, in SceneStatistics field order."""
    rows = {}
    for line in stats_md_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and (REAL_CHIPS / f"{cells[0]}_S1Hand.tif").exists():
            rows[cells[0]] = printed_numbers(" ".join(cells[1:]))
    if not rows:
        pytest.skip(f"no STATS.md row matches a chip in {REAL_CHIPS}")
    return rows


@cache
def real_chip_statistics(chip: str) -> SceneStatistics:
    with rasterio.open(REAL_CHIPS / f"{chip}_S1Hand.tif") as raster:
        vv_db, vh_db = raster.read(1), raster.read(2)
    return measure_scene_statistics(vv_db, vh_db, np.isfinite(vv_db) & np.isfinite(vh_db))


@pytest.mark.parametrize("statistic", [field.name for field in dataclasses.fields(SceneStatistics)])
def test_estimator_reproduces_the_stats_md_table_on_real_chips(statistic: str) -> None:
    index = [field.name for field in dataclasses.fields(SceneStatistics)].index(statistic)
    for chip, numbers in stats_md_table().items():
        assert len(numbers) == len(dataclasses.fields(SceneStatistics)), f"unexpected STATS.md row for {chip}"
        measured = getattr(real_chip_statistics(chip), statistic)
        assert measured == pytest.approx(float(numbers[index]), abs=printed_precision(numbers[index])), chip


def test_enl_estimator_reproduces_stats_md_on_the_real_grd_crop() -> None:
    printed = re.search(r"GRD DN crop.*\bENL (\d+\.\d+)", stats_md_text(), flags=re.DOTALL)
    crops = sorted(SHARED_DATA.glob("s1_grd_safe/*.SAFE/measurement/*.tiff"))
    if printed is None or not crops:
        pytest.skip("the GRD crop or its STATS.md line is not available")
    with rasterio.open(crops[0]) as raster:
        amplitude = raster.read(1).astype(np.float64)
    has_signal = amplitude > 0
    intensity_db = np.where(has_signal, 20.0 * np.log10(np.where(has_signal, amplitude, 1.0)), np.nan)
    enl = equivalent_number_of_looks(intensity_db, has_signal)
    assert enl == pytest.approx(float(printed.group(1)), abs=printed_precision(printed.group(1)))
