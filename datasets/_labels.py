"""Ground-truth label rasters beside the scenes of the ``geotiff`` dataset: which file labels which scene, and the
label window of each tile.

Labels are what a flood mapper checks a water map against (Sen1Floods11's hand
labels: 1 water, 0 land, -1 no data). They are read window by window like the
scenes, on the scene's own grid: a label is only ground truth for the pixel it
lies on, so a label raster on any other grid (size, transform or CRS) is
refused rather than resampled.

The option names a folder, and optionally substrings of the file name to
replace: Sen1Floods11 stores ``<site>_LabelHand.tif`` for ``<site>_S1Hand.tif``::

    labels: {folder: data/test/sen1floods11/labels, rename: {S1Hand: LabelHand}}

``labels: <folder>`` alone looks for the scene's own file name there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from harness import UserError

NOT_LABELLED = -1
GRID_TOLERANCE_PX = 0.01
"""How far, in pixels, a corner of the scene may fall from the same corner of the label raster: the Sen1Floods11
label files and chips differ in their pixel size by 6e-18 degrees (a float's rounding), which is no other grid."""
LABEL_OPTION_EXAMPLE = "e.g. labels: {folder: labels, rename: {S1Hand: LabelHand}}"


@dataclass(frozen=True)
class LabelOption:
    """The ``labels`` option, checked: the folder of the label files and the renames that give their names."""

    folder: Path
    rename: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, value: object, base_dir: Path) -> LabelOption:
        """From ``labels: <folder>`` or ``labels: {folder: ..., rename: {old: new}}``; one line when it is wrong."""
        options = {"folder": value} if isinstance(value, str) else value
        if not isinstance(options, dict) or set(options) - {"folder", "rename"} or "folder" not in options:
            raise UserError(f"dataset.labels: expected a folder or {{folder, rename}}, got {value!r}; "
                            f"{LABEL_OPTION_EXAMPLE}")
        rename = options.get("rename") or {}
        if not isinstance(rename, dict) or not all(isinstance(key, str) and key and isinstance(new, str)
                                                  for key, new in rename.items()):
            raise UserError(f"dataset.labels.rename: expected a mapping of text to text, got {rename!r}; "
                            f"{LABEL_OPTION_EXAMPLE}")
        folder = (base_dir / str(options["folder"])).expanduser()
        if not folder.is_dir():
            raise UserError(f"dataset.labels: folder {folder} not found; it is relative to the config file's folder")
        return cls(folder, tuple(rename.items()))

    def path_for(self, file_name: str) -> Path:
        """Where the label of the scene file ``file_name`` would be."""
        for old, new in self.rename:
            file_name = file_name.replace(old, new)
        return self.folder / file_name


def label_paths(option: LabelOption, scene_files: list[tuple[str, Path]]) -> list[Path | None]:
    """The label file of each scene (``(name, one of its files)``), None where there is none; a note names the
    scenes without one, and an error says where it looked when no scene has one (a typo, not unlabelled data)."""
    wanted = [option.path_for(name + path.suffix) for name, path in scene_files]
    found = [path if path.is_file() else None for path in wanted]
    if not any(found):
        looked = ", ".join(str(path) for path in wanted[:3]) + (", ..." if len(wanted) > 3 else "")
        raise UserError(f"dataset.labels: no label file for any scene (looked for {looked}); "
                        f"fix the folder or its rename, {LABEL_OPTION_EXAMPLE}")
    missing = [name for (name, _), path in zip(scene_files, found) if path is None]
    if missing:
        warnings.warn(f"dataset.labels: no label file for {', '.join(missing)}; their tiles have none, and the "
                      "metrics against labels are empty there", stacklevel=2)
    return found


def check_same_grid(labels: rasterio.DatasetReader, scene: rasterio.DatasetReader) -> None:
    """Refuse, in one line, a label raster that is not on the scene's pixel grid (size, CRS or transform)."""
    height, width = scene.shape
    corners = [(0, 0), (width, 0), (0, height), (width, height)]
    to_label_pixels = ~labels.transform @ scene.transform
    offset = max(np.hypot(*np.subtract(to_label_pixels @ corner, corner)) for corner in corners)
    if labels.shape != scene.shape or labels.crs != scene.crs or offset > GRID_TOLERANCE_PX:
        raise UserError(
            f"dataset.labels: {Path(labels.name).name} ({labels.height}x{labels.width}, {labels.crs}) is not on the "
            f"grid of {Path(scene.name).name} ({height}x{width}, {scene.crs}, corners {offset:.3g} px apart); "
            "labels must lie on the raster's own pixels")


def read_labels(labels: rasterio.DatasetReader, window: Window) -> np.ndarray:
    """The window's labels as int16: 1 water, 0 land, -1 for anything else (the file's no-data value, -1)."""
    values = labels.read(1, window=window)
    nodata = labels.nodatavals[0]
    known = (values == 0) | (values == 1)
    if nodata is not None:
        known &= values != nodata
    labels = np.full(values.shape, NOT_LABELLED, dtype=np.int16)
    labels[known] = values[known]
    return labels
