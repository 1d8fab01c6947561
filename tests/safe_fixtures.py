"""Small SAFE-like Sentinel-1 GRD products that tests build in a temporary folder.

Each product has what the ``safe`` dataset reads (``manifest.safe``, one
annotation, calibration XML and uint16 DN measurement per polarisation, with
the names the SAFE format fixes, and optionally a thermal noise XML in either
layout) and keeps the LUTs it wrote, so a test can compute the expected sigma0
independently of the reader.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

PRODUCT_NAME = "S1A_IW_GRDH_1SDV_20200101T000000_20200101T000025_030000_036000_ABCD"
FILE_STEM = "s1a-{mode}-grd-{pol}-20200101t000000-20200101t000025-030000-036000-00{index}"
MEAN_SIGMA0_DB = {"VV": -11.0, "VH": -18.0, "HH": -10.0, "HV": -19.0}
BORDER_COLUMNS = 10
"""Zero-DN columns on the left, as GRD products have along their swath edges."""


@dataclass(frozen=True)
class CalibrationGrid:
    """The LUT a fixture wrote: values of each quantity at ``lines`` x ``pixels``."""

    lines: np.ndarray
    pixels: np.ndarray
    sigma0: np.ndarray
    beta0: np.ndarray
    gamma0: np.ndarray


@dataclass(frozen=True)
class NoiseGrid:
    """The noise LUT a fixture wrote: range noise at ``lines`` x ``pixels`` and, for the IPF >= 2.9
    layout, an azimuth gain that is linear in the line, ``offset + slope * line``, per block of range samples."""

    lines: np.ndarray
    pixels: np.ndarray
    range_values: np.ndarray
    blocks: tuple[tuple[int, int, float, float], ...]
    """(first sample, last sample, offset, slope) per azimuth block; empty for the legacy layout."""


NOISE_LAYOUTS = ("azimuth", "legacy")
"""``azimuth``: noiseRangeVectorList + noiseAzimuthVectorList (IPF >= 2.9); ``legacy``: noiseVectorList only."""


@dataclass(frozen=True)
class SafeFixture:
    """A written product: its folder, the DN of each polarisation and the LUTs they share."""

    path: Path
    dn: dict[str, np.ndarray]
    grid: CalibrationGrid
    noise: NoiseGrid | None = None


def build_safe_product(parent: Path, shape: tuple[int, int] = (96, 128), polarisations: tuple[str, ...] = ("VV", "VH"),
                       annotated_shape: tuple[int, int] | None = None, seed: int = 0,
                       noise_layout: str | None = None, mode: str = "iw") -> SafeFixture:
    """Write ``<parent>/<PRODUCT_NAME>.SAFE``; ``annotated_shape`` larger than ``shape`` makes it a crop,
    ``noise_layout`` (one of ``NOISE_LAYOUTS``) adds a noise XML per polarisation; ``mode`` is the
    acquisition mode in the names (``iw`` or ``ew``)."""
    product = parent / f"{product_name(mode)}.SAFE"
    for folder in ("measurement", "annotation/calibration"):
        (product / folder).mkdir(parents=True, exist_ok=True)
    grid = calibration_grid(annotated_shape or shape)
    noise = noise_grid(annotated_shape or shape, noise_layout) if noise_layout else None
    rng = np.random.default_rng(seed)
    dn = {}
    for index, pol in enumerate(polarisations, start=1):
        stem = FILE_STEM.format(mode=mode, pol=pol.lower(), index=index)
        dn[pol] = speckled_dn(rng, shape, MEAN_SIGMA0_DB[pol], grid)
        write_measurement(product / "measurement" / f"{stem}.tiff", dn[pol])
        (product / "annotation" / f"{stem}.xml").write_text(annotation_xml(pol, annotated_shape or shape))
        (product / "annotation" / "calibration" / f"calibration-{stem}.xml").write_text(calibration_xml(pol, grid))
        if noise is not None:
            noise_text = noise_xml(pol, noise, (annotated_shape or shape)[0])
            (product / "annotation" / "calibration" / f"noise-{stem}.xml").write_text(noise_text)
    (product / "manifest.safe").write_text(manifest_xml(polarisations, mode))
    return SafeFixture(product, dn, grid, noise)


def zip_product(product: Path, destination: Path) -> Path:
    """Zip a product the way the Copernicus Data Space ships it: one ``<name>.SAFE/`` folder inside."""
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(product.rglob("*")):
            archive.write(file, f"{product.name}/{file.relative_to(product).as_posix()}")
    return destination


def calibration_grid(shape: tuple[int, int]) -> CalibrationGrid:
    """A LUT whose vectors overhang the image, as real ones do, varying along both lines and pixels."""
    height, width = shape
    lines = np.linspace(0, height + 20, 5).round().astype(int)
    pixels = np.linspace(0, width + 10, 7).round().astype(int)
    line_trend, pixel_trend = np.meshgrid(lines / (height + 20), pixels / (width + 10), indexing="ij")
    sigma0 = 500.0 + 150.0 * pixel_trend + 40.0 * line_trend + 25.0 * line_trend * pixel_trend
    return CalibrationGrid(lines, pixels, sigma0, beta0=np.full_like(sigma0, 470.0), gamma0=sigma0 * 1.1)


def noise_grid(shape: tuple[int, int], layout: str) -> NoiseGrid:
    """Range noise falling with the pixel (about a third of the VH signal power) over a grid that overhangs
    the image; with ``azimuth``, two blocks split at the middle sample, each with its own gain slope."""
    height, width = shape
    lines = np.linspace(0, height + 20, 4).round().astype(int)
    pixels = np.linspace(0, width + 10, 6).round().astype(int)
    line_trend, pixel_trend = np.meshgrid(lines / (height + 20), pixels / (width + 10), indexing="ij")
    range_values = np.round(2500.0 - 1500.0 * pixel_trend + 300.0 * line_trend, 2)  # exact in the XML's 7 digits
    middle = width // 2
    blocks = ((0, middle - 1, 1.2, -0.004), (middle, width - 1, 0.8, 0.003)) if layout == "azimuth" else ()
    return NoiseGrid(lines, pixels, range_values, blocks)


def speckled_dn(rng: np.random.Generator, shape: tuple[int, int], mean_db: float, grid: CalibrationGrid) -> np.ndarray:
    """DN for Gamma-speckled sigma0 around ``mean_db``, through a rough A; zero in the border columns."""
    intensity = 10 ** (mean_db / 10) * rng.gamma(4.4, 1 / 4.4, size=shape)
    amplitude = np.sqrt(intensity) * grid.sigma0.mean()
    dn = np.clip(np.round(amplitude), 1, 65535).astype(np.uint16)
    dn[:, :BORDER_COLUMNS] = 0
    return dn


def write_measurement(path: Path, dn: np.ndarray) -> None:
    """Radar geometry, as in a real product: no CRS and no transform."""
    profile = {"driver": "GTiff", "height": dn.shape[0], "width": dn.shape[1], "count": 1, "dtype": "uint16"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as raster:
            raster.write(dn, 1)


def annotation_xml(pol: str, shape: tuple[int, int]) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
  <adsHeader><productType>GRD</productType><polarisation>{pol}</polarisation><mode>IW</mode></adsHeader>
  <imageAnnotation>
    <imageInformation>
      <numberOfSamples>{shape[1]}</numberOfSamples>
      <numberOfLines>{shape[0]}</numberOfLines>
    </imageInformation>
  </imageAnnotation>
</product>
"""


def calibration_xml(pol: str, grid: CalibrationGrid) -> str:
    pixels = " ".join(str(pixel) for pixel in grid.pixels)
    count = len(grid.pixels)
    vectors = "".join(
        f"""
    <calibrationVector>
      <line>{line}</line>
      <pixel count="{count}">{pixels}</pixel>
      <sigmaNought count="{count}">{_numbers(grid.sigma0[index])}</sigmaNought>
      <betaNought count="{count}">{_numbers(grid.beta0[index])}</betaNought>
      <gamma count="{count}">{_numbers(grid.gamma0[index])}</gamma>
      <dn count="{count}">{_numbers(grid.beta0[index])}</dn>
    </calibrationVector>"""
        for index, line in enumerate(grid.lines)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<calibration>
  <adsHeader><productType>GRD</productType><polarisation>{pol}</polarisation><mode>IW</mode></adsHeader>
  <calibrationVectorList count="{len(grid.lines)}">{vectors}
  </calibrationVectorList>
</calibration>
"""


def noise_xml(pol: str, noise: NoiseGrid, height: int) -> str:
    """A noise XML in the fixture's layout; azimuth vectors sample every 7th line and the last one."""
    vector, value = ("noiseRangeVector", "noiseRangeLut") if noise.blocks else ("noiseVector", "noiseLut")
    pixels = " ".join(str(pixel) for pixel in noise.pixels)
    count = len(noise.pixels)
    ranges = "".join(
        f"""
    <{vector}><line>{line}</line><pixel count="{count}">{pixels}</pixel>
      <{value} count="{count}">{_numbers(noise.range_values[index])}</{value}></{vector}>"""
        for index, line in enumerate(noise.lines)
    )
    range_list = f'<{vector}List count="{len(noise.lines)}">{ranges}\n  </{vector}List>'
    azimuth_lines = np.unique(np.append(np.arange(0, height, 7), height - 1))
    azimuths = "".join(
        f"""
    <noiseAzimuthVector><swath>IW{index}</swath><firstAzimuthLine>0</firstAzimuthLine>
      <firstRangeSample>{first}</firstRangeSample><lastAzimuthLine>{height - 1}</lastAzimuthLine>
      <lastRangeSample>{last}</lastRangeSample>
      <line count="{azimuth_lines.size}">{" ".join(str(line) for line in azimuth_lines)}</line>
      <noiseAzimuthLut count="{azimuth_lines.size}">{_numbers(offset + slope * azimuth_lines)}</noiseAzimuthLut>
    </noiseAzimuthVector>"""
        for index, (first, last, offset, slope) in enumerate(noise.blocks, start=1)
    )
    azimuth_list = f'\n  <noiseAzimuthVectorList count="{len(noise.blocks)}">{azimuths}\n  </noiseAzimuthVectorList>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<noise>
  <adsHeader><productType>GRD</productType><polarisation>{pol}</polarisation><mode>IW</mode></adsHeader>
  {range_list}{azimuth_list if noise.blocks else ""}
</noise>
"""


def product_name(mode: str) -> str:
    return PRODUCT_NAME.replace("_IW_", f"_{mode.upper()}_")


def manifest_xml(polarisations: tuple[str, ...], mode: str) -> str:
    objects = "".join(
        f'\n    <dataObject ID="measurement{pol}"><byteStream><fileLocation href="./measurement/'
        f'{FILE_STEM.format(mode=mode, pol=pol.lower(), index=index)}.tiff"/></byteStream></dataObject>'
        for index, pol in enumerate(polarisations, start=1)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1">
  <dataObjectSection>{objects}
  </dataObjectSection>
</xfdu:XFDU>
"""


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{value:.6e}" for value in values)
