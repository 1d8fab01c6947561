"""Dataset plugin ``synthetic``: the built-in, deterministic Sentinel-1-like test set.

Scenes are generated once, written as real GeoTIFFs (CRS, transform, NaN
no-data) into a cache folder, then read back by the ``geotiff`` plugin. The
default benchmark therefore exercises the same I/O and tiling code that real
data takes, and anybody with the same seed and the same numpy/scipy builds gets identical
tiles (numpy's transcendental functions may differ in the last bit across CPUs).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from harness import DatasetSettings, Tile, UserError, hookimpl
from harness_datasets._synthetic_scene import GENERATOR_VERSION, generate_scene
from harness_datasets.geotiff import GeoTiffDataset

POLARISATIONS = ("VV", "VH")
PIXEL_SPACING_M = 10.0
UTM_31N = CRS.from_epsg(32631)


MAX_SCENE_SIZE = 8192
"""The generator builds each scene whole, so memory grows with the square of its side: 65536 px asked for 64 GiB,
which puts 8192 px near 1 GiB."""


class SyntheticDataset:
    """Sentinel-1 IW GRDH-like dual-polarisation scenes, cached as GeoTIFFs."""

    name = "synthetic"

    def __init__(self, settings: DatasetSettings, scenes: int = 2, scene_size: int = 1024):
        unsupported = sorted(set(settings.polarisations) - set(POLARISATIONS))
        if unsupported:
            raise UserError(f"dataset.polarisations: the synthetic set has only VV and VH, not {', '.join(unsupported)}")
        if isinstance(scenes, bool) or not isinstance(scenes, int) or scenes < 1:
            raise UserError(f"dataset.scenes: expected a positive integer, got {scenes!r}")
        if isinstance(scene_size, bool) or not isinstance(scene_size, int) or scene_size < settings.tile_size:
            raise UserError(f"dataset.scene_size: expected an integer >= tile_size ({settings.tile_size}), got {scene_size!r}")
        if scene_size > MAX_SCENE_SIZE:
            raise UserError(f"dataset.scene_size: {scene_size} is larger than the {MAX_SCENE_SIZE} px the generator "
                            "holds in memory; for full-scene sizes use real products (kind: safe or geotiff)")
        self.settings = settings
        self.scenes = scenes
        self.scene_size = scene_size

    def scene_seeds(self) -> frozenset[int]:
        """The seeds of the scenes this dataset generates: a trainer proves with them that it never trains on a
        scene a benchmark tests on."""
        return frozenset(scene_seed(self.settings.seed, index) for index in range(self.scenes))

    def tiles(self) -> Iterator[Tile]:
        files = [self._cached_scene(index) for index in range(self.scenes)]
        reader = GeoTiffDataset(self.settings, paths=[str(path) for path in files], units="db",
                                bands={pol: index + 1 for index, pol in enumerate(POLARISATIONS)})
        return reader.tiles()

    def _cached_scene(self, index: int) -> Path:
        folder = self.settings.cache_dir / f"synthetic-v{GENERATOR_VERSION}"
        path = folder / f"seed{self.settings.seed}-size{self.scene_size}-scene{index}.tif"
        if not path.exists():
            write_scene(path, scene_seed(self.settings.seed, index), self.scene_size)
        return path


def scene_seed(seed: int, index: int) -> int:
    """Independent, reproducible seeds per scene, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def write_scene(path: Path, seed: int, size: int) -> None:
    """Write one generated scene atomically, so an interrupted run never leaves half a file in the cache."""
    scene = generate_scene(seed, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 2, "dtype": "float32",
        "crs": UTM_31N, "transform": from_origin(500_000.0, 5_000_000.0, PIXEL_SPACING_M, PIXEL_SPACING_M),
        "nodata": float("nan"), "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tif.part")
    os.close(handle)
    try:
        with rasterio.open(temporary, "w", **profile) as raster:
            raster.write(scene.vv_db.astype(np.float32), 1)
            raster.write(scene.vh_db.astype(np.float32), 2)
            raster.descriptions = POLARISATIONS
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


@hookimpl
def harness_datasets():
    return [SyntheticDataset]
