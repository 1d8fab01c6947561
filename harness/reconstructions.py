"""Decoded tiles kept for the visual comparison, so ``report`` never re-runs a codec.

Only a few tiles are kept (the first ``visual_tiles`` of the run), as float16
``.npy`` files: they feed figures, never metrics, and half precision keeps a
run folder small (128 kB per 256x256 reconstruction).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.api import Tile
from harness.results import POL, TILE_ID

ORIGINAL = "original.npy"
MASK = "mask.npy"
META = "tile.json"


@dataclass(frozen=True)
class KeptTile:
    """One kept tile: its original, mask, and the reconstructions keyed by (codec, point)."""

    tile_id: str
    pol: str
    db_range: tuple[float, float]
    original: np.ndarray
    mask: np.ndarray
    reconstructions: dict[tuple[str, str], np.ndarray]


def slug(text: str) -> str:
    """A file-name-safe, readable form of a tile id or point label."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def tile_folder(root: Path, tile: Tile) -> Path:
    return root / slug(tile.tile_id)


def save_original(root: Path, tile: Tile) -> None:
    """Start a kept tile's folder under ``root`` (a run folder's ``reconstructions``); a resumed run keeps the
    reconstructions it already has."""
    folder = tile_folder(root, tile)
    if (folder / META).is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / ORIGINAL, tile.data.astype(np.float16))
    np.save(folder / MASK, tile.mask)
    meta = {TILE_ID: tile.tile_id, POL: tile.pol, "db_range": list(tile.db_range), "points": {}}
    (folder / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def save_reconstruction(root: Path, tile: Tile, codec: str, point: str, reconstruction: np.ndarray) -> None:
    """Write one reconstruction and register its (codec, point) in the tile's index."""
    folder = tile_folder(root, tile)
    filename = f"{slug(codec)}__{slug(point)}.npy"
    np.save(folder / filename, reconstruction.astype(np.float16))
    meta_path = folder / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["points"][f"{codec}\t{point}"] = filename
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")


def load_kept_tiles(root: Path) -> list[KeptTile]:
    """Every kept tile under ``root`` (a run folder's ``reconstructions``), in tile-id order; an empty list when
    the run kept none."""
    if not root.is_dir():
        return []
    return [_load(folder) for folder in sorted(root.iterdir()) if (folder / META).is_file()]


def _load(folder: Path) -> KeptTile:
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    reconstructions = {
        tuple(key.split("\t", 1)): np.load(folder / filename).astype(np.float32)
        for key, filename in meta["points"].items()
    }
    return KeptTile(
        tile_id=meta[TILE_ID],
        pol=meta[POL],
        db_range=tuple(meta["db_range"]),
        original=np.load(folder / ORIGINAL).astype(np.float32),
        mask=np.load(folder / MASK),
        reconstructions=reconstructions,
    )
