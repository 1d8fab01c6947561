"""Which files make up one scene: a multi-band file, or one file per polarisation paired by name.

Sentinel-1 archives mostly store one raster per polarisation: a SAFE
product's ``measurement/s1a-iw-grd-vh-...tiff`` beside ``...-vv-...``,
BigEarthNet-S1 and SSL4EO-S12 patches as ``<id>_VV.tif`` and ``<id>_VH.tif``.
Such files belong together when their names are equal once the polarisation
token is taken out; that name (without the token) names the scene.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import UserError

POLARISATION_TOKEN = re.compile(r"(?<![A-Za-z0-9])(VV|VH|HH|HV)(?![A-Za-z0-9])", re.IGNORECASE)
"""A polarisation name standing alone between separators (``_VV.``, ``-vh-``), not inside a word."""


@dataclass(frozen=True)
class Scene:
    """One scene: its name (in tile ids) and the file holding each polarisation."""

    name: str
    files: dict[str, Path]


def single_file_scenes(files: list[Path], polarisations: tuple[str, ...]) -> list[Scene]:
    """Each file is a scene holding every polarisation in its bands."""
    return [Scene(path.stem, dict.fromkeys(polarisations, path)) for path in files]


def pair_by_polarisation(files: list[Path], polarisations: tuple[str, ...]) -> list[Scene]:
    """Group one-polarisation files into scenes, in the order their first file was listed.

    Files of polarisations the config does not ask for are left out (a VV-only
    study may point at folders that also hold VH). A scene missing one of the
    asked polarisations, or a file whose name carries no polarisation token,
    is a ``UserError`` naming the file.
    """
    scenes: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in files:
        matches = list(POLARISATION_TOKEN.finditer(path.stem))
        if not matches:
            raise UserError(f"dataset.per_polarisation: {path} has no polarisation (VV, VH, HH or HV) in its name; "
                            "name files like <scene>_VV.tif, or leave per_polarisation out for multi-band files")
        token = matches[-1]
        pol = token.group(1).upper()
        if pol not in polarisations:
            continue
        key = (path.parent, path.stem[:token.start()] + "{pol}" + path.stem[token.end():])
        layers = scenes.setdefault(key, {})
        if pol in layers:
            raise UserError(f"dataset.per_polarisation: {layers[pol]} and {path} are both the {pol} file of one "
                            "scene; list each file once")
        layers[pol] = path
    if not scenes:
        raise UserError(f"dataset.per_polarisation: none of {', '.join(str(path) for path in files)} holds "
                        f"polarisation {' or '.join(polarisations)}; check dataset.polarisations")
    result = []
    for (_, pattern), layers in scenes.items():
        missing = [pol for pol in polarisations if pol not in layers]
        if missing:
            example = next(iter(layers.values()))
            raise UserError(f"dataset.per_polarisation: {example} has no {missing[0]} partner "
                            f"({pattern.replace('{pol}', missing[0])}.tif expected beside it); add it, or set "
                            f"dataset.polarisations to {sorted(layers)}")
        result.append(Scene(_scene_name(pattern), {pol: layers[pol] for pol in polarisations}))
    return result


def _scene_name(pattern: str) -> str:
    """The shared name without the token and the separator before it: ``A_{pol}`` -> ``A``, ``a-{pol}-b`` -> ``a-b``."""
    name = re.sub(r"[_\-. ]?\{pol\}", "", pattern, count=1)
    return name.strip("_-. ") or pattern.replace("{pol}", "")
