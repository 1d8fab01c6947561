"""Decoded tiles kept for the visual comparison, so ``report`` never re-runs a codec.

Only a few tiles are kept (the first ``visual_tiles`` of the run), in float16:
they feed figures, never metrics, and half precision keeps a run folder small
(128 kB per 256x256 reconstruction).

Each reconstruction is one self-describing ``.npz`` (its codec, point and
pixels), written under a temporary name and renamed into place: Dask workers
save reconstructions of the same tile at the same time, and a shared index
file rewritten by each of them would be read half-written by another.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.api import Tile
from harness.results import CODEC, POINT, POL, TILE_ID

ORIGINAL = "original.npy"
MASK = "mask.npy"
META = "tile.json"
RECONSTRUCTION_SUFFIX = ".npz"


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
    meta = {TILE_ID: tile.tile_id, POL: tile.pol, "db_range": list(tile.db_range)}
    _write_atomically(folder / META, json.dumps(meta, indent=1).encode("utf-8"))


def save_reconstruction(root: Path, tile: Tile, codec: str, point: str, reconstruction: np.ndarray) -> None:
    """Write one reconstruction, with the (codec, point) it belongs to, into the tile's folder."""
    folder = tile_folder(root, tile)
    saved = io.BytesIO()
    np.savez(saved, **{CODEC: np.array(codec), POINT: np.array(point)}, pixels=reconstruction.astype(np.float16))
    _write_atomically(folder / f"{slug(codec)}__{slug(point)}{RECONSTRUCTION_SUFFIX}", saved.getvalue())


def _write_atomically(path: Path, content: bytes) -> None:
    """Readers see the old file or the whole new one, never a part (a rename within a folder is atomic)."""
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as handle:
        handle.write(content)
    os.replace(handle.name, path)


def load_kept_tiles(root: Path) -> list[KeptTile]:
    """Every kept tile under ``root`` (a run folder's ``reconstructions``), in tile-id order; an empty list when
    the run kept none."""
    if not root.is_dir():
        return []
    return [_load(folder) for folder in sorted(root.iterdir()) if (folder / META).is_file()]


def _load(folder: Path) -> KeptTile:
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    reconstructions = {}
    for path in sorted(folder.glob(f"*{RECONSTRUCTION_SUFFIX}")):
        with np.load(path, allow_pickle=False) as saved:
            reconstructions[(str(saved[CODEC]), str(saved[POINT]))] = saved["pixels"].astype(np.float32)
    return KeptTile(
        tile_id=meta[TILE_ID],
        pol=meta[POL],
        db_range=tuple(meta["db_range"]),
        original=np.load(folder / ORIGINAL).astype(np.float32),
        mask=np.load(folder / MASK),
        reconstructions=reconstructions,
    )
