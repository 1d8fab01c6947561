"""Seeded window selection and tile building shared by the raster dataset plugins.

A scene is never loaded whole (a GRD scene is about 25,000 x 16,000 pixels):
candidate windows on a grid are shuffled with the seed and read one at a time
through a callback until ``max_tiles`` of them are valid enough. The plugins
differ only in how a window becomes dB values, so that is the one thing they
pass in; selection, ids and normalization are the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from harness import DatasetSettings, Tile
from harness.sar import normalize_db

Layers = dict[str, np.ndarray]
"""dB values per polarisation for one window, NaN where there is no data."""


@dataclass(frozen=True)
class Candidate:
    """A window position on the tile grid of one scene."""

    file_index: int
    row: int
    col: int


def grid_candidates(shapes: list[tuple[int, int]], tile_size: int) -> list[Candidate]:
    """Non-overlapping full-size windows of every raster; partial edge windows are left out."""
    return [
        Candidate(file_index, row, col)
        for file_index, (height, width) in enumerate(shapes)
        for row in range(0, height - tile_size + 1, tile_size)
        for col in range(0, width - tile_size + 1, tile_size)
    ]


def select_windows(
    candidates: list[Candidate], read_layers: Callable[[Candidate], Layers], settings: DatasetSettings
) -> list[tuple[Candidate, Layers]]:
    """Read shuffled candidates until ``max_tiles`` are valid enough, returned in scene/row/column order.

    Empty when no window qualifies; the caller raises, because only it can
    name the files and say what to check.
    """
    order = np.random.default_rng(settings.seed).permutation(len(candidates))
    accepted = []
    for index in order:
        candidate = candidates[index]
        layers = read_layers(candidate)
        if joint_valid_fraction(layers) >= settings.min_valid_fraction:
            accepted.append((candidate, layers))
            if len(accepted) == settings.max_tiles:
                break
    return sorted(accepted, key=lambda item: _position(item[0]))


def joint_valid_fraction(layers: Layers) -> float:
    """Fraction of pixels valid in every polarisation, so both layers of a window are comparable."""
    valid = np.logical_and.reduce([np.isfinite(layer) for layer in layers.values()])
    return float(valid.mean())


def window_tiles(scene: str, candidate: Candidate, layers: Layers, settings: DatasetSettings) -> Iterator[Tile]:
    """One normalized, masked tile per polarisation, with the stable id ``scene:pol:r<row>:c<col>:<size>``."""
    size = settings.tile_size
    for pol, db in layers.items():
        mask = np.isfinite(db)
        db_range = settings.normalization[pol]
        data = np.where(mask, normalize_db(np.nan_to_num(db, nan=db_range[0]), db_range), 0.0)
        yield Tile(
            tile_id=f"{scene}:{pol}:r{candidate.row}:c{candidate.col}:{size}",
            scene=scene,
            pol=pol,
            row=candidate.row,
            col=candidate.col,
            data=data.astype(np.float32),
            mask=mask,
            db_range=db_range,
        )


def _position(candidate: Candidate) -> tuple[int, int, int]:
    return candidate.file_index, candidate.row, candidate.col
