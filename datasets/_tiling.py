"""Seeded window selection and tile building shared by the raster dataset plugins.

A scene is never loaded whole (a GRD scene is about 25,000 x 16,000 pixels):
candidate windows lie on a grid with a configurable stride, and each scene's
candidates are shuffled with the seed and read one at a time through a
callback. Scenes take turns (round robin), so ``max_tiles`` windows are spread
evenly over the files rather than drawn from one pooled shuffle that favours
the largest scene; ``max_tiles_per_scene`` caps any one scene. A window is the
unit: it is kept or skipped for all polarisations together. The plugins differ
only in how a window becomes dB values, so that is the one thing they pass in;
selection, ids and normalization are the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from harness import DatasetSettings, Tile, UserError
from harness.sar import normalized_tile

Layers = dict[str, np.ndarray]
"""dB values per polarisation for one window, NaN where there is no data."""


GDAL_CACHE_MB = 64
"""GDAL's block cache while the tiles are read. Its default is 5 % of the machine's memory (1.2 GB on a 23 GB
machine), which a whole product's windows fill: a run over a 25,000 x 16,700 raster peaked at 1.5 GB, 0.8 GB with
this cap. Each window is read once to select it and once to yield it, so a small cache loses nothing."""


def bounded_gdal_cache() -> rasterio.Env:
    """The GDAL settings to read tiles under: a block cache that does not grow with the product."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


@dataclass(frozen=True)
class Candidate:
    """A window position on the tile grid of one scene."""

    file_index: int
    row: int
    col: int


@dataclass(frozen=True)
class Sampling:
    """The plugin options that shape the grid and the selection, validated once for both plugins."""

    stride: int | None = None
    max_tiles_per_scene: int | None = None

    def __post_init__(self) -> None:
        for name in ("stride", "max_tiles_per_scene"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"dataset.{name}: expected a positive integer, got {value!r}")


def grid_candidates(shapes: list[tuple[int, int]], tile_size: int, stride: int | None = None) -> list[Candidate]:
    """Full-size windows every ``stride`` pixels (default ``tile_size``: no overlap); partial edge windows are left out."""
    step = stride or tile_size
    return [
        Candidate(file_index, row, col)
        for file_index, (height, width) in enumerate(shapes)
        for row in range(0, height - tile_size + 1, step)
        for col in range(0, width - tile_size + 1, step)
    ]


def select_windows(
    candidates: list[Candidate],
    read_layers: Callable[[Candidate], Layers],
    settings: DatasetSettings,
    max_tiles_per_scene: int | None = None,
) -> list[Candidate]:
    """Up to ``max_tiles`` valid-enough windows (all of them when None), scenes taking turns, in scene/row/column
    order.

    Each round gives every scene that still has candidates and room under
    ``max_tiles_per_scene`` one more valid window, read lazily from its
    shuffled candidates. Only the positions are kept: the caller reads each
    window again when it yields its tiles, so memory does not grow with the
    number of windows (a whole product has thousands). Empty when no window
    qualifies; the caller raises, because only it can name the files and say
    what to check.
    """
    valid_windows = [
        _valid_windows(order, read_layers, settings.min_valid_fraction)
        for order in shuffled_per_scene(candidates, settings.seed)
    ]
    cap = max_tiles_per_scene or settings.max_tiles
    taken = [0] * len(valid_windows)
    accepted: list[Candidate] = []
    active = list(range(len(valid_windows)))
    while active and (settings.max_tiles is None or len(accepted) < settings.max_tiles):
        for scene in list(active):
            window = next(valid_windows[scene], None)
            if window is not None:
                accepted.append(window)
                taken[scene] += 1
            if window is None or taken[scene] == cap:
                active.remove(scene)
            if len(accepted) == settings.max_tiles:
                break
    return sorted(accepted, key=_position)


def shuffled_per_scene(candidates: list[Candidate], seed: int) -> list[list[Candidate]]:
    """Each scene's candidates in a seeded random order, scenes in file order.

    One generator permutes the scenes in turn, so a single scene is shuffled
    exactly as the earlier pooled selection did and its tiles did not change.
    """
    rng = np.random.default_rng(seed)
    scenes: dict[int, list[Candidate]] = {}
    for candidate in candidates:
        scenes.setdefault(candidate.file_index, []).append(candidate)
    return [[scene[index] for index in rng.permutation(len(scene))] for _, scene in sorted(scenes.items())]


def _valid_windows(
    order: list[Candidate], read_layers: Callable[[Candidate], Layers], min_valid_fraction: float
) -> Iterator[Candidate]:
    """Windows of one scene, read only when asked for, that have enough valid pixels."""
    for candidate in order:
        if joint_valid_fraction(read_layers(candidate)) >= min_valid_fraction:
            yield candidate


def joint_valid_fraction(layers: Layers) -> float:
    """Fraction of pixels valid in every polarisation, so both layers of a window are comparable."""
    valid = np.logical_and.reduce([np.isfinite(layer) for layer in layers.values()])
    return float(valid.mean())


def window_tiles(scene: str, candidate: Candidate, layers: Layers, settings: DatasetSettings) -> Iterator[Tile]:
    """One normalized, masked tile per polarisation, with the stable id ``scene:pol:r<row>:c<col>:<size>``."""
    size = settings.tile_size
    for pol, db in layers.items():
        data, mask = normalized_tile(db, settings.normalization[pol])
        yield Tile(
            tile_id=f"{scene}:{pol}:r{candidate.row}:c{candidate.col}:{size}",
            scene=scene,
            pol=pol,
            row=candidate.row,
            col=candidate.col,
            data=data.astype(np.float32),
            mask=mask,
            db_range=settings.normalization[pol],
            original_db=np.where(mask, db, np.nan).astype(np.float32),
        )


def _position(candidate: Candidate) -> tuple[int, int, int]:
    return candidate.file_index, candidate.row, candidate.col


def read_window(raster: rasterio.DatasetReader, band: int, window: Window) -> np.ndarray:
    """One band of one window as float64; a file damaged inside (truncated, bad compressed block) is a
    user error naming the file, not a traceback halfway through building the test set."""
    try:
        return raster.read(band, window=window).astype(np.float64)
    except RasterioError as exc:
        raise UserError(f"{raster.name}: cannot read band {band} at row {window.row_off}, column "
                        f"{window.col_off} ({exc}); the file is damaged, download or export it again") from exc
