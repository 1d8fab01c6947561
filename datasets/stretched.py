"""Dataset plugin ``stretched``: 8-bit images that were stretched from dB, mapped back to plausible dB.

Some public Sentinel-1 collections ship only images stretched per image to
8 bits, ``grey = 255 (x - min) / (max - min)`` of the dB values ``x`` (the
OMBRIA flood patches among them). A stretch is linear in dB, so such an
image keeps the scene's structure and its speckle in dB, at a fixed number
of dB per grey level, but not the absolute level nor the level per grey step.
This plugin maps each image back with

    dB = median_db + db_per_level * (grey - median grey of the image)

which restores a typical level and contrast, not the true ones: it is
material for training a codec on structure and speckle (whose models are
trained with random dB gain offsets anyway), never a test set whose dB
values mean anything. Images are read whole to find their median, so every
window of an image is mapped alike.

The defaults come from the calibrated VV training chips shipped in
``data/train`` (Sen1Floods11 Spain and SSL4EO-S12): their VV medians lie at
-9.6 to -10.5 dB, and their 2nd-to-98th percentile spans of 10 to 24 dB
against the OMBRIA patches' median span of 99 grey levels, the 0.1 to 0.2 dB
per level that the collection's provenance gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import rasterio

from harness import DatasetSettings, UserError, hookimpl
from harness_datasets._tiling import Candidate, Layers
from harness_datasets.geotiff import GeoTiffDataset

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
DB_PER_LEVEL = 0.15
MEDIAN_DB = -10.2


class StretchedDataset(GeoTiffDataset):
    """Tiles of 8-bit images stretched from dB, one polarisation per image, mapped back to dB linearly."""

    name = "stretched"
    suffixes = IMAGE_SUFFIXES

    def __init__(self, settings: DatasetSettings, paths: list[str] | str | None = None,
                 db_per_level: float = DB_PER_LEVEL, median_db: float = MEDIAN_DB, stride: int | None = None,
                 max_tiles_per_scene: int | None = None):
        for key, value in (("db_per_level", db_per_level), ("median_db", median_db)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise UserError(f"dataset.{key}: expected a number, got {value!r}")
        if db_per_level <= 0:
            raise UserError(f"dataset.db_per_level: {db_per_level} dB per grey level; expected a positive number")
        if len(settings.polarisations) != 1:
            raise UserError(f"dataset.polarisations: {settings.polarisations}; a stretched image holds one "
                            "polarisation: give one, e.g. polarisations: [VV]")
        self.db_per_level = float(db_per_level)
        self.median_db = float(median_db)
        self.medians: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            super().__init__(settings, paths=paths, stride=stride, max_tiles_per_scene=max_tiles_per_scene)

    def tiles(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            yield from super().tiles()

    def _read_layers(self, layers: dict[str, tuple], candidate: Candidate) -> Layers:
        grey = super()._read_layers(layers, candidate)
        return {pol: self.median_db + self.db_per_level * (values - self._median(*layers[pol]))
                for pol, values in grey.items()}

    def _median(self, raster: rasterio.DatasetReader, band: int) -> float:
        """The whole image's median grey level, read once per image."""
        if raster.name not in self.medians:
            self.medians[raster.name] = float(np.median(raster.read(band)))
        return self.medians[raster.name]


@hookimpl
def harness_datasets():
    return [StretchedDataset]
