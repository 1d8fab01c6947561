"""Training packs: the tiles of a training-data file, read and checked here, in one file that numpy alone reads.

Why: a machine lent for training (a GPU machine) may have PyTorch, numpy and scipy but not the raster readers
(rasterio), and what travels there is limited (64 MB beside the repository). ``--write-pack FILE`` reads a
``--data`` file through the dataset plugins, checks it against the benchmark as training does, and writes its
``DataTiles`` with the benchmark's dB ranges and test set; ``--pack FILE`` trains from it without reading a
raster, and checks the split against that test set again.

Size: each scene's pixels are stored once, however many overlapping windows cut them (the training files cut
windows 8 to 64 px apart). A raster of at most 256 distinct values (an image stretched to 8 bits) is stored
exactly, as 8-bit codes into its sorted values, differenced along rows (lzma packs speckle's differences
tighter); any other raster as float16 dB, a relative rounding under 2^-11 (0.004 dB at -10 dB, 0.016 dB below
-32 dB), a thousandth of speckle's spread. Validation tiles are stored exactly (float32). The archive is an
``.npz`` whose members are lzma-compressed, read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness_codecs._autoencoder.training.data import DataTiles, TileOrigin, TrainingTile
from harness_codecs._autoencoder.training.overlap import TestSet

from harness import UserError

PACK_FORMAT = "harness-training-pack"
PACK_VERSION = 1
PALETTE_SIZE = 256
"""A raster of at most this many distinct values is stored exactly, as 8-bit codes into them."""


@dataclass(frozen=True)
class TrainingPack:
    """What training draws from, and what it was checked against: the tiles, the benchmark's dB ranges and test
    set, the SHA-256 of that benchmark's config file, and where the tiles came from (``provenance``)."""

    tiles: DataTiles
    normalization: dict[str, tuple[float, float]]
    test_set: TestSet
    config_sha256: str
    provenance: dict[str, Any]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_pack(path: Path, pack: TrainingPack) -> None:
    """Write ``pack`` to ``path`` (through a temporary file, so an interrupted write leaves no half pack)."""
    rasters, windows = scene_rasters(pack.tiles.train)
    arrays: dict[str, np.ndarray] = {"windows": np.array(windows, dtype=np.int64).reshape(-1, 5)}
    raster_meta = []
    for index, (raster, db_range) in enumerate(rasters):
        encoding, stored = encode_raster(raster)
        arrays.update({f"raster{index}.{name}": value for name, value in stored.items()})
        raster_meta.append({"encoding": encoding, "db_range": list(db_range)})
    for index, tile in enumerate(pack.tiles.validation):
        arrays[f"validation{index}"] = np.asarray(tile, dtype=np.float32)
    meta = {"format": PACK_FORMAT, "version": PACK_VERSION, "rasters": raster_meta,
            "validation_sources": list(pack.tiles.validation_sources),
            "checksums": sorted(pack.tiles.checksums), "scenes": sorted(pack.tiles.scenes),
            "normalization": {pol: list(bounds) for pol, bounds in pack.normalization.items()},
            "test_set": {"config": pack.test_set.config, "scenes": sorted(pack.test_set.scenes),
                         "scene_seeds": sorted(pack.test_set.scene_seeds),
                         "tiles": [list(pair) for pair in pack.test_set.tiles]},
            "config_sha256": pack.config_sha256, "provenance": pack.provenance}
    arrays["meta"] = np.array(json.dumps(meta))
    partial = Path(f"{path}.partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
    os.replace(partial, path)


def read_pack(path: Path) -> TrainingPack:
    """The pack at ``path``; a missing, foreign, damaged or newer file is one ``UserError`` line."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("one numpy array, not an archive of them")
        with archive:
            meta = json.loads(str(archive["meta"]))
            _check_format(path, meta)
            return _pack_of(meta, {name: archive[name] for name in archive.files})
    except FileNotFoundError as exc:
        raise UserError(f"--pack {path}: no such file; write one with --data FILE --write-pack {path}") from exc
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise UserError(f"--pack {path}: not a readable training pack ({' '.join(str(exc).split())}); write it "
                        "again with --write-pack") from exc


def _check_format(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
        raise ValueError("no training-pack header")
    if meta.get("version") != PACK_VERSION:
        raise UserError(f"--pack {path}: pack format version {meta.get('version')}, this trainer reads version "
                        f"{PACK_VERSION}; write it again with --write-pack")


def _pack_of(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainingPack:
    rasters = [(decode_raster(entry["encoding"], arrays, f"raster{index}."), tuple(entry["db_range"]))
               for index, entry in enumerate(meta["rasters"])]
    train = [TrainingTile(rasters[raster][0][row:row + height, col:col + width], rasters[raster][1])
             for raster, row, col, height, width in arrays["windows"].tolist()]
    sources = tuple(meta["validation_sources"])
    validation = [arrays[f"validation{index}"] for index in range(len(sources))]
    tiles = DataTiles(train, validation, sources, frozenset(meta["checksums"]), frozenset(meta["scenes"]))
    test = meta["test_set"]
    test_set = TestSet(test["config"], frozenset(test["scenes"]), frozenset(test["scene_seeds"]),
                       tuple(tuple(pair) for pair in test["tiles"]))
    normalization = {pol: tuple(bounds) for pol, bounds in meta["normalization"].items()}
    return TrainingPack(tiles, normalization, test_set, meta["config_sha256"], meta["provenance"])


def scene_rasters(tiles: list[TrainingTile]) -> tuple[list[tuple[np.ndarray, tuple[float, float]]], list[tuple]]:
    """Each scene's pixels once: a raster per scene and polarisation (the bounding box of its tiles, NaN where no
    tile lies), and each tile as a window of one (raster index, row, column, height, width), in the tiles' order.
    A tile without an origin, or one whose pixels disagree with a window already placed, gets a raster of its own."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, tile in enumerate(tiles):
        key = (tile.origin.scene, tile.origin.pol, tile.db_range) if tile.origin else ("", str(index), tile.db_range)
        groups[key].append(index)
    rasters: list[tuple[np.ndarray, tuple[float, float]]] = []
    windows: list[tuple] = [()] * len(tiles)
    for members in groups.values():
        origin = [tiles[i].origin or TileOrigin("", "", 0, 0) for i in members]
        top, left = min(o.row for o in origin), min(o.col for o in origin)
        bottom = max(o.row + tiles[i].shape[0] for o, i in zip(origin, members))
        right = max(o.col + tiles[i].shape[1] for o, i in zip(origin, members))
        raster = np.full((bottom - top, right - left), np.nan, np.float32)
        placed = np.zeros(raster.shape, bool)
        shared = len(rasters)
        rasters.append((raster, tiles[members[0]].db_range))
        for o, i in zip(origin, members):
            (height, width), row, col = tiles[i].shape, o.row - top, o.col - left
            rows, cols = slice(row, row + height), slice(col, col + width)
            here = placed[rows, cols]
            if np.array_equal(raster[rows, cols][here], tiles[i].db[here], equal_nan=True):
                raster[rows, cols], placed[rows, cols] = tiles[i].db, True
                windows[i] = (shared, row, col, height, width)
            else:
                windows[i] = (len(rasters), 0, 0, height, width)
                rasters.append((tiles[i].db, tiles[i].db_range))
    return rasters, windows


def encode_raster(raster: np.ndarray) -> tuple[str, dict[str, np.ndarray]]:
    """``("palette", codes and values)`` for at most 256 distinct values (NaN counts as one), else
    ``("float16", values)``."""
    values, codes = np.unique(raster, return_inverse=True)
    if values.size > PALETTE_SIZE:
        return "float16", {"values": raster.astype(np.float16)}
    codes = codes.reshape(raster.shape).astype(np.uint8)
    differences = np.diff(codes, axis=1, prepend=np.zeros((raster.shape[0], 1), np.uint8))
    return "palette", {"codes": differences, "values": values.astype(np.float32)}


def decode_raster(encoding: str, arrays: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    if encoding == "float16":
        return arrays[f"{prefix}values"].astype(np.float32)
    if encoding == "palette":
        codes = np.cumsum(arrays[f"{prefix}codes"], axis=1, dtype=np.uint8)  # wraps as the differences did
        return arrays[f"{prefix}values"][codes]
    raise ValueError(f"unknown raster encoding {encoding!r}")
