"""Training data, checked against the benchmark: real rasters through the dataset plugins, or synthetic scenes.

With ``--data FILE``, the training and validation tiles come from the dataset
sections listed in that YAML file (``train:`` and ``validation:``), read by
the same dataset plugins as a benchmark (``load_training_data``), so any
GeoTIFF, SAFE product or folder a user has can train a model. Their scene
names and tile checksums are checked against the benchmark's test tiles and
any test manifest: a scene that is tested on is never trained on.

Without ``--data``, training uses synthetic scenes:

The benchmark's synthetic scenes come from seeds ``SeedSequence([seed, i])``
with the config's small ``seed``; training scenes use ``TRAINING_SEED_BASE +
seed`` and validation scenes ``VALIDATION_SEED_BASE + seed``, which no
ordinary config seed reaches. Because "cannot coincide" is a claim about
someone else's config, it is also checked: a training tile whose scene seed
or pixel checksum matches a benchmark tile stops training with a
``UserError``. Scenes are read through the ``synthetic`` dataset plugin (found
in the benchmark's registry, like any dataset a user adds), cut
on the benchmark's tile grid and normalized with the benchmark's dB ranges,
so identical scenes give identical tiles and the checksum check is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Any

import numpy as np
import torch
import yaml

from harness import BenchmarkContext, Tile, UserError, tile_checksum
from harness.sar import denormalize_db, normalized_tile
from harness_codecs._autoencoder.training.augmentation import Alteration, Augmentation

TRAINING_SEED_BASE = 2**40
VALIDATION_SEED_BASE = 2**41
ALL_WINDOWS = 1_000_000
TRAINING_DATA_KEYS = ("train", "validation")
TRAINING_DATASET_DEFAULTS = {"max_tiles": ALL_WINDOWS, "min_valid_fraction": 1.0}
"""A training-data section takes every fully valid window unless it says otherwise."""
SYNTHETIC_KIND = "synthetic"


@dataclass(frozen=True)
class TileOrigin:
    """Where a training tile lies: its scene and polarisation, and its first row and column in that scene's raster
    (a training pack stores each scene's pixels once, however many overlapping windows cut them)."""

    scene: str
    pol: str
    row: int
    col: int


@dataclass(frozen=True)
class TrainingTile:
    """A training tile in dB (NaN: no-data), with the dB range it is normalized to once a patch is cut: kept in
    dB so that a gain offset applies before clipping (``augmentation``)."""

    db: np.ndarray
    db_range: tuple[float, float]
    origin: TileOrigin | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.db.shape

    @classmethod
    def of(cls, tile: Tile) -> TrainingTile:
        """The tile's dB values as read (its normalized data mapped back where the dataset kept none)."""
        db = tile.original_db if tile.original_db is not None else denormalize_db(tile.data, tile.db_range)
        return cls(np.where(tile.mask, db, np.nan).astype(np.float32), tuple(tile.db_range),
                   TileOrigin(tile.scene, tile.pol, tile.row, tile.col))


@dataclass(frozen=True)
class TrainingSplit:
    """Tiles to draw training patches from, fixed validation patches (N x 1 x P x P), and what
    identifies both (scene seeds and names, tile checksums as in ``tiles.csv``) for the overlap checks.
    ``validation_sources`` names the dataset section of each validation patch, so that validation is
    reported per source (empty: one source)."""

    train_tiles: list[TrainingTile]
    validation_patches: torch.Tensor
    scene_seeds: frozenset[int]
    checksums: frozenset[str]
    scenes: frozenset[str] = frozenset()
    validation_sources: tuple[str, ...] = ()


def synthetic_scenes(context: BenchmarkContext, seed: int, scenes: int, scene_size: int) -> Any:
    """The synthetic dataset at a namespaced seed, on the benchmark's tile grid and dB ranges, every fully valid
    window."""
    settings = context.test_dataset_settings(seed=seed, max_tiles=ALL_WINDOWS, min_valid_fraction=1.0)
    return context.dataset(SYNTHETIC_KIND)(settings, scenes=scenes, scene_size=scene_size)


def build_split(context: BenchmarkContext, seed: int, scenes: int, validation_scenes: int, scene_size: int,
                patch_size: int, validation_patches: int) -> TrainingSplit:
    train_scenes = synthetic_scenes(context, TRAINING_SEED_BASE + seed, scenes, scene_size)
    validation_scenes_ = synthetic_scenes(context, VALIDATION_SEED_BASE + seed, validation_scenes, scene_size)
    train, validation = list(train_scenes.tiles()), list(validation_scenes_.tiles())
    if not train or not validation:
        raise UserError(f"autoencoder training: scenes of {scene_size}px hold no fully valid "
                        f"{context.config.dataset.tile_size}px window; raise --scene-size")
    crops = [center_crop(tile.data, patch_size) for tile in validation[:validation_patches]]
    seeds = train_scenes.scene_seeds() | validation_scenes_.scene_seeds()
    checksums = frozenset(tile_checksum(tile) for tile in train + validation)
    scenes = frozenset(tile.scene for tile in train + validation)
    return TrainingSplit([TrainingTile.of(tile) for tile in train], torch.from_numpy(np.stack(crops)[:, None]),
                         seeds, checksums, scenes)


@dataclass(frozen=True)
class TrainingData:
    """The dataset sections of a training-data file."""

    path: Path
    train: tuple[DatasetConfig, ...]
    validation: tuple[DatasetConfig, ...]


def read_training_file(path: Path) -> dict[str, Any]:
    """The YAML mapping of a training-data file, read before the benchmark config so that a missing or
    unreadable ``--data`` file is the error, not whatever the (default) ``--config`` lacks."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"train autoencoder: --data {path}: no such file; give a training-data YAML (train: and "
                        "validation: lists of dataset sections), e.g. data/training.yaml") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"train autoencoder: --data {path}: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict) or set(raw) - set(TRAINING_DATA_KEYS):
        raise UserError(f"{path}: expected a mapping with the keys {' and '.join(TRAINING_DATA_KEYS)}, each a list "
                        "of dataset sections")
    return raw


def load_training_data(path: Path, context: BenchmarkContext, raw: dict[str, Any] | None = None) -> TrainingData:
    """Read and validate a training-data YAML file: ``train:`` and ``validation:``, each a list of
    dataset sections as in a benchmark config (paths relative to the file's folder). ``raw``: the file's
    mapping when ``read_training_file`` has read it already."""
    raw = read_training_file(path) if raw is None else raw
    sections = {}
    for key in TRAINING_DATA_KEYS:
        entries = raw.get(key)
        if not isinstance(entries, list) or not entries:
            raise UserError(f"{path}: {key}: expected a non-empty list of dataset sections (kind: geotiff, ...)")
        sections[key] = tuple(context.parse_dataset_section(path, entry, f"{key}[{index}]", TRAINING_DATASET_DEFAULTS)
                              for index, entry in enumerate(entries))
    return TrainingData(Path(path), sections["train"], sections["validation"])


def read_training_tiles(data: TrainingData, sections: tuple[Any, ...], context: BenchmarkContext,
                        seed: int) -> list[Tile]:
    """Every tile of ``sections``, normalized with the benchmark's dB ranges (the model codes its tiles)."""
    tiles = []
    for section in sections:
        missing = [pol for pol in section.polarisations if pol not in context.normalization]
        if missing:
            raise UserError(f"{data.path}: polarisation {missing[0]} has no dB range in {context.path}'s "
                            "normalization; train on the polarisations the benchmark codes")
        tiles += context.read_dataset(section, data.path.parent, seed)
    return tiles


@dataclass(frozen=True)
class DataTiles:
    """The tiles of a training-data file as training uses them: the train tiles in dB, the validation tiles
    normalized (each with the name of its dataset section), and what identifies them all for the overlap checks.
    A training pack stores exactly this."""

    train: list[TrainingTile]
    validation: list[np.ndarray]
    validation_sources: tuple[str, ...]
    checksums: frozenset[str]
    scenes: frozenset[str]


def read_data_tiles(data: TrainingData, context: BenchmarkContext, seed: int) -> DataTiles:
    """Every train and validation tile of a training-data file, read through the dataset plugins."""
    train = read_training_tiles(data, data.train, context, seed)
    validation, sources = [], []
    for section in data.validation:
        tiles = read_training_tiles(data, (section,), context, seed)
        validation += tiles
        sources += [source_name(section)] * len(tiles)
    return DataTiles([TrainingTile.of(tile) for tile in train], [tile.data for tile in validation], tuple(sources),
                     frozenset(tile_checksum(tile) for tile in train + validation),
                     frozenset(tile.scene for tile in train + validation))


def build_data_split(data: TrainingData, context: BenchmarkContext, seed: int, patch_size: int,
                     validation_patches: int, multiple: int) -> TrainingSplit:
    """The training split of a training-data file (``split_of`` its tiles)."""
    return split_of(read_data_tiles(data, context, seed), str(data.path), seed, patch_size, validation_patches,
                    multiple)


def split_of(tiles: DataTiles, where: str, seed: int, patch_size: int, validation_patches: int,
             multiple: int) -> TrainingSplit:
    """Training tiles and validation patches of a training-data file's tiles (``where`` names the file).

    Training tiles smaller than a patch are left out. The validation patches
    are centre crops of up to ``validation_patches`` validation tiles (chosen
    with the seed), all of one size: ``patch_size``, or the smallest
    validation tile's side rounded down to ``multiple`` when that is less, so
    that small held-out patches (BigEarthNet's 120 px) can validate a model
    trained on larger ones.
    """
    usable = [tile for tile in tiles.train if min(tile.shape) >= patch_size]
    if not usable:
        raise UserError(f"{where}: no train tile is at least {patch_size}px on each side; lower --patch-size "
                        f"or raise the train sections' tile_size")
    crop = min(patch_size, min(min(tile.shape) for tile in tiles.validation) // multiple * multiple)
    if crop < multiple:
        raise UserError(f"{where}: validation tiles must be at least {multiple}px on each side; raise the "
                        "validation sections' tile_size")
    chosen = sorted(np.random.default_rng(seed).permutation(len(tiles.validation))[:validation_patches])
    crops = [center_crop(tiles.validation[index], crop) for index in chosen]
    return TrainingSplit(usable, torch.from_numpy(np.stack(crops)[:, None]), frozenset(), tiles.checksums,
                         tiles.scenes, tuple(tiles.validation_sources[index] for index in chosen))


def source_name(section: DatasetConfig) -> str:
    """A dataset section's name in per-source reports: its kind and the last folder or file of its first path."""
    paths = section.options.get("paths")
    first = paths[0] if isinstance(paths, list) and paths else paths
    return f"{section.kind}:{Path(str(first)).name}" if first else section.kind


def center_crop(tile: np.ndarray, size: int) -> np.ndarray:
    top, left = (tile.shape[0] - size) // 2, (tile.shape[1] - size) // 2
    return np.array(tile[top:top + size, left:left + size], dtype=np.float32)


Crop = tuple[int, int, int, int, int, int, Alteration]
"""One training patch: tile index, top, left, quarter turns, flip (odd = mirrored), side length, alteration."""


def draw_crops(tile_shapes: list[tuple[int, int]], patch_size: int, batch_size: int,
               generator: torch.Generator, augmentation: Augmentation = Augmentation()) -> list[Crop]:
    """A batch's random crops, drawn in the exact order of the original sampler so a seed keeps its weights
    (an active ``augmentation`` draws its numbers after each crop's); only tiles at least ``patch_size`` on each
    side are drawn from."""
    eligible = [index for index, shape in enumerate(tile_shapes) if min(shape) >= patch_size]
    crops = []
    for _ in range(batch_size):
        index = eligible[int(torch.randint(len(eligible), (1,), generator=generator))]
        height, width = tile_shapes[index]
        top = int(torch.randint(height - patch_size + 1, (1,), generator=generator))
        left = int(torch.randint(width - patch_size + 1, (1,), generator=generator))
        rotation, flip = torch.randint(4, (2,), generator=generator).tolist()
        alteration = augmentation.draw(generator) if augmentation.active else Alteration()
        crops.append((index, top, left, rotation, flip, patch_size, alteration))
    return crops


LARGE_PATCH_FACTOR = 2
"""A large patch is twice as wide as ``--patch-size``, so its batch holds a quarter as many patches."""


class CropPlan(torch.utils.data.Sampler):
    """Draws each step's crops in the main process, so the batches do not depend on the number of workers.

    Workers only cut and stack pixels (the costly part); the single generator
    stays here, and its state before each step is kept until that step is
    consumed, because the DataLoader draws a few steps ahead of training.

    With ``large_fraction`` > 0, that share of the steps (drawn with the same
    generator) uses patches ``LARGE_PATCH_FACTOR`` times wider in a batch with
    as many pixels, so that a model also learns what lies far from a tile's
    border: trained on 256 px patches only, a hyperprior predicted the inside
    of a 512 px tile worse than its border and spent more bits on it.
    """

    def __init__(self, tile_shapes: list[tuple[int, int]], patch_size: int, batch_size: int,
                 generator: torch.Generator, first_step: int, steps: int, large_fraction: float = 0.0,
                 augmentation: Augmentation = Augmentation()):
        self.tile_shapes = tile_shapes
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.generator = generator
        self.first_step = first_step
        self.steps = steps
        self.large_fraction = large_fraction
        self.augmentation = augmentation
        self.states: dict[int, torch.Tensor] = {}

    def __iter__(self):
        for step in range(self.first_step, self.steps):
            self.states[step] = self.generator.get_state()
            if self.large_fraction and float(torch.rand(1, generator=self.generator)) < self.large_fraction:
                batch = max(1, self.batch_size // LARGE_PATCH_FACTOR**2)
                yield draw_crops(self.tile_shapes, LARGE_PATCH_FACTOR * self.patch_size, batch, self.generator,
                                 self.augmentation)
            else:
                yield draw_crops(self.tile_shapes, self.patch_size, self.batch_size, self.generator,
                                 self.augmentation)

    def __len__(self) -> int:
        return self.steps - self.first_step

    def state_before(self, step: int) -> torch.Tensor:
        """The generator state that draws ``step``'s crops: what a resumed run must start from."""
        for stale in [key for key in self.states if key < step]:
            del self.states[stale]
        return self.states.get(step, self.generator.get_state())


class PatchCutter(torch.utils.data.Dataset):
    """Cuts a planned batch out of the training tiles, with its rotations, flips and alterations, and normalizes
    it as a codec's tile: N x 2 x P x P, the patch in channel 0 and its valid mask (1.0 valid) in channel 1."""

    def __init__(self, tiles: list[TrainingTile]):
        self.tiles = tiles

    def __getitem__(self, crops: list[Crop]) -> torch.Tensor:
        return torch.stack([self.cut(crop) for crop in crops])

    def cut(self, crop: Crop) -> torch.Tensor:
        index, top, left, rotation, flip, size, alteration = crop
        tile = self.tiles[index]
        db = np.rot90(tile.db[top:top + size, left:left + size], rotation)
        data, mask = normalized_tile(alteration.apply(db[:, ::-1] if flip % 2 else db), tile.db_range)
        return torch.from_numpy(np.stack([data, mask]).astype(np.float32))


def patch_loader(tiles: list[TrainingTile], plan: CropPlan, workers: int, pin_memory: bool,
                 seed: int) -> torch.utils.data.DataLoader:
    """Batches of augmented patches, cut by ``workers`` processes (0: in the training process) ahead of use.

    ``batch_size=None`` because the plan yields whole batches; the loader's own
    generator (it seeds the workers) is derived from the seed so that it never
    touches torch's global generator.
    """
    return torch.utils.data.DataLoader(
        PatchCutter(tiles), batch_size=None, sampler=plan, num_workers=workers,
        pin_memory=pin_memory, persistent_workers=False, generator=torch.Generator().manual_seed(seed),
    )
