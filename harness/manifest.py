"""The test-set manifest: which tiles a run used, with a checksum of their pixels.

Two runs are comparable only if they coded the same pixels. Every run writes
``tiles.csv``; giving that file to a later run (``--manifest``) restricts it to
exactly those tiles and fails loudly if any is missing or its pixels changed
(a different file version, calibration, normalization or reader).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from harness.api import Tile
from harness.errors import UserError
from harness.results import HEIGHT, POL, SCENE, TILE_ID, WIDTH


@dataclass(frozen=True)
class ManifestEntry:
    tile_id: str
    scene: str
    pol: str
    row: int
    col: int
    height: int
    width: int
    sha256: str


COLUMNS = [field.name for field in fields(ManifestEntry)]


def tile_checksum(tile: Tile) -> str:
    """SHA-256 of the normalized pixels and the mask: what the codecs actually see."""
    digest = hashlib.sha256(tile.data.astype("<f4", copy=False).tobytes())
    digest.update(tile.mask.astype(bool).tobytes())
    return digest.hexdigest()


def manifest_entry(tile: Tile) -> ManifestEntry:
    height, width = tile.shape
    return ManifestEntry(tile.tile_id, tile.scene, tile.pol, tile.row, tile.col, height, width, tile_checksum(tile))


@contextlib.contextmanager
def manifest_writer(path: Path) -> Iterator[Callable[[Iterable[Tile]], None]]:
    """A function that appends tiles to the manifest as the run reads them (a whole product is never in memory at
    once); the file holds every tile read so far."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)

        def write(tiles: Iterable[Tile]) -> None:
            writer.writerows(astuple(manifest_entry(tile)) for tile in tiles)
            handle.flush()

        yield write


def read_manifest(path: Path) -> list[ManifestEntry]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path}: not a tile manifest (missing column {missing[0]!r})")
            return [_entry(row) for row in reader]
    except FileNotFoundError:
        raise UserError(f"{path}: manifest not found; give the tiles.csv of an earlier run") from None
    except ValueError as exc:
        raise UserError(f"{path}: malformed manifest row ({exc})") from exc


def _entry(row: dict[str, str]) -> ManifestEntry:
    return ManifestEntry(
        tile_id=row[TILE_ID], scene=row[SCENE], pol=row[POL], row=int(row["row"]), col=int(row["col"]),
        height=int(row[HEIGHT]), width=int(row[WIDTH]), sha256=row["sha256"],
    )


def restrict_to_manifest(tiles: Iterable[Tile], entries: list[ManifestEntry], path: Path) -> Iterator[Tile]:
    """The manifest's tiles, in the dataset's order, as the dataset yields them: a changed checksum is an error
    when its tile is read, a tile the dataset does not produce when the dataset ends."""
    expected = {entry.tile_id: entry.sha256 for entry in entries}
    for tile in tiles:
        checksum = expected.pop(tile.tile_id, None)
        if checksum is None:
            continue
        if tile_checksum(tile) != checksum:
            raise UserError(f"{path}: tile {tile.tile_id} has different pixels than when the manifest was written "
                            "(changed file, normalization or reader); the runs would not be comparable")
        yield tile
    if expected:
        raise UserError(f"{path}: tile {next(iter(expected))} is not produced by this config's dataset; "
                        "use the dataset (files, seed, tile_size, max_tiles) of the run that wrote the manifest")


def manifest_differences(first: Path, second: Path) -> str | None:
    """How the tiles of two runs' manifests differ, in words, or None when they are the same tiles.

    ``compare`` prints it: differences between runs on different pixels mix data with codec changes.
    None too when either manifest is missing (nothing to check against).
    """
    manifests = (first, second)
    if not all(path.is_file() for path in manifests):
        return None
    a, b = ({entry.tile_id: entry.sha256 for entry in read_manifest(path)} for path in manifests)
    only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
    changed = sum(a[tile] != b[tile] for tile in a.keys() & b.keys())
    if not (only_a or only_b or changed):
        return None
    return (f"the runs coded different tiles ({only_a} only in A, {only_b} only in B, {changed} with other pixels); "
            "their differences mix data with codec changes (run B with --manifest A/tiles.csv to compare like "
            "with like)")
