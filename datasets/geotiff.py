"""Dataset plugin ``geotiff``: tiles from GeoTIFF/COG rasters, read window by window.

A GRD scene is about 25,000 x 16,000 pixels, so a scene is never loaded
whole: candidate windows on a grid (``stride`` pixels apart) are shuffled with
the seed and read one at a time, scenes taking turns, until enough
mostly-valid windows are found (``_tiling``). The selection depends on the
seed, the options and the files only, so two runs compare codecs on the same tiles.
"""

from __future__ import annotations

import glob

from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from harness import DatasetSettings, Tile, UserError, hookimpl
from harness.sar import UNITS, to_db
from harness_datasets._tiling import (
    Candidate,
    Layers,
    Sampling,
    grid_candidates,
    read_window,
    select_windows,
    window_tiles,
)

RASTER_SUFFIXES = (".tif", ".tiff")


class GeoTiffDataset:
    """Tiles from GeoTIFF files, bands mapped to polarisations, in dB, linear intensity or amplitude DN."""

    name = "geotiff"

    def __init__(
        self,
        settings: DatasetSettings,
        paths: list[str] | str | None = None,
        units: str = "db",
        bands: dict[str, int | str] | None = None,
        nodata: float | None = None,
        stride: int | None = None,
        max_tiles_per_scene: int | None = None,
    ):
        if paths is None:
            raise UserError("dataset.paths: missing; list GeoTIFF files or folders (relative to the config file)")
        if units not in UNITS:
            raise UserError(f"dataset.units: {units!r} is not one of {', '.join(UNITS)}")
        self.settings = settings
        self.sampling = Sampling(stride, max_tiles_per_scene)
        self.files = resolve_raster_paths(paths, settings.base_dir)
        self.units = units
        self.bands = bands or {pol: index + 1 for index, pol in enumerate(settings.polarisations)}
        self.nodata = nodata
        for pol in settings.polarisations:
            if pol not in self.bands:
                raise UserError(f"dataset.bands: no band given for polarisation {pol}; e.g. bands: {{{pol}: 1}}")

    def tiles(self) -> Iterator[Tile]:
        with ExitStack() as stack:
            rasters = [stack.enter_context(open_raster(path)) for path in self.files]
            band_indexes = [self._band_indexes(raster, path) for raster, path in zip(rasters, self.files)]
            for candidate, layers in self._select_windows(rasters, band_indexes):
                yield from window_tiles(self.files[candidate.file_index].stem, candidate, layers, self.settings)

    def _band_indexes(self, raster: rasterio.DatasetReader, path: Path) -> dict[str, int]:
        return {pol: band_index(raster, path, self.bands[pol]) for pol in self.settings.polarisations}

    def _select_windows(self, rasters: list, band_indexes: list[dict[str, int]]) -> list[tuple[Candidate, Layers]]:
        """Read shuffled grid windows, scenes taking turns, until ``max_tiles`` of them are valid enough."""
        candidates = grid_candidates([raster.shape for raster in rasters], self.settings.tile_size, self.sampling.stride)
        if not candidates:
            shapes = ", ".join(f"{path.name} {raster.height}x{raster.width}" for path, raster in zip(self.files, rasters))
            raise UserError(f"dataset: every raster is smaller than tile_size {self.settings.tile_size} ({shapes})")
        accepted = select_windows(
            candidates,
            lambda candidate: self._read_layers(rasters[candidate.file_index], band_indexes[candidate.file_index], candidate),
            self.settings,
            self.sampling.max_tiles_per_scene,
        )
        if not accepted:
            raise UserError(
                f"dataset: no {self.settings.tile_size}px window in {', '.join(str(path) for path in self.files)} has "
                f"at least {self.settings.min_valid_fraction:.0%} valid pixels; check nodata and units, "
                "or lower dataset.min_valid_fraction"
            )
        return accepted

    def _read_layers(self, raster, band_indexes: dict[str, int], candidate: Candidate) -> Layers:
        """dB values of each polarisation in the window, NaN where there is no data."""
        size = self.settings.tile_size
        window = Window(candidate.col, candidate.row, size, size)
        layers = {}
        for pol, band in band_indexes.items():
            values = read_window(raster, band, window)
            nodata = self.nodata if self.nodata is not None else raster.nodatavals[band - 1]
            if nodata is not None and not np.isnan(nodata):
                values[values == nodata] = np.nan
            layers[pol] = to_db(values, self.units)
        return layers


def resolve_raster_paths(paths: list[str] | str, base_dir: Path) -> list[Path]:
    """Files, folders (all .tif/.tiff inside, sorted) and globs, relative to the config's folder."""
    entries = [paths] if isinstance(paths, str) else paths
    if not isinstance(entries, list) or not entries:
        raise UserError(f"dataset.paths: expected a file, a folder or a list of them, got {paths!r}")
    files: list[Path] = []
    for entry in entries:
        path = (base_dir / str(entry)).expanduser()
        if glob.has_magic(str(entry)):
            found = sorted(Path(match) for match in glob.glob(str(path)) if Path(match).suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise UserError(f"dataset.paths: pattern {path} matches no .tif/.tiff file")
            files.extend(found)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise UserError(f"dataset.paths: folder {path} holds no .tif/.tiff files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"dataset.paths: {path} not found; paths are relative to the config file's folder")
    return files


def open_raster(path: Path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        raise UserError(f"{path}: not a readable raster ({exc}); give GeoTIFF/COG files") from exc


def band_index(raster: rasterio.DatasetReader, path: Path, band: int | str) -> int:
    """A 1-based band index from an index or a band description such as 'VV'."""
    if isinstance(band, str):
        descriptions = [description or "" for description in raster.descriptions]
        if band not in descriptions:
            raise UserError(f"{path}: no band named {band!r} (bands: {descriptions}); fix dataset.bands")
        return descriptions.index(band) + 1
    if isinstance(band, bool) or not isinstance(band, int) or not 1 <= band <= raster.count:
        raise UserError(f"{path}: band {band!r} does not exist (the file has {raster.count}); fix dataset.bands")
    return band


@hookimpl
def harness_datasets():
    return [GeoTiffDataset]
