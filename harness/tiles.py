"""The run's tiles as a stream: read through the dataset plugin, read-only, cut into chunks of bounded memory.

A run, a Dask worker and a trainer all read tiles the same way, from the config's dataset section and its dB
ranges, so that they see the same tiles in the same order: a worker finds the tiles of a unit by their ids in the
chunk the client cut, and a trainer proves that it trains on none of the tiles the benchmark tests on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.api import DatasetSettings, Tile
from harness.config import BenchmarkConfig, DatasetConfig
from harness.errors import UserError
from harness.manifest import read_manifest, restrict_to_manifest
from harness.plugins import Registry

TILE_CHUNK_PIXELS = 1 << 24
"""How many tile pixels a run holds at once: 16.8 MPix, 256 tiles of 256x256, about 170 MB with their masks and dB
originals. The run measures every point on one chunk of tiles before it reads the next, so its memory does not
grow with the test set: a whole Sentinel-1 product (some 13,000 such tiles) is measured like a sample of it."""


def dataset_settings(config: BenchmarkConfig) -> DatasetSettings:
    return settings_for(config.dataset, config.normalization, config.seed, config.base_dir)


def settings_for(dataset: DatasetConfig, normalization: dict[str, tuple[float, float]], seed: int,
                 base_dir: Path) -> DatasetSettings:
    """What a dataset plugin is constructed with, for a dataset section of any file (benchmark or training)."""
    return DatasetSettings(
        tile_size=dataset.tile_size,
        max_tiles=dataset.max_tiles,
        polarisations=dataset.polarisations,
        normalization=normalization,
        seed=seed,
        min_valid_fraction=dataset.min_valid_fraction,
        base_dir=base_dir,
        cache_dir=dataset.cache_dir,
    )


def tile_stream(config: BenchmarkConfig, registry: Registry, manifest: Path | None = None) -> Iterator[Tile]:
    """The run's tiles, read-only, in the dataset's order as it reads them; only the manifest's when given. A tile
    without a valid pixel (a third-party dataset may yield one) is skipped, with a note: no metric can score it."""
    tiles = map(_read_only, _with_valid_pixels(dataset_tiles(config.dataset, dataset_settings(config), registry),
                                               config.dataset.kind))
    return restrict_to_manifest(tiles, read_manifest(manifest), manifest) if manifest else tiles


def tile_chunks(tiles: Iterable[Tile], pixels: int) -> Iterator[list[Tile]]:
    """Consecutive tiles of about ``pixels`` pixels in all (at least one tile), read only as each chunk is asked for."""
    chunk: list[Tile] = []
    size = 0
    for tile in tiles:
        chunk.append(tile)
        size += tile.data.size
        if size >= pixels:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def handed_over(head: list[Tile], rest: Iterator[Tile]) -> Iterator[Tile]:
    """``head`` then ``rest``, emptying ``head`` as it goes: a tile the run has measured must not stay referenced,
    or the memory of a whole-product run would grow with it."""
    while head:
        yield head.pop(0)
    yield from rest


def _with_valid_pixels(tiles: Iterable[Tile], kind: str) -> Iterator[Tile]:
    noted = False
    for tile in tiles:
        if tile.mask.any():
            yield tile
        elif not noted:
            noted = True
            warnings.warn(f"dataset {kind!r}: tile {tile.tile_id} has no valid pixel (its mask is all no-data), so it "
                          "is skipped, as is any other such tile", stacklevel=2)


def _read_only(tile: Tile) -> Tile:
    # Every codec point sees the same arrays: a codec writing into its input would corrupt the others' scores.
    tile.data.setflags(write=False)
    tile.mask.setflags(write=False)
    if tile.labels is not None:
        if tile.labels.shape != tile.shape:  # a plugin's mistake, found before coding rather than inside a metric
            raise UserError(f"tile {tile.tile_id}: labels of shape {tile.labels.shape} for a tile of {tile.shape}; "
                            "a dataset plugin must give labels on the tile's pixels")
        tile.labels.setflags(write=False)
    return tile


def load_tiles(config: BenchmarkConfig, registry: Registry) -> list[Tile]:
    """Every tile of the run at once: for the trainer, which refuses to train on them, and the benchmark scripts."""
    tiles = list(tile_stream(config, registry))
    if not tiles:
        raise no_tiles(config)
    return tiles


def no_tiles(config: BenchmarkConfig) -> UserError:
    return UserError(f"{config.path}: dataset {config.dataset.kind!r} produced no tiles")


def read_dataset(dataset: DatasetConfig, settings: DatasetSettings, registry: Registry) -> list[Tile]:
    """Every tile the dataset section's plugin yields with these settings."""
    return list(dataset_tiles(dataset, settings, registry))


def dataset_tiles(dataset: DatasetConfig, settings: DatasetSettings, registry: Registry) -> Iterator[Tile]:
    """The tiles the dataset section's plugin yields with these settings, as it reads them."""
    return iter(registry.dataset(dataset.kind)(settings, **dataset.options).tiles())
