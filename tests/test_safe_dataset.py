"""The safe dataset: calibrated tiles from SAFE folders and zips, masks, clear errors, the example configs."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from scipy.interpolate import RegularGridInterpolator

from harness import DatasetSettings, UserError
from harness.cli import main
from harness.sar import denormalize_db
from harness_datasets.safe import SafeDataset
from tests.conftest import SHIPPED_DATA, dataset_settings, speckled_db, write_geotiff
from tests.safe_fixtures import (
    BORDER_COLUMNS,
    PRODUCT_NAME,
    NoiseGrid,
    build_safe_product,
    product_name,
    zip_product,
)

ROOT = Path(__file__).resolve().parents[1]
WIDE_RANGE = (-60.0, 20.0)
"""A normalization range no test value reaches, so tile values convert back to dB exactly."""
WIDE = {"VV": WIDE_RANGE, "VH": WIDE_RANGE}
REAL_SAFE = next(iter(sorted((SHIPPED_DATA / "train" / "s1_grd_safe").glob("*.SAFE"))))


def settings(tmp_path: Path, **overrides) -> DatasetSettings:
    return dataset_settings(tmp_path, **{"max_tiles": 4, "normalization": WIDE, **overrides})


def tiles_of(tmp_path: Path, **options):
    overrides = {key: options.pop(key) for key in list(options) if key in DatasetSettings.__dataclass_fields__}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reader itself must not warn (e.g. NotGeoreferencedWarning) ...
        for deprecation in (DeprecationWarning, PendingDeprecationWarning):  # ... but a library's deprecation
            warnings.simplefilter("ignore", deprecation)  # (rasterio under numpy 2.5) is not the reader's doing
        return list(SafeDataset(settings(tmp_path, **overrides), **options).tiles())


def tile_db(tile) -> np.ndarray:
    """The tile's dB values, NaN where masked."""
    return np.where(tile.mask, denormalize_db(tile.data, tile.db_range), np.nan)


def lut_on_every_pixel(lines, pixels, values, shape: tuple[int, int]) -> np.ndarray:
    """``A`` on the full image grid by scipy's bilinear interpolation: the independent reference."""
    interpolator = RegularGridInterpolator((lines, pixels), values, method="linear")
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return interpolator(np.stack([rows, cols], axis=-1).astype(np.float64))


def expected_db(dn: np.ndarray, lut: np.ndarray, tile) -> np.ndarray:
    window = (slice(tile.row, tile.row + tile.shape[0]), slice(tile.col, tile.col + tile.shape[1]))
    dn_window = dn[window].astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.where(dn_window > 0, 10 * np.log10(dn_window ** 2 / lut[window] ** 2), np.nan)


@pytest.fixture
def product(tmp_path):
    return build_safe_product(tmp_path)


@pytest.mark.parametrize("calibration", ["sigma0", "beta0", "gamma0"])
def test_calibrated_intensity_is_dn_squared_over_the_lut_interpolated_bilinearly(tmp_path, product, calibration):
    lut = lut_on_every_pixel(product.grid.lines, product.grid.pixels, getattr(product.grid, calibration),
                             product.dn["VV"].shape)
    for tile in tiles_of(tmp_path, paths=product.path.name, calibration=calibration, max_tiles=12):
        np.testing.assert_allclose(tile_db(tile), expected_db(product.dn[tile.pol], lut, tile), atol=1e-4)


def test_dn_calibration_gives_dn_squared_in_db(tmp_path, product):
    ones = np.ones(product.dn["VV"].shape)
    tile = tiles_of(tmp_path, paths=product.path.name, calibration="dn", normalization={"VV": (0.0, 90.0), "VH": (0.0, 90.0)})[0]
    np.testing.assert_allclose(tile_db(tile), expected_db(product.dn[tile.pol], ones, tile), atol=1e-4)


def test_zero_dn_pixels_are_masked_and_filled_with_the_level_beside_them(tmp_path, product):
    tiles = tiles_of(tmp_path, paths=product.path.name, max_tiles=12, min_valid_fraction=0.5)
    edge = next(tile for tile in tiles if tile.col == 0)
    assert not edge.mask[:, :BORDER_COLUMNS].any() and edge.mask[:, BORDER_COLUMNS:].all()
    border = edge.data[:, BORDER_COLUMNS - 1].mean()
    assert abs(border - edge.data[:, BORDER_COLUMNS:BORDER_COLUMNS + 4].mean()) < 0.05 and border > 0


def test_a_zip_gives_the_same_tiles_as_the_folder(tmp_path, product):
    zip_product(product.path, tmp_path / f"{PRODUCT_NAME}.zip")
    from_folder = tiles_of(tmp_path, paths=product.path.name)
    from_zip = tiles_of(tmp_path, paths=f"{PRODUCT_NAME}.zip")
    assert [tile.tile_id for tile in from_zip] == [tile.tile_id for tile in from_folder]
    for zipped, unpacked in zip(from_zip, from_folder):
        np.testing.assert_array_equal(zipped.data, unpacked.data)
        np.testing.assert_array_equal(zipped.mask, unpacked.mask)


def test_a_zip_is_read_in_place_without_unpacking(tmp_path, product):
    archive = zip_product(product.path, tmp_path / "product.zip")
    (tmp_path / "zipped").mkdir()
    archive.rename(tmp_path / "zipped" / "product.zip")
    tiles_of(tmp_path, paths="zipped")
    assert [path.name for path in (tmp_path / "zipped").iterdir()] == ["product.zip"]


def test_tile_ids_name_the_product_polarisation_and_window(tmp_path, product):
    tile = tiles_of(tmp_path, paths=product.path.name)[0]
    assert tile.tile_id == f"{PRODUCT_NAME}:VV:r{tile.row}:c{tile.col}:32"


def test_selection_is_deterministic_for_a_seed_and_changes_with_it(tmp_path, product):
    ids = lambda seed: [tile.tile_id for tile in tiles_of(tmp_path, paths=product.path.name, seed=seed)]
    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


def test_a_folder_and_a_glob_find_every_product(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        build_safe_product(tmp_path / name)
        zip_product(tmp_path / name / f"{PRODUCT_NAME}.SAFE", tmp_path / f"{name}.zip")
    assert len(SafeDataset(settings(tmp_path), paths="*.zip").products) == 2
    assert len(SafeDataset(settings(tmp_path), paths=["a", "b"]).products) == 2


def test_a_cropped_measurement_warns_and_reads_the_lut_from_line_0_pixel_0(tmp_path):
    cropped = build_safe_product(tmp_path, shape=(64, 64), annotated_shape=(200, 300))
    lut = lut_on_every_pixel(cropped.grid.lines, cropped.grid.pixels, cropped.grid.sigma0, (64, 64))
    with pytest.warns(UserWarning, match=r"measurement is 64x64 but the annotation says 200x300"):
        tiles = list(SafeDataset(settings(tmp_path), paths=cropped.path.name).tiles())
    for tile in tiles:
        np.testing.assert_allclose(tile_db(tile), expected_db(cropped.dn[tile.pol], lut, tile), atol=1e-4)


def test_a_missing_polarisation_is_a_user_error_naming_the_product_and_polarisation(tmp_path):
    build_safe_product(tmp_path, polarisations=("VV",))
    with pytest.raises(UserError, match=rf"{PRODUCT_NAME}\.SAFE: no measurement for polarisation VH .*has: VV"):
        tiles_of(tmp_path, paths=f"{PRODUCT_NAME}.SAFE")


def test_a_corrupt_zip_is_a_user_error_naming_it(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(UserError, match=r"broken\.zip: not a readable zip"):
        tiles_of(tmp_path, paths="broken.zip")


def test_a_calibration_xml_that_does_not_parse_is_a_user_error_naming_it(tmp_path, product):
    calibration = next((product.path / "annotation" / "calibration").glob("calibration-*-vh-*.xml"))
    calibration.write_text("<calibration><calibrationVectorList>")
    with pytest.raises(UserError, match=rf"{calibration.name}: calibration XML does not parse"):
        tiles_of(tmp_path, paths=product.path.name)


def test_an_unknown_calibration_is_a_user_error(tmp_path, product):
    with pytest.raises(UserError, match=r"dataset\.calibration: 'sigma_0' is not one of sigma0, beta0, gamma0, dn"):
        tiles_of(tmp_path, paths=product.path.name, calibration="sigma_0")


def noise_on_every_pixel(noise: NoiseGrid, shape: tuple[int, int]) -> np.ndarray:
    """``N`` on the full image: scipy's bilinear range noise times each block's azimuth gain, written as the
    linear function of the line it was sampled from."""
    power = lut_on_every_pixel(noise.lines, noise.pixels, noise.range_values, shape)
    lines = np.arange(shape[0], dtype=np.float64)[:, None]
    for first, last, offset, slope in noise.blocks:
        power[:, first:last + 1] *= offset + slope * lines
    return power


def expected_denoised_db(dn: np.ndarray, lut: np.ndarray, noise: np.ndarray, tile) -> np.ndarray:
    """``(DN² - N) / A²`` in dB, clipped to the normalization range as tiles are (a residual just above the
    noise floor can fall below -60 dB); zero DN and power at or below the noise floor are NaN."""
    window = (slice(tile.row, tile.row + tile.shape[0]), slice(tile.col, tile.col + tile.shape[1]))
    power = dn[window].astype(np.float64) ** 2 - noise[window]
    with np.errstate(divide="ignore", invalid="ignore"):
        db = np.where((dn[window] > 0) & (power > 0), 10 * np.log10(power / lut[window] ** 2), np.nan)
    return np.clip(db, *tile.db_range)


@pytest.mark.parametrize("layout", ["azimuth", "legacy"])
def test_denoised_intensity_is_dn_squared_minus_range_times_azimuth_noise_over_the_lut(tmp_path, layout):
    product = build_safe_product(tmp_path, noise_layout=layout)
    shape = product.dn["VV"].shape
    lut = lut_on_every_pixel(product.grid.lines, product.grid.pixels, product.grid.sigma0, shape)
    noise = noise_on_every_pixel(product.noise, shape)
    tiles = tiles_of(tmp_path, paths=product.path.name, denoise=True, max_tiles=12, min_valid_fraction=0.1)
    assert len(tiles) == 24
    for tile in tiles:
        np.testing.assert_allclose(tile_db(tile), expected_denoised_db(product.dn[tile.pol], lut, noise, tile), atol=1e-4)


def test_denoising_lowers_sigma0_and_masks_pixels_below_the_noise_floor(tmp_path):
    product = build_safe_product(tmp_path, noise_layout="azimuth")
    options = dict(paths=product.path.name, polarisations=("VH",), max_tiles=12, min_valid_fraction=0.1)
    noisy = {tile.tile_id: tile for tile in tiles_of(tmp_path, **options)}
    denoised = {tile.tile_id: tile for tile in tiles_of(tmp_path, denoise=True, **options)}
    assert denoised.keys() == noisy.keys()
    for tile_id, tile in denoised.items():
        assert (tile_db(tile)[tile.mask] < tile_db(noisy[tile_id])[tile.mask]).all()
    assert sum(tile.mask.sum() for tile in denoised.values()) < sum(tile.mask.sum() for tile in noisy.values())


def test_denoise_without_a_noise_xml_is_a_user_error_naming_the_product(tmp_path, product):
    with pytest.raises(UserError, match=rf"{PRODUCT_NAME}\.SAFE: no noise XML for polarisation VV"):
        tiles_of(tmp_path, paths=product.path.name, denoise=True)


def test_a_noise_xml_that_does_not_parse_is_a_user_error_naming_it(tmp_path):
    product = build_safe_product(tmp_path, noise_layout="azimuth")
    noise = next((product.path / "annotation" / "calibration").glob("noise-*-vv-*.xml"))
    noise.write_text("<noise><noiseRangeVectorList>")
    with pytest.raises(UserError, match=rf"{noise.name}: noise XML does not parse"):
        tiles_of(tmp_path, paths=product.path.name, denoise=True)


def test_denoise_must_be_true_or_false(tmp_path, product):
    with pytest.raises(UserError, match=r"dataset\.denoise: expected true or false, got 'yes'"):
        tiles_of(tmp_path, paths=product.path.name, denoise="yes")


def test_reads_are_windowed_never_the_whole_measurement(tmp_path, product, read_windows):
    tiles_of(tmp_path, paths=product.path.name)
    assert read_windows and all(window is not None and window.width == 32 and window.height == 32
                                for window in read_windows)


def real_lut(calibration_xml: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lines, pixels, sigmaNought) of a real calibration XML, parsed here, apart from the reader."""
    vectors = ElementTree.parse(calibration_xml).getroot().iter("calibrationVector")
    rows = [(int(v.findtext("line")), v.findtext("pixel").split(), v.findtext("sigmaNought").split()) for v in vectors]
    assert all(pixels == rows[0][1] for _, pixels, _ in rows), "the reference assumes one pixel grid for all vectors"
    return (np.array([line for line, _, _ in rows], float), np.array(rows[0][1], float),
            np.array([values for _, _, values in rows], float))


@pytest.fixture
def real_vh_tiles(tmp_path):
    dataset = SafeDataset(settings(tmp_path, polarisations=("VH",), tile_size=200, max_tiles=25), paths=str(REAL_SAFE))
    with pytest.warns(UserWarning, match=r"measurement is 1000x1000 but the annotation says 16683x26316"):
        return list(dataset.tiles())


def test_the_real_product_gives_sigma0_tiles_in_the_physical_vh_range(real_vh_tiles):
    db = np.concatenate([tile_db(tile)[tile.mask] for tile in real_vh_tiles])
    assert len(real_vh_tiles) == 25
    assert -30.0 < db.mean() < -10.0


def test_the_real_product_matches_an_independent_lut_computation(real_vh_tiles):
    lut = lut_on_every_pixel(*real_lut(next(REAL_SAFE.glob("annotation/calibration/calibration-*-vh-*.xml"))), (1000, 1000))
    with rasterio.open(next(REAL_SAFE.glob("measurement/*-vh-*.tiff"))) as raster:
        dn = raster.read(1)
    for tile in real_vh_tiles[::6]:
        np.testing.assert_allclose(tile_db(tile), expected_db(dn, lut, tile), atol=1e-4)


def real_noise(noise_xml: Path, shape: tuple[int, int]) -> np.ndarray:
    """``N`` on the crop from a real noise XML, parsed here: scipy's bilinear range noise times the
    azimuth gain of the block that holds the crop (the crop must lie inside one block)."""
    root = ElementTree.parse(noise_xml).getroot()
    vectors = [(int(v.findtext("line")), v.findtext("pixel").split(), v.findtext("noiseRangeLut").split())
               for v in root.iter("noiseRangeVector")]
    assert all(pixels == vectors[0][1] for _, pixels, _ in vectors), "the reference assumes one pixel grid"
    power = lut_on_every_pixel(np.array([line for line, _, _ in vectors], float), np.array(vectors[0][1], float),
                               np.array([values for _, _, values in vectors], float), shape)
    block = next(b for b in root.iter("noiseAzimuthVector")
                 if int(b.findtext("firstRangeSample")) == 0 and int(b.findtext("lastRangeSample")) >= shape[1] - 1)
    lines, gains = (np.array(block.findtext(name).split(), float) for name in ("line", "noiseAzimuthLut"))
    return power * np.interp(np.arange(shape[0]), lines, gains)[:, None]


def test_the_real_product_denoised_matches_an_independent_noise_computation_and_lowers_vh(tmp_path):
    options = dict(polarisations=("VH",), tile_size=200, max_tiles=25, min_valid_fraction=0.01)
    with pytest.warns(UserWarning, match=r"measurement is 1000x1000"):
        noisy = list(SafeDataset(settings(tmp_path, **options), paths=str(REAL_SAFE)).tiles())
    with pytest.warns(UserWarning, match=r"measurement is 1000x1000"):
        denoised = list(SafeDataset(settings(tmp_path, **options), paths=str(REAL_SAFE), denoise=True).tiles())
    assert [tile.tile_id for tile in denoised] == [tile.tile_id for tile in noisy]
    lut = lut_on_every_pixel(*real_lut(next(REAL_SAFE.glob("annotation/calibration/calibration-*-vh-*.xml"))), (1000, 1000))
    noise = real_noise(next(REAL_SAFE.glob("annotation/calibration/noise-*-vh-*.xml")), (1000, 1000))
    with rasterio.open(next(REAL_SAFE.glob("measurement/*-vh-*.tiff"))) as raster:
        dn = raster.read(1)
    for tile in denoised[::6]:
        np.testing.assert_allclose(tile_db(tile), expected_denoised_db(dn, lut, noise, tile), atol=1e-4)
    both = [(tile_db(clean)[clean.mask], tile_db(raw)[clean.mask]) for clean, raw in zip(denoised, noisy)]
    assert all((clean <= raw).all() for clean, raw in both)
    linear_mean = lambda db: np.mean(10 ** (np.concatenate(db) / 10))
    assert linear_mean([clean for clean, _ in both]) < linear_mean([raw for _, raw in both])


def run_example(tmp_path: Path, example: str, paths: list[str]) -> pd.DataFrame:
    """Run an example config end to end with its paths pointed at fixtures and a small tile count."""
    config = yaml.safe_load((ROOT / "examples" / example).read_text())
    config["dataset"].update(paths=paths, tile_size=32, max_tiles=2)
    config["timing"] = {"warmup": 0, "repeats": 1, "isolate": False}  # tests.conftest.IN_PROCESS
    path = tmp_path / example
    path.write_text(yaml.safe_dump(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["run", str(path), "--output", str(tmp_path / "report"), "--no-progress"]) == 0
    return pd.read_csv(tmp_path / "report" / "results.csv", keep_default_na=False)


def test_the_safe_example_runs_end_to_end_on_a_folder_and_a_zip(tmp_path):
    (tmp_path / "unpacked").mkdir()
    product = build_safe_product(tmp_path / "unpacked")
    zip_product(product.path, tmp_path / "zipped.zip")
    results = run_example(tmp_path, "safe.yaml", ["unpacked", "zipped.zip"])
    assert (results["error"] == "").all()
    assert set(results["pol"]) == {"VV", "VH"}


def test_the_db_geotiff_example_runs_end_to_end(tmp_path):
    rng = np.random.default_rng(5)
    vv, vh = speckled_db(rng, (96, 96), -11.0), speckled_db(rng, (96, 96), -18.0)
    vv[:8], vh[:8] = np.nan, np.nan
    write_geotiff(tmp_path / "Chip_S1Hand.tif", [vv, vh], nodata=float("nan"))
    results = run_example(tmp_path, "geotiff_db.yaml", ["Chip_S1Hand.tif"])
    assert (results["error"] == "").all() and len(results) > 0


def test_an_ew_product_in_hh_and_hv_is_calibrated_like_any_other(tmp_path):
    product = build_safe_product(tmp_path, polarisations=("HH", "HV"), mode="ew")
    lut = lut_on_every_pixel(product.grid.lines, product.grid.pixels, product.grid.sigma0, product.dn["HH"].shape)
    tiles = tiles_of(tmp_path, paths=f"{product_name('ew')}.SAFE", polarisations=("HH", "HV"),
                     normalization={"HH": WIDE_RANGE, "HV": WIDE_RANGE})
    assert {tile.pol for tile in tiles} == {"HH", "HV"}
    assert tiles[0].tile_id.startswith(f"{product_name('ew')}:HH:")
    for tile in tiles:
        np.testing.assert_allclose(tile_db(tile), expected_db(product.dn[tile.pol], lut, tile), atol=1e-4)
