"""Kept reconstructions and the matched-rate visual comparison."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from harness import Tile
from harness.metrics import psnr
from harness.reconstructions import load_kept_tiles, save_original, save_reconstruction
from harness.results import RunFolder
from harness.reporting.visual import crop_window, options_caption, write_visual_comparisons

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

(PSNR,) = psnr.columns


def make_tile(tile_id: str = "scene:VV:r0:c0:64") -> Tile:
    rng = np.random.default_rng(0)
    data = rng.random((64, 64), dtype=np.float32)
    mask = np.ones((64, 64), dtype=bool)
    mask[:, :4] = False
    return Tile(tile_id, "scene", "VV", 0, 0, data, mask, (-25.0, 5.0))


def results_for(tile: Tile, rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """Rows as a run writes them; a point "k=v,k=v" has the options {"k": "v", ...} and "match_bpp=X" the target X."""
    columns = ["tile_id", "codec", "point", "options", "target_bpp", "bpp", "psnr", "error"]
    return pd.DataFrame([(tile.tile_id, codec, point, json.dumps(dict(option.split("=") for option in point.split(","))),
                          float(point.removeprefix("match_bpp=")) if point.startswith("match_bpp=") else float("nan"),
                          bpp, psnr, "") for codec, point, bpp, psnr in rows], columns=columns)


def test_kept_tiles_round_trip_through_the_run_folder(tmp_path):
    tile = make_tile()
    save_original(RunFolder(tmp_path).reconstructions, tile)
    save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "quantize", "bits=4", tile.data * 0.5)
    (kept,) = load_kept_tiles(RunFolder(tmp_path).reconstructions)
    assert kept.tile_id == tile.tile_id and kept.db_range == (-25.0, 5.0)
    np.testing.assert_allclose(kept.original, tile.data, atol=1e-3)
    np.testing.assert_array_equal(kept.mask, tile.mask)
    np.testing.assert_allclose(kept.reconstructions[("quantize", "bits=4")], tile.data * 0.5, atol=1e-3)


def test_saving_the_original_again_keeps_earlier_reconstructions(tmp_path):
    tile = make_tile()
    save_original(RunFolder(tmp_path).reconstructions, tile)
    save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "quantize", "bits=4", tile.data)
    save_original(RunFolder(tmp_path).reconstructions, tile)
    assert ("quantize", "bits=4") in load_kept_tiles(RunFolder(tmp_path).reconstructions)[0].reconstructions


def test_a_run_without_kept_tiles_has_no_visual_comparison(tmp_path):
    assert write_visual_comparisons(tmp_path, results_for(make_tile(), []), PSNR) == []


def test_each_codec_is_shown_at_the_point_closest_to_the_target_rate(tmp_path, monkeypatch):
    tile = make_tile()
    save_original(RunFolder(tmp_path).reconstructions, tile)
    for point in ("bits=2", "bits=4"):
        save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "quantize", point, tile.data)
    results = results_for(tile, [("quantize", "bits=2", 2.0, 20.0), ("quantize", "bits=4", 4.0, 34.0)])
    shown = []
    monkeypatch.setattr("harness.reporting.visual.draw_comparison",
                        lambda kept, panels, target: shown.append([panel.title for panel in panels]) or _figure())
    write_visual_comparisons(tmp_path, results, PSNR, target_bpp=3.5)
    assert shown[0][1].startswith("quantize\nbits=4")


def test_a_codecs_point_matched_to_the_target_rate_is_shown_even_when_another_point_lands_closer(
        tmp_path, monkeypatch):
    tile = make_tile()
    save_original(RunFolder(tmp_path).reconstructions, tile)
    for point in ("quality=50", "match_bpp=1.0"):
        save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "avif", point, tile.data)
    results = results_for(tile, [("avif", "quality=50", 1.0, 32.0), ("avif", "match_bpp=1.0", 0.97, 31.8)])
    shown = []
    monkeypatch.setattr("harness.reporting.visual.draw_comparison",
                        lambda kept, panels, target: shown.append([panel.title for panel in panels]) or _figure())
    write_visual_comparisons(tmp_path, results, PSNR, target_bpp=1.0)
    assert shown[0][1].startswith("avif\nmatch_bpp=1.0")


def test_the_visual_comparison_is_a_png_per_kept_tile(tmp_path):
    tile = make_tile()
    save_original(RunFolder(tmp_path).reconstructions, tile)
    save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "quantize", "bits=4", np.clip(tile.data + 0.01, 0, 1))
    save_reconstruction(RunFolder(tmp_path).reconstructions, tile, "jpeg2000", "bpp=1.0", tile.data)
    results = results_for(tile, [("quantize", "bits=4", 4.0, 34.0), ("jpeg2000", "bpp=1.0", 0.98, 30.0)])
    (path,) = write_visual_comparisons(tmp_path, results, PSNR)
    assert path.name == "visual_scene_VV_r0_c0_64.png"
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000


@pytest.mark.parametrize("shape, expected", [((256, 256), (slice(96, 160), slice(96, 160))),
                                             ((3, 3), (slice(1, 2), slice(1, 2)))])
def test_the_crop_is_the_central_quarter(shape, expected):
    assert crop_window(shape) == expected


def _figure():
    from matplotlib.figure import Figure

    return Figure()


def test_panel_captions_shorten_paths_to_file_names():
    options = json.dumps({"bits": 4, "checkpoint": "checkpoints/tiny-c16.pt"})
    assert options_caption(options) == "bits=4,checkpoint=tiny-c16.pt"


def test_figures_of_tiles_no_longer_kept_are_removed(tmp_path):
    stale = RunFolder(tmp_path).visual("old_tile")
    stale.write_bytes(PNG_MAGIC)
    write_visual_comparisons(tmp_path, results_for(make_tile(), []), PSNR)
    assert not stale.exists()


def test_reconstructions_saved_at_the_same_time_are_all_kept(tmp_path):
    """Dask workers save reconstructions of one tile concurrently; none may be lost or read half-written."""
    tile = make_tile()
    root = RunFolder(tmp_path).reconstructions
    save_original(root, tile)
    points = [f"bits={bits}" for bits in range(1, 33)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda point: save_reconstruction(root, tile, "quantize", point, tile.data), points))
    (kept,) = load_kept_tiles(root)
    assert sorted(point for _, point in kept.reconstructions) == sorted(points)
