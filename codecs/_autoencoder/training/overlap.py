"""The checks that keep training data and test data apart: a scene or tile the benchmark tests on is never trained on.

What identifies a benchmark's test set (its scene names, synthetic scene seeds and tile checksums) is a
``TestSet`` of its own, so that a training pack can carry the test set it was checked against to a machine
that cannot read the benchmark's rasters, and be checked against it again there.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness import BenchmarkContext, ManifestEntry, Tile, UserError, tile_checksum
from harness_codecs._autoencoder.training.data import SYNTHETIC_KIND, TrainingSplit


@dataclass(frozen=True)
class TestSet:
    """A benchmark's test set as the overlap checks see it: ``tiles`` pairs each tile's id with its checksum
    (the SHA-256 of ``tiles.csv``)."""

    __test__ = False  # a data class, not a pytest test class

    config: str
    scenes: frozenset[str]
    scene_seeds: frozenset[int]
    tiles: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, context: BenchmarkContext, tiles: list[Tile]) -> TestSet:
        """The test set of ``context``'s benchmark, whose tiles (``context.test_tiles()``) are ``tiles``."""
        return cls(str(context.path), frozenset(tile.scene for tile in tiles), benchmark_scene_seeds(context),
                   tuple((tile.tile_id, tile_checksum(tile)) for tile in tiles))


def benchmark_scene_seeds(context: BenchmarkContext) -> frozenset[int]:
    """Seeds of the benchmark's synthetic scenes (none when its dataset is not synthetic)."""
    dataset = context.config.dataset
    if dataset.kind != SYNTHETIC_KIND:
        return frozenset()
    return context.dataset(SYNTHETIC_KIND)(context.test_dataset_settings(), **dataset.options).scene_seeds()


def check_no_overlap(split: TrainingSplit, test_set: TestSet) -> None:
    """Refuse to train on anything the benchmark tests on: same scene (seed or name), or a byte-identical tile."""
    shared_seeds = split.scene_seeds & test_set.scene_seeds
    if shared_seeds:
        raise UserError(f"autoencoder training: training scenes share seed(s) {sorted(shared_seeds)} with the "
                        f"benchmark in {test_set.config}; choose another --seed")
    shared_scenes = sorted(split.scenes & test_set.scenes)
    if shared_scenes:
        raise UserError(f"autoencoder training: scene {shared_scenes[0]} is a test scene of {test_set.config}; "
                        "remove it from the training data")
    overlapping = [tile_id for tile_id, checksum in test_set.tiles if checksum in split.checksums]
    if overlapping:
        raise UserError(f"autoencoder training: {len(overlapping)} benchmark tile(s) of {test_set.config} are also "
                        f"training tiles (first: {overlapping[0]}); choose another --seed")


def check_against_manifest(split: TrainingSplit, entries: list[ManifestEntry], manifest: str) -> None:
    """Refuse a split that shares a scene (by name) or a tile (by pixel checksum) with a test manifest."""
    shared_scenes = sorted(split.scenes & {entry.scene for entry in entries})
    if shared_scenes:
        raise UserError(f"autoencoder training: scene {shared_scenes[0]} is in the test manifest {manifest}; "
                        "choose another --seed")
    shared_tiles = [entry.tile_id for entry in entries if entry.sha256 in split.checksums]
    if shared_tiles:
        raise UserError(f"autoencoder training: {len(shared_tiles)} tile(s) of the test manifest {manifest} are "
                        f"training tiles (first: {shared_tiles[0]}); choose another --seed")
