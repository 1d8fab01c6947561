"""The geotiff dataset: windowed tiles, masks, units, deterministic selection, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from harness import DatasetSettings, UserError
from harness.sar import normalize_db
from harness_datasets.geotiff import GeoTiffDataset
from tests.conftest import NORMALIZATION, dataset_settings, speckled_db, write_geotiff

def tiles_of(tmp_path: Path, **options):
    overrides = {key: options.pop(key) for key in list(options) if key in DatasetSettings.__dataclass_fields__}
    return list(GeoTiffDataset(dataset_settings(tmp_path, **overrides), **options).tiles())


def test_each_window_gives_one_normalized_tile_per_polarisation(tmp_path, dual_pol_geotiff):
    tiles = tiles_of(tmp_path, paths=["scene.tif"])
    assert len(tiles) == 6
    assert [tile.pol for tile in tiles] == ["VV", "VH"] * 3
    for tile in tiles:
        assert tile.data.dtype == np.float32 and tile.shape == (32, 32)
        assert 0.0 <= tile.data.min() and tile.data.max() <= 1.0
        assert tile.db_range == NORMALIZATION[tile.pol]


def test_tile_values_are_the_file_values_normalized_with_the_fixed_range(tmp_path, dual_pol_geotiff):
    tile = tiles_of(tmp_path, paths=["scene.tif"])[0]
    with rasterio.open(dual_pol_geotiff) as raster:
        db = raster.read(1, window=((tile.row, tile.row + 32), (tile.col, tile.col + 32)))
    expected = normalize_db(db, NORMALIZATION["VV"])
    np.testing.assert_allclose(tile.data[tile.mask], expected[tile.mask], atol=1e-6)


def test_tile_ids_name_scene_polarisation_and_window(tmp_path, dual_pol_geotiff):
    tile = tiles_of(tmp_path, paths=["scene.tif"])[0]
    assert tile.tile_id == f"scene:VV:r{tile.row}:c{tile.col}:32"


def test_no_data_pixels_are_masked_and_filled_with_the_level_beside_them(tmp_path, dual_pol_geotiff):
    tiles = tiles_of(tmp_path, paths=["scene.tif"], max_tiles=16, min_valid_fraction=0.3)
    edge = next(tile for tile in tiles if tile.col == 0)
    assert not edge.mask[:, :20].any() and edge.mask[:, 20:].all()
    assert abs(edge.data[:, 19].mean() - edge.data[:, 20:24].mean()) < 0.05


def test_max_tiles_none_takes_every_valid_enough_window(tmp_path, dual_pol_geotiff):
    every = tiles_of(tmp_path, paths=["scene.tif"], max_tiles=None, min_valid_fraction=0.3)
    assert [tile.tile_id for tile in every] == [tile.tile_id for tile in tiles_of(
        tmp_path, paths=["scene.tif"], max_tiles=10_000, min_valid_fraction=0.3)]
    assert len(every) > 2 * 3


def test_windows_that_are_mostly_no_data_are_skipped(tmp_path, dual_pol_geotiff):
    # Columns 0-19 are no-data: the first window column is 62% invalid.
    strict = tiles_of(tmp_path, paths=["scene.tif"], max_tiles=16, min_valid_fraction=0.5)
    lenient = tiles_of(tmp_path, paths=["scene.tif"], max_tiles=16, min_valid_fraction=0.3)
    assert all(tile.col != 0 for tile in strict)
    assert any(tile.col == 0 for tile in lenient)


def test_selection_is_deterministic_for_a_seed_and_changes_with_it(tmp_path, dual_pol_geotiff):
    ids = lambda seed: [tile.tile_id for tile in tiles_of(tmp_path, paths=["scene.tif"], seed=seed)]
    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


def test_linear_and_dn_files_give_the_same_tiles_as_db(tmp_path):
    rng = np.random.default_rng(3)
    db = speckled_db(rng, (64, 64), -11.0)
    linear = (10 ** (db / 10)).astype(np.float32)
    amplitude = np.sqrt(linear * 1e6).astype(np.float32)  # DN with calibration constant 1000
    write_geotiff(tmp_path / "db.tif", [db])
    write_geotiff(tmp_path / "lin.tif", [linear])
    write_geotiff(tmp_path / "dn.tif", [amplitude])
    single = dict(polarisations=("VV",), max_tiles=4)
    from_db = tiles_of(tmp_path, paths="db.tif", units="db", **single)
    from_linear = tiles_of(tmp_path, paths="lin.tif", units="linear", **single)
    np.testing.assert_allclose(from_db[0].data, from_linear[0].data, atol=1e-5)
    dn_range = {"VV": (-25.0 + 60.0, 5.0 + 60.0), "VH": NORMALIZATION["VH"]}  # DN^2 = sigma0 * 1e6: +60 dB
    from_dn = tiles_of(tmp_path, paths="dn.tif", units="dn", normalization=dn_range, **single)
    np.testing.assert_allclose(from_db[0].data, from_dn[0].data, atol=1e-4)


def test_zero_dn_and_declared_nodata_values_are_masked(tmp_path):
    amplitude = np.full((32, 32), 100, dtype=np.uint16)
    amplitude[:, :4] = 0
    amplitude[:, 4:8] = 65535
    write_geotiff(tmp_path / "grd.tif", [amplitude], nodata=65535)
    tile = tiles_of(tmp_path, paths="grd.tif", units="dn", polarisations=("VV",),
                    normalization={"VV": (30.0, 50.0)})[0]
    assert not tile.mask[:, :8].any() and tile.mask[:, 8:].all()


def test_bands_can_be_chosen_by_description(tmp_path, dual_pol_geotiff):
    by_name = tiles_of(tmp_path, paths=["scene.tif"], bands={"VV": "VH", "VH": "VV"})
    by_index = tiles_of(tmp_path, paths=["scene.tif"], bands={"VV": 2, "VH": 1})
    np.testing.assert_array_equal(by_name[0].data, by_index[0].data)


def test_a_folder_is_expanded_to_its_tiff_files(tmp_path, dual_pol_geotiff):
    tiles = tiles_of(tmp_path, paths=".", max_tiles=16)
    assert {tile.scene for tile in tiles} == {"scene"}


def test_reads_are_windowed_never_the_whole_raster(tmp_path, dual_pol_geotiff, read_windows):
    tiles_of(tmp_path, paths=["scene.tif"])
    assert read_windows and all(window is not None and window.width == 32 and window.height == 32
                                for window in read_windows)


def test_a_missing_file_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match=r"dataset\.paths: .*absent\.tif not found"):
        tiles_of(tmp_path, paths=["absent.tif"])


def test_a_file_that_is_not_a_raster_is_a_user_error_naming_it(tmp_path):
    (tmp_path / "notes.tif").write_text("this is not a GeoTIFF")
    with pytest.raises(UserError, match=r"notes\.tif: not a readable raster"):
        tiles_of(tmp_path, paths=["notes.tif"])


def test_an_all_no_data_raster_is_a_user_error(tmp_path):
    write_geotiff(tmp_path / "empty.tif", [np.full((64, 64), np.nan, dtype=np.float32)] * 2)
    with pytest.raises(UserError, match=r"no 32px window in .*empty\.tif has at least 50% valid pixels"):
        tiles_of(tmp_path, paths=["empty.tif"])


def test_an_all_zero_uint16_raster_without_a_no_data_value_is_no_data_not_a_0_db_scene(tmp_path):
    write_geotiff(tmp_path / "zeros.tif", [np.zeros((64, 64), dtype=np.uint16)] * 2)
    with pytest.raises(UserError, match=r"^dataset: no 32px window in .*zeros\.tif has at least 50% valid pixels; "
                                        r"check nodata and units \(in a uint16 raster without a no-data value DN 0 is "
                                        r"no-data\)"):
        tiles_of(tmp_path, paths=["zeros.tif"])


def test_0_in_a_uint16_raster_without_a_no_data_value_is_masked_whatever_the_units(tmp_path):
    values = np.full((32, 32), 3, dtype=np.uint16)
    values[:, :5] = 0
    write_geotiff(tmp_path / "dn.tif", [values, values])
    tile = tiles_of(tmp_path, paths=["dn.tif"], units="db")[0]
    assert not tile.mask[:, :5].any() and tile.mask[:, 5:].all()


def test_the_no_data_value_a_uint16_raster_gives_replaces_dn_0(tmp_path):
    db = np.full((32, 32), 3, dtype=np.uint16)
    db[:, :5] = 0
    db[:, 5:10] = 65535
    write_geotiff(tmp_path / "tagged.tif", [db, db], nodata=65535)
    tile = tiles_of(tmp_path, paths=["tagged.tif"])[0]
    assert tile.mask[:, :5].all() and not tile.mask[:, 5:10].any() and tile.mask[:, 10:].all()


def zero_filled_db(tmp_path: Path, zero_columns: int, zero_pixels: int = 0) -> None:
    """An untagged float dB raster of two bands whose first columns (and first pixels of row 40) are exactly 0."""
    rng = np.random.default_rng(4)
    bands = [speckled_db(rng, (64, 64), mean) for mean in (-10.0, -17.0)]
    for band in bands:
        band[:, :zero_columns] = 0.0
        band[40, :zero_pixels] = 0.0
    write_geotiff(tmp_path / "filled.tif", bands)


def test_an_untagged_db_raster_filled_with_0_is_warned_about_naming_the_file_and_the_option(tmp_path):
    zero_filled_db(tmp_path, zero_columns=12)
    with pytest.warns(UserWarning, match=r"^dataset: .*filled\.tif band 1: \d+% of a window's pixels are exactly 0 dB "
                                         r"and the file names no no-data value; .* set dataset\.nodata: 0$"):
        tiles = tiles_of(tmp_path, paths=["filled.tif"], max_tiles=4, min_valid_fraction=0.3)
    assert any(tile.col == 0 and tile.mask.all() for tile in tiles)  # the fill is read as data


def test_a_0_fill_declared_with_the_nodata_option_is_no_data_and_not_warned_about(tmp_path):
    zero_filled_db(tmp_path, zero_columns=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiles = tiles_of(tmp_path, paths=["filled.tif"], max_tiles=4, min_valid_fraction=0.3, nodata=0)
    assert all(not tile.mask[:, :12].any() for tile in tiles if tile.col == 0)


def test_a_few_pixels_at_exactly_0_db_are_data_and_not_warned_about(tmp_path):
    zero_filled_db(tmp_path, zero_columns=0, zero_pixels=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiles = tiles_of(tmp_path, paths=["filled.tif"], max_tiles=4)
    assert all(tile.mask.all() for tile in tiles)


def test_a_missing_band_is_a_user_error_naming_the_file(tmp_path, dual_pol_geotiff):
    with pytest.raises(UserError, match=r"scene\.tif: band 3 does not exist"):
        tiles_of(tmp_path, paths=["scene.tif"], bands={"VV": 1, "VH": 3})


def test_a_raster_smaller_than_a_tile_is_a_user_error(tmp_path):
    write_geotiff(tmp_path / "small.tif", [np.zeros((16, 16), dtype=np.float32)] * 2)
    with pytest.raises(UserError, match=r"smaller than tile_size 32 \(small\.tif 16x16\)"):
        tiles_of(tmp_path, paths=["small.tif"])


def test_a_raster_damaged_inside_is_a_user_error_naming_it(tmp_path):
    data = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    path = tmp_path / "damaged.tif"
    with rasterio.open(path, "w", driver="GTiff", height=256, width=256, count=1, dtype="float32",
                       crs="EPSG:32631", transform=rasterio.transform.from_origin(500_000, 5_000_000, 10, 10),
                       tiled=True, blockxsize=64, blockysize=64, compress="deflate") as raster:
        raster.write(data, 1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=r"damaged\.tif: cannot read band 1 .*download or export it again"):
        tiles_of(tmp_path, paths=["damaged.tif"], polarisations=("VV",), max_tiles=16)


def test_a_glob_selects_scenes_of_different_sizes(tmp_path):
    rng = np.random.default_rng(1)
    write_geotiff(tmp_path / "a_S1Hand.tif", [speckled_db(rng, (64, 64), -11.0)])
    write_geotiff(tmp_path / "b_S1Hand.tif", [speckled_db(rng, (96, 64), -11.0)])
    write_geotiff(tmp_path / "other.tif", [speckled_db(rng, (64, 64), -11.0)])
    tiles = tiles_of(tmp_path, paths="*_S1Hand.tif", polarisations=("VV",), max_tiles=16)
    assert {tile.scene for tile in tiles} == {"a_S1Hand", "b_S1Hand"}
    assert len(tiles) == 4 + 6


def test_a_glob_matching_nothing_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"pattern .*\*\.tif matches no \.tif/\.tiff file"):
        tiles_of(tmp_path, paths="nothing/*.tif")


@pytest.fixture
def per_polarisation_files(tmp_path: Path) -> dict[str, Path]:
    """Two scenes stored one file per polarisation, as BigEarthNet and SSL4EO-S12 store them."""
    rng = np.random.default_rng(11)
    files = {}
    for scene in ("S1A_tile_61_39", "S1A_tile_61_40"):
        for pol, mean_db in (("VV", -11.0), ("VH", -18.0)):
            files[f"{scene}_{pol}"] = write_geotiff(tmp_path / f"{scene}_{pol}.tif", [speckled_db(rng, (64, 64), mean_db)])
    return files


def test_per_polarisation_files_pair_into_dual_polarisation_scenes_named_without_the_token(tmp_path,
                                                                                          per_polarisation_files):
    tiles = tiles_of(tmp_path, paths=["*.tif"], per_polarisation=True, max_tiles=8)

    assert {tile.scene for tile in tiles} == {"S1A_tile_61_39", "S1A_tile_61_40"}
    assert all(sum(other.row == tile.row and other.col == tile.col and other.scene == tile.scene
                   for other in tiles) == 2 for tile in tiles)
    vh = next(tile for tile in tiles if tile.scene == "S1A_tile_61_40" and tile.pol == "VH")
    with rasterio.open(per_polarisation_files["S1A_tile_61_40_VH"]) as raster:
        db = raster.read(1, window=((vh.row, vh.row + 32), (vh.col, vh.col + 32)))
    np.testing.assert_allclose(vh.data, normalize_db(db, NORMALIZATION["VH"]), atol=1e-6)


def test_per_polarisation_files_of_unrequested_polarisations_are_left_out(tmp_path, per_polarisation_files):
    tiles = tiles_of(tmp_path, paths=["*.tif"], per_polarisation=True, polarisations=("VH",))

    assert {tile.pol for tile in tiles} == {"VH"}


def test_a_polarisation_file_without_its_partner_is_a_user_error_naming_it(tmp_path, per_polarisation_files):
    per_polarisation_files["S1A_tile_61_40_VH"].unlink()

    with pytest.raises(UserError, match=r"S1A_tile_61_40_VV\.tif has no VH partner \(.*S1A_tile_61_40_VH\.tif"):
        tiles_of(tmp_path, paths=["*.tif"], per_polarisation=True)


def test_a_file_without_a_polarisation_in_its_name_is_a_user_error_with_per_polarisation(tmp_path):
    write_geotiff(tmp_path / "scene.tif", [np.zeros((64, 64), dtype=np.float32)])

    with pytest.raises(UserError, match=r"scene\.tif has no polarisation .* in its name"):
        tiles_of(tmp_path, paths=["scene.tif"], per_polarisation=True)


def test_bands_and_per_polarisation_together_are_a_user_error(tmp_path, per_polarisation_files):
    with pytest.raises(UserError, match="dataset.bands: not used with per_polarisation"):
        tiles_of(tmp_path, paths=["*.tif"], per_polarisation=True, bands={"VV": 1, "VH": 1})


def test_polarisation_files_of_different_sizes_are_a_user_error(tmp_path):
    write_geotiff(tmp_path / "a_VV.tif", [np.zeros((64, 64), dtype=np.float32)])
    write_geotiff(tmp_path / "a_VH.tif", [np.zeros((64, 48), dtype=np.float32)])

    with pytest.raises(UserError, match="polarisations of scene a differ in size"):
        tiles_of(tmp_path, paths=["*.tif"], per_polarisation=True)


def test_safe_style_names_pair_on_the_token_between_dashes(tmp_path):
    for pol in ("vv", "vh"):
        write_geotiff(tmp_path / f"s1a-iw-grd-{pol}-20220612t173329-002.tiff",
                      [np.full((32, 32), -12.0, dtype=np.float32)])

    tiles = tiles_of(tmp_path, paths=[str(tmp_path)], per_polarisation=True)

    assert [tile.scene for tile in tiles] == ["s1a-iw-grd-20220612t173329-002"] * 2


@pytest.mark.parametrize("nodata", ["abc", True, [0]])
def test_a_nodata_value_that_is_not_a_number_is_one_line(tmp_path, dual_pol_geotiff, nodata):
    with pytest.raises(UserError, match=r"^dataset\.nodata: expected a number"):
        tiles_of(tmp_path, paths=["scene.tif"], nodata=nodata)


def test_a_band_name_that_two_bands_share_is_one_line_asking_for_an_index(tmp_path):
    rng = np.random.default_rng(0)
    band = speckled_db(rng, (64, 64), -11.0)
    write_geotiff(tmp_path / "twins.tif", [band, band - 7.0], descriptions=("VV", "VV"))
    with pytest.raises(UserError, match=r"twins\.tif: bands \[1, 2\] are all named 'VV'; give dataset\.bands by index"):
        tiles_of(tmp_path, paths=["twins.tif"], bands={"VV": "VV", "VH": 2})
