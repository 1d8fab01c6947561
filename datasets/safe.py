"""Dataset plugin ``safe``: calibrated tiles from Sentinel-1 GRD SAFE products, folders or zips.

Pixels are amplitude DN (uint16, zero = no-data at the scene borders);
intensity is ``DN**2 / A**2`` with ``A`` from the product's calibration LUT,
evaluated for each window only (``_safe_calibration``). With ``denoise`` the
thermal noise power ``N`` from the noise LUT (``_safe_noise``) is subtracted
first: ``(DN**2 - N) / A**2``. Where that is negative or zero, the pixel
becomes no-data, as ESA SNAP's ThermalNoiseRemoval sets negatives to 0 (no
signal above the noise floor, undefined in dB); no positive floor is invented.
Windows are chosen as in the ``geotiff`` plugin (``_tiling``), so the same seed
picks tiles the same way.

Why our own reader, after checking both alternatives on the real product in
``../shared/data`` (a full-scene annotation with a 1000 x 1000 measurement crop):

- GDAL's SAFE driver (in rasterio's wheels) offers only the ``UNCALIB``
  subdataset there ("Measurement bands not found" for ``SIGMA0``, because the
  manifest lists a VV measurement the product lacks), reports the annotation's
  16,683 x 26,316 size instead of the TIFF's, and fails to read outside the crop.
- xarray-sentinel parses the calibration LUT correctly but cannot open the
  cropped measurement (its line/pixel coordinates come from the annotation:
  "conflicting sizes for dimension 'pixel'"), and would add xarray, dask,
  rioxarray, xmlschema and fsspec to the dependencies.

The format needs little: find three files per polarisation by their fixed
names, parse one XML list of vectors, interpolate bilinearly, read windows
with rasterio (``/vsizip/`` for zips). That is three small modules with no new
dependency, and it is checked against an independent LUT computation in the tests.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ElementTree
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from harness import DatasetSettings, Tile, UserError, hookimpl
from harness.sar import dn_to_linear, linear_to_db
from harness_datasets._safe_calibration import CALIBRATION_ELEMENTS, CalibrationLut, parse_calibration_lut
from harness_datasets._safe_noise import NoiseLut, parse_noise_lut
from harness_datasets._safe_product import SafeProduct, find_products, noise_file, open_product, polarisation_files
from harness_datasets._tiling import (
    Candidate,
    Layers,
    Sampling,
    bounded_gdal_cache,
    qualifying,
    read_window,
    scene_grids,
    select_windows,
    window_tiles,
)

CALIBRATIONS = (*CALIBRATION_ELEMENTS, "dn")


@dataclass(frozen=True)
class CalibratedBand:
    """One polarisation of one product: its open measurement, the LUT to calibrate it (None for DN)
    and the noise LUT to subtract first (None without ``denoise``)."""

    raster: rasterio.DatasetReader
    lut: CalibrationLut | None
    noise: NoiseLut | None = None

    def read_db(self, row: int, col: int, size: int) -> np.ndarray:
        """Calibrated intensity in dB on one window; zero DN and, denoised, no signal above noise become NaN."""
        dn = read_window(self.raster, 1, Window(col, row, size, size))
        dn[dn == 0] = np.nan
        calibration = 1.0 if self.lut is None else self.lut.window(row, col, size, size)
        if self.noise is None:
            return linear_to_db(dn_to_linear(dn, calibration))
        power = np.maximum(dn * dn - self.noise.window(row, col, size, size), 0.0)
        return linear_to_db(power / np.asarray(calibration) ** 2)


@dataclass(frozen=True)
class Scene:
    """The requested polarisations of one product, all of one size."""

    name: str
    shape: tuple[int, int]
    bands: dict[str, CalibratedBand]

    def read_layers(self, candidate: Candidate, size: int) -> Layers:
        return {pol: band.read_db(candidate.row, candidate.col, size) for pol, band in self.bands.items()}


class SafeDataset:
    """Sentinel-1 GRD products (``.SAFE`` folders or their zips), calibrated to sigma0, beta0, gamma0 or left as DN."""

    name = "safe"

    def __init__(
        self,
        settings: DatasetSettings,
        paths: list[str] | str | None = None,
        calibration: str = "sigma0",
        stride: int | None = None,
        max_tiles_per_scene: int | None = None,
        denoise: bool = False,
    ):
        if paths is None:
            raise UserError("dataset.paths: missing; give .SAFE folders, their .zip files, a folder of them or a glob")
        if calibration not in CALIBRATIONS:
            raise UserError(f"dataset.calibration: {calibration!r} is not one of {', '.join(CALIBRATIONS)}")
        self.settings = settings
        if not isinstance(denoise, bool):
            raise UserError(f"dataset.denoise: expected true or false, got {denoise!r}")
        self.calibration = calibration
        self.denoise = denoise
        self.sampling = Sampling(stride, max_tiles_per_scene)
        self.products = [open_product(path) for path in find_products(paths, settings.base_dir)]

    def tiles(self) -> Iterator[Tile]:
        size = self.settings.tile_size
        with bounded_gdal_cache(), ExitStack() as stack:
            scenes = [self._open_scene(product, stack) for product in self.products]
            grids = scene_grids([scene.shape for scene in scenes], size, self.sampling.stride)
            if not grids:
                shapes = ", ".join(f"{scene.name} {scene.shape[0]}x{scene.shape[1]}" for scene in scenes)
                raise UserError(f"dataset: every product is smaller than tile_size {size} ({shapes})")

            def read(candidate: Candidate) -> Layers:
                return scenes[candidate.file_index].read_layers(candidate, size)

            accepted = select_windows(
                grids,
                read,
                self.settings,
                self.sampling.max_tiles_per_scene,
                names=[str(product.source) for product in self.products],
            )
            if not accepted:
                raise UserError(
                    f"dataset: no {size}px window in {', '.join(str(p.source) for p in self.products)} "
                    f"{qualifying(self.settings.min_valid_fraction)} (non-zero DN); lower dataset.min_valid_fraction"
                )
            for candidate in accepted:
                yield from window_tiles(scenes[candidate.file_index].name, candidate, read(candidate), self.settings)

    def _open_scene(self, product: SafeProduct, stack: ExitStack) -> Scene:
        bands = {pol: self._open_band(product, pol, stack) for pol in self.settings.polarisations}
        shapes = {pol: band.raster.shape for pol, band in bands.items()}
        if len(set(shapes.values())) > 1:
            raise UserError(f"{product.source}: measurements differ in size across polarisations ({shapes})")
        return Scene(product.scene, next(iter(shapes.values())), bands)

    def _open_band(self, product: SafeProduct, pol: str, stack: ExitStack) -> CalibratedBand:
        files = polarisation_files(product, pol)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # radar geometry: GCPs at most, no transform
                raster = stack.enter_context(rasterio.open(product.gdal_path(files.measurement)))
        except RasterioError as exc:
            raise UserError(f"{product.describe(files.measurement)}: not a readable measurement TIFF ({exc})") from exc
        warn_if_cropped(product, files.annotation, raster.shape)
        return CalibratedBand(raster, self._calibration_lut(product, files.calibration), self._noise_lut(product, pol))

    def _calibration_lut(self, product: SafeProduct, calibration_file: str) -> CalibrationLut | None:
        if self.calibration == "dn":
            return None
        source = product.describe(calibration_file)
        return parse_calibration_lut(product.read_bytes(calibration_file), self.calibration, source)

    def _noise_lut(self, product: SafeProduct, pol: str) -> NoiseLut | None:
        if not self.denoise:
            return None
        relative = noise_file(product, pol)
        return parse_noise_lut(product.read_bytes(relative), product.describe(relative))


def annotated_shape(xml_text: bytes, source: str) -> tuple[int, int]:
    """(lines, samples) of the full image, from the annotation's ``imageInformation``."""
    try:
        information = ElementTree.fromstring(xml_text).find("imageAnnotation/imageInformation")
        return int(information.findtext("numberOfLines")), int(information.findtext("numberOfSamples"))
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: annotation XML without a readable imageInformation ({exc})") from exc


def warn_if_cropped(product: SafeProduct, annotation: str, shape: tuple[int, int]) -> None:
    """A measurement smaller than annotated is read as a crop at line 0, pixel 0; a larger one is an error."""
    source = product.describe(annotation)
    lines, samples = annotated_shape(product.read_bytes(annotation), source)
    if shape == (lines, samples):
        return
    if shape[0] > lines or shape[1] > samples:
        raise UserError(f"{source}: the measurement is {shape[0]}x{shape[1]}, larger than the annotated {lines}x{samples}")
    warnings.warn(
        f"{product.source}: measurement is {shape[0]}x{shape[1]} but the annotation says {lines}x{samples}; "
        "reading it as a crop starting at line 0, pixel 0 of the calibration LUT",
        stacklevel=2,
    )


@hookimpl
def harness_datasets():
    return [SafeDataset]
