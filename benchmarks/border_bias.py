"""Border bias of every codec on real tiles with no-data: what a no-data fill does to the valid pixels beside it.

The tiles are real Sentinel-1 windows with a real no-data footprint, built by the config's dataset plugin exactly as
a run builds them (the dB range, the NaN handling and the harness's fill, ``harness.sar.fill_no_data``). The
published Sen1Floods11 chips have no NaN of their own, so by default the footprint where Sen1Floods11's hand label
of the Mekong chip has no data (-1: 23 % of the chip; ``data/test/sen1floods11/labels/``) is made no-data in a
temporary copy of each chip given (``impose_label_footprint.py``, which wrote the shipped Mekong test chip): by
default the published Mekong chip in ``../shared/data/sen1floods11/``, whose pixels under the footprint the oracle
needs. Under such an imposed footprint the real pixels are known, so the ``oracle`` fill (the chip's own values
there: no border at all) gives the bias a codec puts on those border pixels anyway, whatever the fill; a fill
answers only for its excess over it. Chips with no-data of their own are read as they are
(``--footprint none``).

Every point of the config's codecs (lossless points left out; the learned codec at ``--qualities`` only) codes
every window with some no-data, one tile per polarisation, once per fill (``--fills``: the harness's, the former
local mean, with half and twice its width, the range minimum, the nearest valid value, a mirror image across the
border, the local mean plus seeded noise of the local spread, the oracle). The columns are the harness's own metric
functions (``border_bias_db``: mean dB bias of the valid pixels within 2 px of no-data, against the clipped
original; ``psnr`` on the valid pixels), the rate of the real bytes, the border bias of the pixels off the range
floor, the bias of all valid pixels (the codec's own, border or not) and, with the oracle, each tile's excess
over it. First, per fill, what the codecs see at the border: the local step from the valid border pixels to the
filled ones (5x5 neighbourhoods), at the dark border pixels (within 6 dB of the range floor, where a decoded
value cannot err below the floor) and at the others; the pixel-to-pixel spread on each side; the share of border
pixels at the floor and dark; the share of no-data beyond the former local mean's reach (25 px).

    .venv/bin/python benchmarks/border_bias.py [benchmarks.yaml] [--chips A.tif,B.tif] [--footprint F.tif|none]
        [--stride 128] [--codecs jpeg2000,...] [--qualities 0,4,8] [--fills harness,local-mean,oracle]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from harness.api import MetricInput, Tile
from harness.config import BenchmarkConfig, CodecConfig, TimingConfig, load_config
from harness.environment import cpu_model, load_average
from harness.metrics import BORDER_WIDTH, border_bias, psnr
from harness.plugins import Registry
from harness.measure import PreparedPoint, batches, code_arrays, prepare_points
from harness.tiles import dataset_tiles, settings_for
from harness.sar import normalize_db
from harness_datasets._labels import NOT_LABELLED
from impose_label_footprint import impose_label_footprint

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHIPS = [ROOT.parent / "shared" / "data" / "sen1floods11" / "Mekong_333434_S1Hand.tif"]
DEFAULT_FOOTPRINT = ROOT / "data" / "test" / "sen1floods11" / "labels" / "Mekong_333434_LabelHand.tif"
DEFAULT_CODECS = ("jpeg2000", "htj2k", "avif", "jpegxl", "sz3", "lerc", "autoencoder_checkerboard")
LEARNED = "autoencoder_checkerboard"
ONCE = TimingConfig(warmup=0, repeats=1)
TARGET_DB = 0.2
LOCAL = 5
"""Side (pixels) of the neighbourhood over which the fill's step at a border pixel is measured."""
DARK_DB = 6.0
"""Border pixels at most this far above the range floor count as dark: a low-rate codec's error there is clipped
at the floor (its RMSE is 2 to 3 dB at the lowest points)."""
FORMER_REACH = 25
"""Pixels from the data beyond which the former local-mean fill (Gaussian of 8 px, weight below 1e-3) gave the
tile's mean."""


def local_mean_fill(data: np.ndarray, mask: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """The fill this one replaced: the Gaussian-weighted mean of the valid pixels nearby, the tile's mean beyond."""
    if mask.all() or not mask.any():
        return np.where(mask, data, 0.0).astype(data.dtype)
    values = np.where(mask, data, 0.0).astype(np.float64)
    weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    local = ndimage.gaussian_filter(values, sigma) / np.maximum(weight, 1e-3)
    return np.where(mask, data, np.where(weight >= 1e-3, local, values[mask].mean())).astype(data.dtype)


def nearest_fill(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each no-data pixel takes the value of the nearest valid pixel (rays of constant value)."""
    if mask.all() or not mask.any():
        return np.where(mask, data, 0.0).astype(data.dtype)
    rows, cols = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    return np.where(mask, data, data[rows, cols]).astype(data.dtype)


def mirror_fill(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The valid pixels reflected across the border (through each no-data pixel's nearest valid pixel); the
    nearest valid value where the reflection lands on no-data too."""
    if mask.all() or not mask.any():
        return np.where(mask, data, 0.0).astype(data.dtype)
    rows, cols = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    here_rows, here_cols = np.indices(mask.shape)
    mirror_rows = np.clip(2 * rows - here_rows, 0, mask.shape[0] - 1)
    mirror_cols = np.clip(2 * cols - here_cols, 0, mask.shape[1] - 1)
    mirrored = np.where(mask[mirror_rows, mirror_cols], data[mirror_rows, mirror_cols], data[rows, cols])
    return np.where(mask, data, mirrored).astype(data.dtype)


def speckled_mean_fill(data: np.ndarray, mask: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """The local mean plus Gaussian noise of the valid pixels' local spread, seeded from the tile's valid values
    (deterministic): the local mean's level with a speckle-like texture."""
    if mask.all() or not mask.any():
        return np.where(mask, data, 0.0).astype(data.dtype)
    values = np.where(mask, data, 0.0).astype(np.float64)
    weight = np.maximum(ndimage.gaussian_filter(mask.astype(np.float64), sigma), 1e-3)
    mean = local_mean_fill(data, mask, sigma).astype(np.float64)
    square = ndimage.gaussian_filter(values * values, sigma) / weight
    spread = np.sqrt(np.maximum(square - mean * mean, 0.0))
    seed = np.frombuffer(np.ascontiguousarray(data[mask], dtype=np.float32).tobytes(), dtype=np.uint32).sum()
    noise = np.random.default_rng(int(seed)).standard_normal(mask.shape)
    return np.where(mask, data, np.clip(mean + spread * noise, 0.0, 1.0)).astype(data.dtype)


FILLS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "harness": None,                   # the tiles as the dataset built them: harness.sar.fill_no_data
    "local-mean": local_mean_fill,     # the fill fill_no_data used before
    "local-mean-4": functools.partial(local_mean_fill, sigma=4.0),    # its reach halved
    "local-mean-16": functools.partial(local_mean_fill, sigma=16.0),  # and doubled
    "range-minimum": lambda data, mask: np.where(mask, data, 0.0).astype(data.dtype),  # the fill before that
    "nearest": nearest_fill,
    "mirror": mirror_fill,
    "speckled-mean": speckled_mean_fill,
    "oracle": None,                    # the chip's real values under an imposed footprint
}


def footprinted_copies(chips: list[Path], footprint: Path | None, folder: Path) -> list[Path]:
    """The chips with NaN where the footprint raster marks no label (the chips themselves without one)."""
    if footprint is None:
        return chips
    for chip in chips:
        impose_label_footprint(chip, footprint, folder / chip.name)
    return [folder / chip.name for chip in chips]


def window_tiles(config: BenchmarkConfig, registry: Registry, paths: list[Path], stride: int) -> list[Tile]:
    """Every window of the rasters on a ``stride`` grid, through the config's dataset plugin (its bands, units and
    dB ranges), as a run builds them."""
    dataset = dataclasses.replace(config.dataset, max_tiles=None, min_valid_fraction=0.0,
                                  options={**config.dataset.options, "paths": [str(path) for path in paths],
                                           "stride": stride})
    settings = settings_for(dataset, config.normalization, config.seed, config.base_dir)
    return list(dataset_tiles(dataset, settings, registry))


def refilled(tile: Tile, fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Tile:
    """The tile with another fill, from its dB values as read (the dataset's own steps up to the fill)."""
    low = tile.db_range[0]
    normalized = normalize_db(np.nan_to_num(tile.original_db.astype(np.float64), nan=low), tile.db_range)
    return dataclasses.replace(tile, data=fill(normalized, tile.mask).astype(np.float32))


def tile_sets(tiles: list[Tile], oracle: dict[str, Tile], fills: list[str]) -> dict[str, list[Tile]]:
    sets = {}
    for name in fills:
        if name == "harness":
            sets[name] = tiles
        elif name == "oracle":
            sets[name] = [dataclasses.replace(tile, data=oracle[tile.tile_id].data) for tile in tiles]
        else:
            sets[name] = [refilled(tile, FILLS[name]) for tile in tiles]
    return sets


def border(mask: np.ndarray, inside: bool) -> np.ndarray:
    """Valid pixels within BORDER_WIDTH of no-data (inside) or no-data pixels within it of valid ones."""
    if inside:
        return mask & ndimage.binary_dilation(~mask, iterations=BORDER_WIDTH)
    return ~mask & ndimage.binary_dilation(mask, iterations=BORDER_WIDTH)


def neighbour_spread(db: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute dB difference of vertically and horizontally adjacent pixels that both lie in ``region``."""
    vertical = region[:-1, :] & region[1:, :]
    horizontal = region[:, :-1] & region[:, 1:]
    joined = np.concatenate([np.abs(np.diff(db, axis=0))[vertical], np.abs(np.diff(db, axis=1))[horizontal]])
    return float(joined.mean()) if joined.size else math.nan


def banded_mean(values: np.ndarray, band: np.ndarray) -> np.ndarray:
    """At every pixel, the mean of ``values`` over the pixels of ``band`` in its 5x5 neighbourhood."""
    total = ndimage.uniform_filter(np.where(band, values, 0.0), LOCAL)
    return total / np.maximum(ndimage.uniform_filter(band.astype(np.float64), LOCAL), 1e-12)


def fill_statistics(tile: Tile) -> dict[str, np.ndarray | float]:
    """What the codec sees at the border. Per valid border pixel: its level above the range floor and the local
    step (dB) from the valid border pixels to the filled ones in its 5x5 neighbourhood; per tile: the neighbour
    spread on each side and the share of no-data beyond the former fill's reach."""
    span = tile.db_range[1] - tile.db_range[0]
    db = tile.data.astype(np.float64) * span
    inside, outside = border(tile.mask, True), border(tile.mask, False)
    distance = ndimage.distance_transform_edt(~tile.mask)
    return {
        "level": db[inside],
        "step": (banded_mean(db, outside) - banded_mean(db, inside))[inside],
        "spread_valid": neighbour_spread(db, inside),
        "spread_fill": neighbour_spread(db, outside),
        "beyond_reach": float(np.mean(distance[~tile.mask] > FORMER_REACH)),
    }


def measured(prepared: PreparedPoint, tiles: list[Tile]) -> list[dict[str, float]]:
    """One row per tile: rate, PSNR and border bias (the harness's metrics), the border bias of the pixels off the
    range floor, and the mean bias of all valid pixels (as the border bias: against the clipped original)."""
    rows = []
    for batch in batches(tiles, prepared.codec.preferred_batch_size):
        coded = code_arrays(prepared.codec, [tile.data for tile in batch], ONCE)
        for tile, stream, reconstruction in zip(batch, coded.streams, coded.reconstructions):
            pair = MetricInput(tile.data, reconstruction, tile.mask, tile.db_range, tile.original_db)
            inside = border(tile.mask, True)
            at_floor = inside & (tile.data <= 0.0)
            span = tile.db_range[1] - tile.db_range[0]
            error = (np.clip(reconstruction, 0.0, 1.0).astype(np.float64) - tile.data) * span
            rows.append({"bpp": 8 * len(stream) / tile.data.size, **psnr(pair), **border_bias(pair),
                         "off_floor": float(error[inside & ~at_floor].mean()) if (inside & ~at_floor).any()
                         else math.nan,
                         "tile_bias": float(error[tile.mask].mean())})
    return rows


def selected_codecs(config: BenchmarkConfig, names: list[str], qualities: set[float]) -> tuple[CodecConfig, ...]:
    chosen = []
    for codec in config.codecs:
        if codec.name not in names:
            continue
        if codec.name == LEARNED:
            codec = dataclasses.replace(codec, points=tuple(point for point in codec.points
                                                            if float(point.options.get("quality", -1)) in qualities))
        chosen.append(codec)
    missing = set(names) - {codec.name for codec in chosen}
    if missing:
        raise SystemExit(f"--codecs: {', '.join(sorted(missing))} not in {config.path}")
    return tuple(chosen)


def signed(value: float) -> str:
    return "" if math.isnan(value) else f"{value:+.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--chips", default=",".join(str(path) for path in DEFAULT_CHIPS),
                        help="comma-separated rasters on one grid (default: the published Mekong chip)")
    parser.add_argument("--footprint", default=str(DEFAULT_FOOTPRINT),
                        help=f"raster on the chips' grid whose value {NOT_LABELLED} marks no-data; "
                             "none: the chips' own no-data")
    parser.add_argument("--stride", type=int, default=128, help="window grid spacing in pixels (tile size: config)")
    parser.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    parser.add_argument("--qualities", default="0,4,8", help=f"{LEARNED} qualities to run")
    parser.add_argument("--fills", default="harness,local-mean,oracle",
                        help=f"comma-separated, of: {', '.join(FILLS)}")
    args = parser.parse_args()

    torch.set_num_threads(1)
    fills = args.fills.split(",")
    unknown = [name for name in fills if name not in FILLS]
    if unknown:
        raise SystemExit(f"--fills: unknown {', '.join(unknown)}; choose from {', '.join(FILLS)}")
    footprint = None if args.footprint == "none" else Path(args.footprint)
    if "oracle" in fills and footprint is None:
        raise SystemExit("--fills oracle needs an imposed --footprint: under real no-data the pixels are unknown")
    if footprint is not None and not footprint.exists():
        raise SystemExit(f"{footprint}: no such footprint raster; give --footprint, or --footprint none")
    config, registry = load_config(args.config)
    if config.dataset.kind != "geotiff":
        raise SystemExit(f"{args.config}: dataset kind {config.dataset.kind!r}; this script reads GeoTIFF chips")
    chips = [Path(chip) for chip in args.chips.split(",")]
    missing = [str(chip) for chip in chips if not chip.exists()]
    if missing:
        raise SystemExit(f"{', '.join(missing)}: no such raster; give --chips (the default is beside the checkout)")
    started, load_before = time.perf_counter(), load_average()

    with tempfile.TemporaryDirectory() as folder:
        tiles = [tile for tile in window_tiles(config, registry, footprinted_copies(chips, footprint, Path(folder)),
                                               args.stride) if tile.mask.any() and not tile.mask.all()]
    if not tiles:
        raise SystemExit("no window has both valid and no-data pixels")
    oracle = ({tile.tile_id: tile for tile in window_tiles(config, registry, chips, args.stride)}
              if "oracle" in fills else {})
    sets = tile_sets(tiles, oracle, fills)
    codecs = selected_codecs(config, args.codecs.split(","), {float(value) for value in args.qualities.split(",")})
    points = [prepared for prepared in prepare_points(config, codecs, registry, "cpu") if not prepared.codec.lossless]

    no_data = np.array([1 - tile.mask.mean() for tile in tiles])
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); torch threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"MKL_NUM_THREADS={os.environ.get('MKL_NUM_THREADS', 'unset')}; load average {load_before}")
    print(f"{len(tiles)} tiles of {tiles[0].shape[0]} px ({', '.join(sorted({tile.pol for tile in tiles}))}) with "
          f"no-data ({no_data.min():.0%} to {no_data.max():.0%}, mean {no_data.mean():.0%}), every window on a "
          f"{args.stride} px grid of {', '.join(chip.name for chip in chips)}; no-data: "
          f"{'where ' + footprint.name + f' is {NOT_LABELLED}' if footprint else 'the chips own'}")
    print()
    print("## What the codecs see at the border")
    print()
    print(f"Local step: the mean dB of the filled pixels within {BORDER_WIDTH} px of the data minus that of the valid "
          f"pixels within {BORDER_WIDTH} px of no-data, each over the {LOCAL}x{LOCAL} neighbourhood of a valid border "
          f"pixel; averaged over the dark border pixels (at most {DARK_DB:g} dB above the range floor) and the others.")
    print()
    print(f"| fill | local step at dark border pixels, dB | at the others, dB | neighbour spread valid / fill, dB "
          f"| border pixels at the floor / dark | no-data beyond {FORMER_REACH} px |")
    print("|---|---|---|---|---|---|")
    for name in fills:
        statistics = [fill_statistics(tile) for tile in sets[name]]
        level = np.concatenate([row["level"] for row in statistics])
        step = np.concatenate([row["step"] for row in statistics])
        dark = level <= DARK_DB
        print(f"| {name} | {step[dark].mean():+.2f} | {step[~dark].mean():+.2f} "
              f"| {np.nanmean([row['spread_valid'] for row in statistics]):.2f} / "
              f"{np.nanmean([row['spread_fill'] for row in statistics]):.2f} "
              f"| {np.mean(level <= 0.0):.1%} / {dark.mean():.1%} "
              f"| {np.mean([row['beyond_reach'] for row in statistics]):.1%} |")

    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for prepared in points:
        for name in fills:
            results[prepared.codec_name, prepared.point.label, name] = measured(prepared, sets[name])

    print()
    print("## border_bias_db per rate point: mean, min and max over the tiles; excess: minus the oracle's, tile by tile")
    for name in fills:
        print()
        print(f"### fill: {name}")
        print()
        print("| codec | point | bpp | PSNR dB | border bias dB | min | max | tiles over ±0.2 | off the floor "
              "| whole tile "
              f"{'| excess mean | excess max abs ' if 'oracle' in fills and name != 'oracle' else ''}|")
        print(f"|---|---|---|---|---|---|---|---|---|---{'|---|---' if 'oracle' in fills and name != 'oracle' else ''}|")
        for prepared in points:
            rows = results[prepared.codec_name, prepared.point.label, name]
            bias = np.array([row["border_bias_db"] for row in rows])
            line = (f"| {prepared.codec_name} | {prepared.point.label} | {np.mean([row['bpp'] for row in rows]):.3f} "
                    f"| {np.mean([row['psnr'] for row in rows]):.2f} | {bias.mean():+.3f} | {bias.min():+.2f} "
                    f"| {bias.max():+.2f} | {np.sum(np.abs(bias) > TARGET_DB)}/{bias.size} "
                    f"| {signed(np.nanmean([row['off_floor'] for row in rows]))} "
                    f"| {signed(np.mean([row['tile_bias'] for row in rows]))} |")
            if "oracle" in fills and name != "oracle":
                reference = np.array([row["border_bias_db"]
                                      for row in results[prepared.codec_name, prepared.point.label, "oracle"]])
                excess = bias - reference
                line += f" {excess.mean():+.3f} | {np.abs(excess).max():.2f} |"
            print(line)

    print()
    print("## Per codec, over its rate points: mean of the points' border bias, largest point mean, worst tile")
    print()
    print("| codec | " + " | ".join(fills) + " |")
    print("|---|" + "---|" * len(fills))
    for codec in dict.fromkeys(prepared.codec_name for prepared in points):
        cells = []
        for name in fills:
            per_point = [np.array([row["border_bias_db"] for row in rows])
                         for (codec_name, _, fill), rows in results.items() if codec_name == codec and fill == name]
            means = np.array([values.mean() for values in per_point])
            worst = max((values for values in per_point), key=lambda values: np.abs(values).max())
            worst_tile = worst[np.argmax(np.abs(worst))]
            cells.append(f"{means.mean():+.2f}, {means[np.argmax(np.abs(means))]:+.2f}, {worst_tile:+.2f}")
        print(f"| {codec} | " + " | ".join(cells) + " |")
    print()
    print(f"{time.perf_counter() - started:.0f} s; load average {load_before} at the start, {load_average()} at the end")


if __name__ == "__main__":
    main()
