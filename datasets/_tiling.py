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

A raster can be far larger than any scene (a 200,000 x 200,000 mosaic has
600,000 windows of 256 px), so a scene's grid is held as counts and its
shuffled order as one integer array, never as a list of windows, and a plugin
may give an upper bound of each window's valid pixels that it knows without
reading them (``valid_bound``: the blocks a sparse GeoTIFF does not store).
Windows that bound rules out are skipped unread; the others are read as
before, so the tiles are the same, only found sooner. A window without one
valid pixel is never a tile, whatever ``min_valid_fraction`` says.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

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


@dataclass(frozen=True)
class Grid:
    """The window positions of one scene: ``rows`` x ``cols`` windows of ``size`` pixels every ``step`` pixels,
    numbered in row-major order. Counts, not a list of windows, so that memory does not grow with them."""

    file_index: int
    rows: int
    cols: int
    step: int
    size: int

    def __len__(self) -> int:
        return self.rows * self.cols

    def candidate(self, index: int) -> Candidate:
        row, col = divmod(int(index), self.cols)
        return Candidate(self.file_index, row * self.step, col * self.step)


ValidBound = Callable[[Grid], "np.ndarray | None"]
"""A plugin's upper bound of each window's valid pixels (in every polarisation) that it knows without reading
them: a ``rows`` x ``cols`` array for the grid, or None when the files tell nothing."""

SLOW_SCAN_SECONDS = 10.0
"""After this long looking for valid windows, the selection says what it is doing (once), instead of staying
silent while it reads a raster that is mostly no-data."""


def scene_grids(shapes: list[tuple[int, int]], tile_size: int, stride: int | None = None) -> list[Grid]:
    """Each scene's grid of full-size windows every ``stride`` pixels (default ``tile_size``: no overlap); partial
    edge windows are left out, and a scene smaller than a tile has no grid."""
    step = stride or tile_size
    return [
        Grid(file_index, (height - tile_size) // step + 1, (width - tile_size) // step + 1, step, tile_size)
        for file_index, (height, width) in enumerate(shapes)
        if height >= tile_size and width >= tile_size
    ]


def grid_candidates(shapes: list[tuple[int, int]], tile_size: int, stride: int | None = None) -> list[Candidate]:
    """Every window of ``scene_grids`` as a list, scenes in file order, each in row-major order."""
    return [grid.candidate(index) for grid in scene_grids(shapes, tile_size, stride) for index in range(len(grid))]


def select_windows(
    grids: list[Grid],
    read_layers: Callable[[Candidate], Layers],
    settings: DatasetSettings,
    max_tiles_per_scene: int | None = None,
    valid_bound: ValidBound | None = None,
    names: Sequence[str] | None = None,
) -> list[Candidate]:
    """Up to ``max_tiles`` valid-enough windows (all of them when None), scenes taking turns, in scene/row/column
    order.

    Each round gives every scene that still has candidates and room under
    ``max_tiles_per_scene`` one more valid window, read lazily from its
    shuffled candidates. Only the positions are kept: the caller reads each
    window again when it yields its tiles, so memory does not grow with the
    number of windows (a whole product has thousands). Empty when no window
    qualifies; the caller raises, because only it can name the files and say
    what to check. ``names`` (one per file index) name the files in the notes:
    that a file gave no window while others did, and that a scan takes long.
    """
    names = names or [f"scene {index + 1}" for index in range(max((g.file_index for g in grids), default=-1) + 1)]
    scan = _Scan(read_layers, sum(len(grid) for grid in grids), names)
    valid_windows = [
        _valid_windows(grid, order, scan, settings.min_valid_fraction, valid_bound)
        for grid, order in zip(grids, shuffled_orders(grids, settings.seed))
    ]
    cap = max_tiles_per_scene or settings.max_tiles
    taken = [0] * len(valid_windows)
    accepted: list[Candidate] = []
    barren: list[int] = []
    active = list(range(len(valid_windows)))
    while active and (settings.max_tiles is None or len(accepted) < settings.max_tiles):
        for scene in list(active):
            window = next(valid_windows[scene], None)
            if window is not None:
                accepted.append(window)
                scan.found += 1
                taken[scene] += 1
            elif not taken[scene]:
                barren.append(grids[scene].file_index)
            if window is None or taken[scene] == cap:
                active.remove(scene)
            if len(accepted) == settings.max_tiles:
                break
    if accepted and barren:
        warnings.warn(f"dataset: no {settings.tile_size}px window of {', '.join(names[index] for index in barren)} "
                      f"{qualifying(settings.min_valid_fraction)}; the tiles come from the other files",
                      stacklevel=2)
    return sorted(accepted, key=_position)


def qualifying(min_valid_fraction: float) -> str:
    """What a window needs, in words: "has at least 50% valid pixels"."""
    return f"has at least {min_valid_fraction:.0%} valid pixels" if min_valid_fraction > 0 else "has a valid pixel"


def shuffled_orders(grids: list[Grid], seed: int) -> list[np.ndarray]:
    """Each scene's window indices in a seeded random order, scenes in file order.

    One generator permutes the scenes in turn, so a single scene is shuffled
    exactly as the earlier pooled selection did and its tiles did not change.
    """
    rng = np.random.default_rng(seed)
    return [rng.permutation(len(grid)) for grid in grids]


class _Scan:
    """Reads windows for the selection, counting them, and says once what it is doing when that takes long."""

    def __init__(self, read_layers: Callable[[Candidate], Layers], windows: int, names: Sequence[str]):
        self.read_layers = read_layers
        self.windows = windows
        self.names = names
        self.reads = 0
        self.found = 0
        self.start = time.monotonic()
        self.noted = False

    def __call__(self, candidate: Candidate) -> Layers:
        self.reads += 1
        if not self.noted and time.monotonic() - self.start > SLOW_SCAN_SECONDS:
            self.noted = True
            warnings.warn(
                f"dataset: {self.reads - 1:,} of {self.windows:,} windows of {', '.join(self.names)} read in "
                f"{time.monotonic() - self.start:.0f} s, {self.found} qualify so far; a raster that is mostly "
                "no-data is slow to scan: crop it to its data, tag its no-data value (dataset.nodata), or write "
                "it as a sparse GeoTIFF, whose empty blocks are skipped unread",
                stacklevel=2,
            )
        return self.read_layers(candidate)


def _valid_windows(grid: Grid, order: np.ndarray, read_layers: Callable[[Candidate], Layers],
                   min_valid_fraction: float, valid_bound: ValidBound | None) -> Iterator[Candidate]:
    """Windows of one scene, read only when asked for, that have a valid pixel and enough of them; those that
    ``valid_bound`` rules out are skipped unread."""
    bound = valid_bound(grid) if valid_bound is not None else None
    if bound is not None:
        most = bound.reshape(-1)[order]
        order = order[(most > 0) & (most / (grid.size * grid.size) >= min_valid_fraction)]
    for index in order:
        candidate = grid.candidate(index)
        fraction = joint_valid_fraction(read_layers(candidate))
        if fraction > 0 and fraction >= min_valid_fraction:
            yield candidate


def stored_pixels(stored_blocks: np.ndarray, block_shape: tuple[int, int], shape: tuple[int, int],
                  grid: Grid) -> np.ndarray:
    """How many pixels of each window of ``grid`` lie in stored blocks (``stored_blocks``: one flag per block of
    ``block_shape`` pixels over a raster of ``shape``): the most valid pixels a window can have when the blocks
    left out hold none. A ``rows`` x ``cols`` array, from the overlap of each window with each block row and
    column, so no pixel is read."""
    (block_height, block_width), (height, width) = block_shape, shape
    rows = _overlaps(np.arange(grid.rows) * grid.step, grid.size, block_height, height, stored_blocks.shape[0])
    cols = _overlaps(np.arange(grid.cols) * grid.step, grid.size, block_width, width, stored_blocks.shape[1])
    return rows @ (stored_blocks.astype(np.float64) @ cols.T)


MAX_BLOCKS_ASKED = 4_000_000
"""Blocks of one band whose storage is asked for (about 1.5 us each, 6 s in all at most); a raster cut into more
(a 200,000-pixel side in blocks of 100 px) is scanned window by window instead."""


def stored_blocks(raster: rasterio.DatasetReader, band: int) -> np.ndarray | None:
    """Which blocks of ``band`` the file stores, one flag per block in rows and columns of blocks.

    A sparse GeoTIFF (GDAL's ``SPARSE_OK``) leaves out the blocks that were
    never written, and GDAL reads them as the band's no-data value, or 0
    without one: a mostly empty mosaic of 200,000 x 200,000 pixels is a few MB.
    Asking GDAL for each block's offset (``BLOCK_OFFSET_<col>_<row>`` in the
    ``TIFF`` metadata domain) reads no pixel. None when there is nothing to
    learn: another format, every block stored, or too many blocks to ask.
    """
    if raster.driver != "GTiff":
        return None
    block_height, block_width = raster.block_shapes[band - 1]
    rows, cols = -(-raster.height // block_height), -(-raster.width // block_width)
    if rows * cols > MAX_BLOCKS_ASKED:
        return None
    offset = raster.get_tag_item
    try:
        stored = np.fromiter((offset(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band) is not None
                              for row in range(rows) for col in range(cols)), dtype=bool, count=rows * cols)
    except RasterioError:
        return None
    return None if stored.all() else stored.reshape(rows, cols)


def _overlaps(starts: np.ndarray, size: int, block: int, extent: int, blocks: int) -> np.ndarray:
    """Pixels shared by each window [start, start + size) and each block [i * block, (i + 1) * block)."""
    edges = np.minimum(np.arange(blocks + 1) * block, extent)
    low = np.maximum(starts[:, None], edges[None, :-1])
    high = np.minimum(starts[:, None] + size, edges[None, 1:])
    return np.clip(high - low, 0, None).astype(np.float64)


def joint_valid_fraction(layers: Layers) -> float:
    """Fraction of pixels valid in every polarisation, so both layers of a window are comparable."""
    valid = np.logical_and.reduce([np.isfinite(layer) for layer in layers.values()])
    return float(valid.mean())


def window_tiles(scene: str, candidate: Candidate, layers: Layers, settings: DatasetSettings,
                 labels: np.ndarray | None = None) -> Iterator[Tile]:
    """One normalized, masked tile per polarisation, with the stable id ``scene:pol:r<row>:c<col>:<size>``; every
    polarisation of the window carries the window's ``labels`` (one ground truth per place on the ground)."""
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
            labels=labels,
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
