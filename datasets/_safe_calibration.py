"""Sentinel-1 calibration LUTs: parse ``calibration-*.xml`` and evaluate ``A`` on one window.

The LUT is sparse (for IW GRDH, 27 vectors of 659 pixels for a 16,683 x
26,316 scene), so it is evaluated only over the rows and columns of the window
being read: each vector is interpolated over the window's pixels, then the
vectors are blended linearly over its lines. That is bilinear interpolation on
the LUT grid, and it also holds when vectors sample different pixels.
Positions beyond the first or last vector take the nearest vector's value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import numpy as np

from harness import UserError

CALIBRATION_ELEMENTS = {"sigma0": "sigmaNought", "beta0": "betaNought", "gamma0": "gamma"}
"""The ``calibration`` option's values that use a LUT, and the XML element holding each."""


@dataclass(frozen=True)
class CalibrationVector:
    """One LUT vector: ``A`` at the given pixels of one line."""

    line: int
    pixels: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class CalibrationLut:
    """The vectors of one calibration quantity, sorted by line."""

    vectors: tuple[CalibrationVector, ...]

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``A`` on the ``height`` x ``width`` window at (``row``, ``col``), as float64."""
        columns = np.arange(col, col + width, dtype=np.float64)
        along_pixels = np.stack([np.interp(columns, vector.pixels, vector.values) for vector in self.vectors])
        lines = np.array([vector.line for vector in self.vectors], dtype=np.float64)
        rows = np.arange(row, row + height, dtype=np.float64)
        upper = np.clip(np.searchsorted(lines, rows, side="right"), 1, len(lines) - 1)
        lower = upper - 1
        weight = np.clip((rows - lines[lower]) / (lines[upper] - lines[lower]), 0.0, 1.0)[:, None]
        return along_pixels[lower] * (1.0 - weight) + along_pixels[upper] * weight


def parse_calibration_lut(xml_text: bytes | str, quantity: str, source: str) -> CalibrationLut:
    """The LUT of ``quantity`` (sigma0, beta0 or gamma0) from a calibration XML; ``source`` names it in errors."""
    element_name = CALIBRATION_ELEMENTS[quantity]
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise UserError(f"{source}: calibration XML does not parse ({exc})") from exc
    vectors = [lut_vector(node, element_name, source, "calibrationVector") for node in root.iter("calibrationVector")]
    if len(vectors) < 2:
        raise UserError(f"{source}: calibration XML has {len(vectors)} calibrationVector elements; need at least 2")
    vectors.sort(key=lambda vector: vector.line)
    lines = [vector.line for vector in vectors]
    if len(set(lines)) != len(lines):
        raise UserError(f"{source}: calibration vectors repeat a line ({lines})")
    return CalibrationLut(tuple(vectors))


def lut_vector(node: ElementTree.Element, value_name: str, source: str, kind: str,
               allow_zero: bool = False) -> CalibrationVector:
    """One LUT row (a line, its pixel positions and values), as calibration and noise XML both write them.

    Calibration constants must be positive (they divide); noise powers may be zero.
    """
    try:
        line = int(node.findtext("line"))
        pixels = np.array(node.findtext("pixel").split(), dtype=np.float64)
        values = np.array(node.findtext(value_name).split(), dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{source}: {kind} without a readable line, pixel and {value_name} ({exc})") from exc
    out_of_range = np.any(values < 0) if allow_zero else np.any(values <= 0)
    if pixels.size < 2 or pixels.size != values.size or np.any(np.diff(pixels) <= 0) or out_of_range:
        sign = "non-negative" if allow_zero else "positive"
        raise UserError(
            f"{source}: {kind} at line {line} needs increasing pixels and {sign} {value_name} "
            f"values of the same count (got {pixels.size} pixels, {values.size} values)"
        )
    return CalibrationVector(line, pixels, values)
