"""Find Sentinel-1 SAFE products on disk and reach their files, in a folder or inside a zip.

Products come from the Copernicus Data Space as ``<name>.zip`` holding one
``<name>.SAFE`` folder; users keep them zipped or unpacked. Both are read in
place: XML through ``zipfile``, the measurement TIFF through GDAL's
``/vsizip/``, so a 1.7 GB product is never unpacked to disk. Files of a
polarisation are found by the names the product format fixes
(``measurement/s1a-iw-grd-vh-....tiff``, ``annotation/calibration/calibration-s1a-iw-grd-vh-....xml``),
which every product has even when its manifest lists files it lacks.
"""

from __future__ import annotations

import glob
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness import UserError

MANIFEST = "manifest.safe"
GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class SafeProduct:
    """One product: a ``.SAFE`` folder, or a zip whose members lie under ``root``."""

    source: Path
    root: str
    files: tuple[str, ...]

    @property
    def is_zip(self) -> bool:
        return self.source.suffix.lower() == ".zip"

    @property
    def scene(self) -> str:
        """The product name without ``.SAFE``: the same for a folder and its zip, so tile ids match."""
        folder = PurePosixPath(self.root).name if self.is_zip else self.source.name
        return folder[: -len(".SAFE")] if folder.upper().endswith(".SAFE") else folder

    def describe(self, relative: str) -> str:
        """Where a file of the product is, for messages: ``<zip or folder>/<relative path>``."""
        return f"{self.source}/{self.root}{relative}" if self.is_zip else f"{self.source}/{relative}"

    def gdal_path(self, relative: str) -> str:
        """A path GDAL opens in place, through ``/vsizip/`` for a zip."""
        return f"/vsizip/{self.source}/{self.root}{relative}" if self.is_zip else str(self.source / relative)

    def read_bytes(self, relative: str) -> bytes:
        if not self.is_zip:
            return (self.source / relative).read_bytes()
        try:
            with zipfile.ZipFile(self.source) as archive:
                return archive.read(self.root + relative)
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            raise UserError(f"{self.describe(relative)}: cannot be read from the zip ({exc}); download it again") from exc


@dataclass(frozen=True)
class PolarisationFiles:
    """The product files of one polarisation, relative to the product root."""

    pol: str
    measurement: str
    annotation: str
    calibration: str


def find_products(paths: list[str] | str, base_dir: Path) -> list[Path]:
    """SAFE folders and zips named by ``paths``: each entry a product, a folder of products, or a glob."""
    entries = [paths] if isinstance(paths, str) else paths
    if not isinstance(entries, list) or not entries:
        raise UserError(f"dataset.paths: expected a .SAFE folder, a .zip, a folder of them or a glob, got {paths!r}")
    products: list[Path] = []
    for entry in entries:
        path = (base_dir / str(entry)).expanduser()
        if any(character in str(entry) for character in GLOB_CHARACTERS):
            matches = [Path(match) for match in sorted(glob.glob(str(path))) if _is_product(Path(match))]
            if not matches:
                raise UserError(f"dataset.paths: {path} matches no .SAFE folder or .zip")
            products.extend(matches)
        elif _is_product(path):
            products.append(path)
        elif path.is_dir():
            found = sorted(child for child in path.iterdir() if _is_product(child))
            if not found:
                raise UserError(f"dataset.paths: folder {path} holds no .SAFE folder (with {MANIFEST}) or .zip")
            products.extend(found)
        else:
            raise UserError(f"dataset.paths: {path} not found; paths are relative to the config file's folder")
    return products


def _is_product(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and (path / MANIFEST).is_file()


def open_product(path: Path) -> SafeProduct:
    """List a product's files; a zip that does not open or holds no SAFE is a UserError naming it."""
    if not path.is_file():
        files = tuple(sorted(str(file.relative_to(path).as_posix()) for file in path.rglob("*") if file.is_file()))
        return SafeProduct(path, "", files)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a readable zip ({exc}); download the product again") from exc
    manifests = [member for member in members if PurePosixPath(member).name == MANIFEST and member.count("/") <= 1]
    if not manifests:
        raise UserError(f"{path}: the zip holds no {MANIFEST}; expected one <name>.SAFE folder inside")
    root = manifests[0][: -len(MANIFEST)]
    files = tuple(sorted(member[len(root):] for member in members if member.startswith(root) and not member.endswith("/")))
    return SafeProduct(path, root, files)


FILE_NAME = re.compile(r"^(?:calibration-|noise-)?s1[a-d]-[a-z0-9]+-[a-z]+-(?P<pol>vv|vh|hh|hv)-.*\.(?:tiff?|xml)$",
                       re.IGNORECASE)
"""Measurement and annotation names, e.g. ``s1a-iw-grd-vh-<times>-<orbit>-<take>-002.tiff``."""


def polarisation_files(product: SafeProduct, pol: str) -> PolarisationFiles:
    """The measurement, annotation and calibration files of ``pol``, by the names the SAFE format fixes."""
    return PolarisationFiles(
        pol=pol,
        measurement=_one_file(product, "measurement", "", pol, "measurement"),
        annotation=_one_file(product, "annotation", "", pol, "annotation"),
        calibration=_one_file(product, "annotation/calibration", "calibration-", pol, "calibration XML"),
    )


def noise_file(product: SafeProduct, pol: str) -> str:
    """The thermal noise XML of ``pol``; looked up only when denoising, as products without it still calibrate."""
    return _one_file(product, "annotation/calibration", "noise-", pol, "noise XML")


def _one_file(product: SafeProduct, folder: str, prefix: str, pol: str, what: str) -> str:
    by_pol = _files_by_polarisation(product, folder, prefix)
    if pol.upper() not in by_pol:
        raise UserError(
            f"{product.source}: no {what} for polarisation {pol} in {folder}/ "
            f"(it has: {', '.join(sorted(by_pol)) or 'none'}); fix dataset.polarisations"
        )
    return by_pol[pol.upper()]


def _files_by_polarisation(product: SafeProduct, folder: str, prefix: str) -> dict[str, str]:
    found = {}
    for relative in product.files:
        location = PurePosixPath(relative)
        match = FILE_NAME.match(location.name)
        if str(location.parent) == folder and location.name.startswith(prefix) and match:
            found[match.group("pol").upper()] = relative
    return found
