"""Where the training split comes from: a ``--data`` file, a ``--pack`` written from one, or synthetic scenes.

Whichever it is, the split is checked against the benchmark's test set (and a ``--manifest``) before any step:
a pack carries the test set it was checked against when it was written, so that a machine without the raster
readers checks it again without reading the benchmark's rasters.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_codecs._autoencoder.model.autoencoder import STRIDE
from harness_codecs._autoencoder.runtime.checkpoint import git_commit
from harness_codecs._autoencoder.training.data import (
    DataTiles,
    TrainingSplit,
    build_split,
    load_training_data,
    read_data_tiles,
    read_training_file,
    split_of,
)
from harness_codecs._autoencoder.training.overlap import TestSet, check_against_manifest, check_no_overlap
from harness_codecs._autoencoder.training.pack import TrainingPack, file_sha256, read_pack, write_pack

from harness import BenchmarkContext, UserError, read_manifest

REPOSITORY = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class CheckedSplit:
    """A training split that passed the overlap checks, the dB ranges it is normalized with, and what the
    checkpoint should record of its source beyond the options (a pack's provenance)."""

    split: TrainingSplit
    normalization: dict[str, tuple[float, float]]
    record: dict[str, Any] = field(default_factory=dict)


def checked_split(args: argparse.Namespace) -> CheckedSplit:
    """The split that ``--pack``, ``--data`` or the synthetic-scene options ask for, checked against the test
    set of ``--config`` and against ``--manifest``."""
    if args.pack:
        pack = read_pack(args.pack)
        _require_checked_against(pack, args.pack, args.config)
        print(f"autoencoder: training from the pack {args.pack} (of {pack.provenance.get('data')}, checked "
              f"against {pack.test_set.config})", flush=True)
        split = _split_of(pack.tiles, args.pack, args)
        checked, test_set = CheckedSplit(split, pack.normalization, {"pack_provenance": pack.provenance}), pack.test_set
    else:
        raw_data = read_training_file(args.data) if args.data else None  # its mistakes first: --config may be a default
        context = BenchmarkContext.load(args.config)
        checked = CheckedSplit(_read_split(args, context, raw_data), dict(context.normalization))
        test_set = TestSet.of(context, context.test_tiles())
    _check(checked.split, test_set, args.manifest)
    return checked


def _split_of(tiles: DataTiles, source: Path, args: argparse.Namespace) -> TrainingSplit:
    """The split of a data file's or a pack's tiles with the options' seed, patch size and validation patches."""
    return split_of(tiles, str(source), args.seed, args.patch_size, args.validation_patches, STRIDE)


def _check(split: TrainingSplit, test_set: TestSet, manifest: Path | None) -> None:
    check_no_overlap(split, test_set)
    if manifest:
        check_against_manifest(split, read_manifest(manifest), str(manifest))


def _read_split(args: argparse.Namespace, context: BenchmarkContext, raw_data: dict | None) -> TrainingSplit:
    if args.data:
        return _split_of(_read_data_tiles(args, context, raw_data), args.data, args)
    tile_size = context.config.dataset.tile_size
    if args.patch_size > tile_size:
        raise UserError(f"train autoencoder: --patch-size {args.patch_size}: larger than the {tile_size}px windows "
                        f"of {args.config} that patches are cut from")
    print(f"autoencoder: building the training split ({args.scenes} + {args.validation_scenes} scenes "
          f"of {args.scene_size}px) and checking it against {args.config}", flush=True)
    return build_split(context, args.seed, args.scenes, args.validation_scenes, args.scene_size, args.patch_size,
                       args.validation_patches)


def write_training_pack(args: argparse.Namespace) -> None:
    """Read ``--data``, check it as training would, and write it to ``--write-pack`` instead of training."""
    if not args.data:
        raise UserError("train autoencoder: --write-pack: give the training data to pack with --data FILE")
    raw_data = read_training_file(args.data)
    context = BenchmarkContext.load(args.config)
    tiles = _read_data_tiles(args, context, raw_data)
    test_set = TestSet.of(context, context.test_tiles())
    _check(_split_of(tiles, args.data, args), test_set, args.manifest)
    provenance = {"data": str(args.data), "data_sha256": file_sha256(args.data), "seed": args.seed,
                  "git_commit": git_commit(REPOSITORY)}
    try:
        write_pack(args.write_pack, TrainingPack(tiles, dict(context.normalization), test_set,
                                                 file_sha256(context.path), provenance))
    except OSError as exc:
        raise UserError(f"train autoencoder: --write-pack {args.write_pack}: {' '.join(str(exc).split())}") from exc
    size = Path(args.write_pack).stat().st_size / 1e6
    print(f"autoencoder: wrote {args.write_pack} ({size:.1f} MB): {len(tiles.train)} training tiles of "
          f"{len(tiles.scenes)} scenes, {len(tiles.validation)} validation tiles; train from it with "
          f"--pack {args.write_pack} --config {args.config}", flush=True)


def _read_data_tiles(args: argparse.Namespace, context: BenchmarkContext, raw_data: dict) -> DataTiles:
    data = load_training_data(args.data, context, raw_data)
    print(f"autoencoder: reading the training data of {args.data} and checking it against {args.config}", flush=True)
    return read_data_tiles(data, context, args.seed)


def _require_checked_against(pack: TrainingPack, path: Path, config: str) -> None:
    """A pack trains only for the benchmark it was checked against: the same config file, byte for byte."""
    try:
        same = file_sha256(Path(config)) == pack.config_sha256
    except OSError as exc:
        raise UserError(f"train autoencoder: --config {config}: {' '.join(str(exc).split())}") from exc
    if not same:
        raise UserError(f"train autoencoder: --pack {path} was checked against another version of {config} or another "
                        f"benchmark ({pack.test_set.config}); write it again with --write-pack --config {config}")
