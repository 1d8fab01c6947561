"""Sentinel-1 thermal noise LUTs: parse ``noise-*.xml`` and evaluate the noise power ``N`` on one window.

``N`` is in DN² units, so denoised intensity is ``(DN² - N) / A²``. Two layouts exist:

- IPF 2.9 and later: ``noiseRangeVectorList`` (per line, ``noiseRangeLut`` at
  given pixels) and ``noiseAzimuthVectorList`` (per block of lines x range
  samples, typically one per IW/EW sub-swath, ``noiseAzimuthLut`` at given
  lines). ``N = range(line, pixel) * azimuth(line, pixel)``.
- Older products: ``noiseVectorList`` only (``noiseLut`` per line); the
  azimuth factor is 1.

Like the calibration LUT, it is evaluated over the window being read only:
the range vectors are interpolated bilinearly with the same code
(``CalibrationLut.window``), and each azimuth block contributes a
line-interpolated gain to the part of the window it covers. Pixels that no
azimuth block covers keep a gain of 1, i.e. the range noise alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import numpy as np

from harness import UserError
from harness_datasets._safe_calibration import CalibrationLut, lut_vector


@dataclass(frozen=True)
class AzimuthBlock:
    """The azimuth noise gain of one block, valid over inclusive line and range-sample bounds."""

    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: np.ndarray
    values: np.ndarray

    def apply(self, gain: np.ndarray, row: int, col: int) -> None:
        """Write this block's gain into the part of the window (at ``row``, ``col``) it covers."""
        top, bottom = max(self.first_line, row), min(self.last_line + 1, row + gain.shape[0])
        left, right = max(self.first_sample, col), min(self.last_sample + 1, col + gain.shape[1])
        if top >= bottom or left >= right:
            return
        along_lines = np.interp(np.arange(top, bottom, dtype=np.float64), self.lines, self.values)
        gain[top - row:bottom - row, left - col:right - col] = along_lines[:, None]


@dataclass(frozen=True)
class NoiseLut:
    """Range noise vectors and azimuth blocks (none for products older than IPF 2.9)."""

    range_lut: CalibrationLut
    azimuth_blocks: tuple[AzimuthBlock, ...]

    def window(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``N`` on the ``height`` x ``width`` window at (``row``, ``col``), as float64 in DN² units."""
        gain = np.ones((height, width))
        for block in self.azimuth_blocks:
            block.apply(gain, row, col)
        return self.range_lut.window(row, col, height, width) * gain


def parse_noise_lut(xml_text: bytes | str, source: str) -> NoiseLut:
    """The noise LUT of a ``noise-*.xml`` in either layout; ``source`` names the file in errors."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise UserError(f"{source}: noise XML does not parse ({exc})") from exc
    range_nodes, value_name = list(root.iter("noiseRangeVector")), "noiseRangeLut"
    if not range_nodes:
        range_nodes, value_name = list(root.iter("noiseVector")), "noiseLut"
    vectors = sorted((lut_vector(node, value_name, source, "noise vector", allow_zero=True) for node in range_nodes),
                     key=lambda vector: vector.line)
    if len(vectors) < 2:
        raise UserError(f"{source}: noise XML has {len(vectors)} noiseRangeVector/noiseVector elements; need at least 2")
    blocks = tuple(_azimuth_block(node, source) for node in root.iter("noiseAzimuthVector"))
    return NoiseLut(CalibrationLut(tuple(vectors)), blocks)


def _azimuth_block(node: ElementTree.Element, source: str) -> AzimuthBlock:
    try:
        bounds = [int(node.findtext(name)) for name in
                  ("firstAzimuthLine", "lastAzimuthLine", "firstRangeSample", "lastRangeSample")]
        lines = np.array(node.findtext("line").split(), dtype=np.float64)
        values = np.array(node.findtext("noiseAzimuthLut").split(), dtype=np.float64)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{source}: noiseAzimuthVector without readable bounds, line and noiseAzimuthLut ({exc})") from exc
    if lines.size < 1 or lines.size != values.size or np.any(np.diff(lines) <= 0) or np.any(values < 0):
        raise UserError(
            f"{source}: noiseAzimuthVector starting at line {bounds[0]} needs increasing lines and non-negative "
            f"noiseAzimuthLut values of the same count (got {lines.size} lines, {values.size} values)"
        )
    return AzimuthBlock(*bounds, lines, values)
