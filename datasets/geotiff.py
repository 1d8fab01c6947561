"""Dataset plugin ``geotiff``: tiles from GeoTIFF/COG rasters, read window by window.

A GRD scene is about 25,000 x 16,000 pixels, so a scene is never loaded
whole: candidate windows on a grid (``stride`` pixels apart) are shuffled with
the seed and read one at a time, scenes taking turns, until enough
mostly-valid windows are found (``_tiling``). The selection depends on the
seed, the options and the files only, so two runs compare codecs on the same tiles.

A scene is either one file whose bands are the polarisations (``bands``), or,
with ``per_polarisation: true``, one file per polarisation: BigEarthNet,
SSL4EO-S12 and a SAFE product's ``measurement/`` folder store ``..._VV.tif``
beside ``..._VH.tif``. Files are paired by their name with the polarisation
token taken out (``_pairing``), so both layers of a window come from the same
place on the ground.

No-data is NaN, the ``nodata`` option, else the file's no-data value, else 0
in a uint16 raster: Sentinel-1 amplitude DN is uint16 and DN 0 marks no-data,
so an untagged product's empty borders are not read as a 0 dB scene. The blocks
a sparse GeoTIFF does not store are known to hold no-data without reading
them (``_tiling.stored_blocks``), so a mostly empty mosaic is searched in seconds.

``labels`` names ground-truth rasters on the scenes' grids (``_labels``): each
tile then carries the label window of its own pixels, for the metrics that
score a map made from the decoded tile against the truth.
"""

from __future__ import annotations

import glob
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from harness import DatasetSettings, Tile, UserError, hookimpl
from harness.sar import UNITS, to_db
from harness_datasets._labels import LabelOption, check_same_grid, label_paths, read_labels
from harness_datasets._pairing import Scene, pair_by_polarisation, single_file_scenes
from harness_datasets._tiling import (
    Candidate,
    Grid,
    Layers,
    Sampling,
    bounded_gdal_cache,
    qualifying,
    read_window,
    scene_grids,
    select_windows,
    stored_blocks,
    stored_pixels,
    window_tiles,
)

RASTER_SUFFIXES = (".tif", ".tiff")
ZERO_FILL_SHARE = 0.01
"""A window of an untagged dB raster with at least this share of pixels at exactly 0 dB is warned about: valid
sigma0 is almost never exactly 0.0, while some processing chains fill no-data with it."""


class GeoTiffDataset:
    """Tiles from GeoTIFF files, bands mapped to polarisations, in dB, linear intensity or amplitude DN."""

    name = "geotiff"
    suffixes = RASTER_SUFFIXES
    """The file names a folder or a pattern in ``paths`` picks up."""

    def __init__(
        self,
        settings: DatasetSettings,
        paths: list[str] | str | None = None,
        units: str = "db",
        bands: dict[str, int | str] | None = None,
        nodata: float | None = None,
        stride: int | None = None,
        max_tiles_per_scene: int | None = None,
        per_polarisation: bool = False,
        labels: str | dict[str, object] | None = None,
    ):
        if paths is None:
            raise UserError("dataset.paths: missing; list GeoTIFF files or folders (relative to the config file)")
        if units not in UNITS:
            raise UserError(f"dataset.units: {units!r} is not one of {', '.join(UNITS)}")
        if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
            raise UserError(f"dataset.nodata: expected a number (the pixel value that marks no-data), got {nodata!r}")
        if not isinstance(per_polarisation, bool):
            raise UserError(f"dataset.per_polarisation: expected true or false, got {per_polarisation!r}")
        if per_polarisation and bands is not None:
            raise UserError("dataset.bands: not used with per_polarisation: true (each file's band 1 is its "
                            "polarisation); remove bands")
        self.settings = settings
        self.sampling = Sampling(stride, max_tiles_per_scene)
        files = resolve_raster_paths(paths, settings.base_dir, self.suffixes)
        self.scenes = (pair_by_polarisation(files, settings.polarisations) if per_polarisation
                       else single_file_scenes(files, settings.polarisations))
        self.units = units
        if per_polarisation:
            self.bands = dict.fromkeys(settings.polarisations, 1)
        else:
            self.bands = bands or {pol: index + 1 for index, pol in enumerate(settings.polarisations)}
        self.nodata = nodata
        self._zero_fill_warned: set[str] = set()
        self.labels = None if labels is None else LabelOption.parse(labels, settings.base_dir)
        for pol in settings.polarisations:
            if pol not in self.bands:
                raise UserError(f"dataset.bands: no band given for polarisation {pol}; e.g. bands: {{{pol}: 1}}")

    def tiles(self) -> Iterator[Tile]:
        with bounded_gdal_cache(), ExitStack() as stack:
            opened = {path: stack.enter_context(open_raster(path))
                      for scene in self.scenes for path in scene.files.values()}
            layers = [self._scene_layers(scene, opened) for scene in self.scenes]
            truth = self._open_labels(stack, opened)

            def read(candidate: Candidate) -> Layers:
                return self._read_layers(layers[candidate.file_index], candidate)

            for candidate in self._select_windows(layers, read):
                yield from window_tiles(self.scenes[candidate.file_index].name, candidate, read(candidate),
                                        self.settings, self._labels_at(truth[candidate.file_index], candidate))

    def _open_labels(self, stack: ExitStack,
                     opened: dict[Path, rasterio.DatasetReader]) -> list[rasterio.DatasetReader | None]:
        """Each scene's open label raster, checked to lie on the scene's grid; None for a scene without labels
        (every scene without the ``labels`` option)."""
        if self.labels is None:
            return [None] * len(self.scenes)
        firsts = [next(iter(scene.files.values())) for scene in self.scenes]
        paths = label_paths(self.labels, [(scene.name, path) for scene, path in zip(self.scenes, firsts)])
        truth = [None if path is None else stack.enter_context(open_raster(path)) for path in paths]
        for labels, path in zip(truth, firsts):
            if labels is not None:
                check_same_grid(labels, opened[path])
        return truth

    def _labels_at(self, labels: rasterio.DatasetReader | None, candidate: Candidate) -> np.ndarray | None:
        """The label window of the candidate's pixels (same grid, same window), or None without a label raster."""
        return None if labels is None else read_labels(labels, self._window(candidate))

    def _window(self, candidate: Candidate) -> Window:
        size = self.settings.tile_size
        return Window(candidate.col, candidate.row, size, size)

    def _scene_layers(self, scene: Scene, opened: dict[Path, rasterio.DatasetReader]) -> dict[str, tuple]:
        """Each polarisation's open raster and 1-based band index; every layer of a scene has one shape."""
        layers = {pol: (opened[path], band_index(opened[path], path, self.bands[pol]))
                  for pol, path in scene.files.items()}
        shapes = {pol: raster.shape for pol, (raster, _) in layers.items()}
        if len(set(shapes.values())) > 1:
            sizes = ", ".join(f"{scene.files[pol].name} {height}x{width}" for pol, (height, width) in shapes.items())
            raise UserError(f"dataset: the polarisations of scene {scene.name} differ in size ({sizes}); "
                            "pair files of the same product and window")
        return layers

    def _select_windows(self, layers: list[dict[str, tuple]], read: Callable[[Candidate], Layers]) -> list[Candidate]:
        """Read shuffled grid windows, scenes taking turns, until ``max_tiles`` of them are valid enough."""
        shapes = [next(iter(scene.values()))[0].shape for scene in layers]
        grids = scene_grids(shapes, self.settings.tile_size, self.sampling.stride)
        if not grids:
            sizes = ", ".join(f"{next(iter(scene.files.values())).name} {height}x{width}"
                              for scene, (height, width) in zip(self.scenes, shapes))
            raise UserError(f"dataset: every raster is smaller than tile_size {self.settings.tile_size} ({sizes})")
        names = [", ".join(path.name for path in dict.fromkeys(scene.files.values())) for scene in self.scenes]
        accepted = select_windows(
            grids,
            read,
            self.settings,
            self.sampling.max_tiles_per_scene,
            valid_bound=lambda grid: self._valid_bound(layers[grid.file_index], grid),
            names=names,
        )
        if not accepted:
            files = ", ".join(str(path) for scene in self.scenes for path in dict.fromkeys(scene.files.values()))
            raise UserError(
                f"dataset: no {self.settings.tile_size}px window in {files} "
                f"{qualifying(self.settings.min_valid_fraction)}; check nodata and units (in a uint16 raster "
                "without a no-data value DN 0 is no-data), or lower dataset.min_valid_fraction"
            )
        return accepted

    def _read_layers(self, layers: dict[str, tuple], candidate: Candidate) -> Layers:
        """dB values of each polarisation in the window, NaN where there is no data."""
        window = self._window(candidate)
        layers_db = {}
        for pol, (raster, band) in layers.items():
            values = read_window(raster, band, window)
            self._warn_of_zero_fill(raster, band, values)
            layers_db[pol] = self._to_db(raster, band, values)
        return layers_db

    def _warn_of_zero_fill(self, raster: rasterio.DatasetReader, band: int, values: np.ndarray) -> None:
        """Warn once per file where a dB raster that names no no-data value has many pixels at exactly
        0 dB: read as data, a 0-filled border is a flat bright region that every codec spends bits on and every
        metric scores, so the user should say whether 0 is no-data."""
        if self.units != "db" or raster.name in self._zero_fill_warned or self._nodata(raster, band) is not None:
            return
        share = np.count_nonzero(values == 0) / max(values.size, 1)
        if share >= ZERO_FILL_SHARE:
            self._zero_fill_warned.add(raster.name)
            warnings.warn(f"dataset: {raster.name} band {band}: {share:.0%} of a window's pixels are exactly 0 dB and "
                          "the file names no no-data value; if 0 marks no-data there (some processing chains fill "
                          "with it), set dataset.nodata: 0", stacklevel=2)

    def _to_db(self, raster: rasterio.DatasetReader, band: int, values: np.ndarray) -> np.ndarray:
        """dB values of a band's float64 pixel values (changed in place), NaN at no-data."""
        nodata = self._nodata(raster, band)
        if nodata is not None and not np.isnan(nodata):
            values[values == nodata] = np.nan
        return to_db(values, self.units)

    def _nodata(self, raster: rasterio.DatasetReader, band: int) -> float | None:
        """The ``nodata`` option, else the file's no-data value, else 0 for uint16 (amplitude DN, where 0 is
        no-data), else none."""
        if self.nodata is not None:
            return self.nodata
        tagged = raster.nodatavals[band - 1]
        if tagged is None and raster.dtypes[band - 1] == "uint16":
            return 0
        return tagged

    def _valid_bound(self, layers: dict[str, tuple], grid: Grid) -> np.ndarray | None:
        """The most valid pixels each window of the grid can have in every polarisation, from the blocks the
        files store; None when they store all (or do not say)."""
        most = None
        for raster, band in layers.values():
            stored = self._stored_blocks(raster, band)
            if stored is not None:
                pixels = stored_pixels(stored, raster.block_shapes[band - 1], raster.shape, grid)
                most = pixels if most is None else np.minimum(most, pixels)
        return most

    def _stored_blocks(self, raster: rasterio.DatasetReader, band: int) -> np.ndarray | None:
        """``stored_blocks`` where what GDAL reads for a block left out (the file's no-data value, or 0) is
        no-data here; None where it would be a valid value (0 dB in an untagged float raster)."""
        fill = raster.nodatavals[band - 1]
        fill_db = self._to_db(raster, band, np.array([[0.0 if fill is None else fill]]))
        return None if np.isfinite(fill_db).any() else stored_blocks(raster, band)


def resolve_raster_paths(paths: list[str] | str, base_dir: Path,
                         suffixes: tuple[str, ...] = RASTER_SUFFIXES) -> list[Path]:
    """Files, folders (every file with one of ``suffixes`` inside, sorted) and globs, relative to the config's
    folder."""
    kinds = "/".join(suffixes)
    entries = [paths] if isinstance(paths, str) else paths
    if not isinstance(entries, list) or not entries:
        raise UserError(f"dataset.paths: expected a file, a folder or a list of them, got {paths!r}")
    files: list[Path] = []
    for entry in entries:
        path = (base_dir / str(entry)).expanduser()
        if glob.has_magic(str(entry)):
            found = sorted(Path(match) for match in glob.glob(str(path)) if Path(match).suffix.lower() in suffixes)
            if not found:
                raise UserError(f"dataset.paths: pattern {path} matches no {kinds} file")
            files.extend(found)
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
            if not found:
                raise UserError(f"dataset.paths: folder {path} holds no {kinds} files")
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
        if descriptions.count(band) > 1:
            indexes = [index + 1 for index, description in enumerate(descriptions) if description == band]
            raise UserError(f"{path}: bands {indexes} are all named {band!r}; give dataset.bands by index, "
                            f"e.g. {{{band}: {indexes[0]}}}")
        return descriptions.index(band) + 1
    if isinstance(band, bool) or not isinstance(band, int) or not 1 <= band <= raster.count:
        raise UserError(f"{path}: band {band!r} does not exist (the file has {raster.count}); fix dataset.bands")
    return band


@hookimpl
def harness_datasets():
    return [GeoTiffDataset]
