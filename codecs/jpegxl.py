"""JPEG XL (libjxl through imagecodecs) at 16-bit input.

The tile is quantized to 16-bit unsigned samples, as for ``jpeg2000``, and
coded as a bare JPEG XL codestream (no ISOBMFF container, so no box bytes
count against the rate), except at distance 0: libjxl marks a 16-bit
lossless stream as codestream level 10, which only a container's ``jxll`` box
can signal, so lossless streams carry a container (a few dozen bytes, under
0.01 bpp on a 256x256 tile). The rate knob is libjxl's Butteraugli ``distance``:
0 is mathematically lossless (modular mode), larger is coarser, up to 25,
libjxl's limit. Lossy points use the VarDCT mode at libjxl's default effort.
Butteraugli models human vision on display images, not the dB statistics of
SAR, so equal distances do not mean equal quality across polarisations.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._imagecodecs import LIBRARY_THREADS, library, unavailable_reason
from harness_codecs._samples import SAMPLE_BITS, from_samples, to_samples

MAX_DISTANCE = 25.0
SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")
"""A bare codestream, or the container that lossless 16-bit streams need."""


class JpegXl(Codec):
    """JPEG XL at Butteraugli ``distance`` (0: lossless) on the tile quantized to 16 bits."""

    name: ClassVar[str] = "jpegxl"
    description: ClassVar[str] = "JPEG XL (libjxl via imagecodecs), 16-bit samples, bare codestream"
    unavailable: ClassVar[str | None] = unavailable_reason("JPEGXL")
    rate_knob = RateKnob("distance", low=0.05, high=MAX_DISTANCE, more_bits_when_higher=False, geometric=True)
    options = (CodecOption("distance", float, minimum=0, maximum=MAX_DISTANCE, required=True,
                           description="libjxl's Butteraugli distance; 0: lossless"),)
    example_point = {"distance": 2}

    def __init__(self, distance: float):
        self.distance = float(distance)
        self.lossless = self.distance == 0
        self.precision = f"uint{SAMPLE_BITS}"
        self.threads = LIBRARY_THREADS

    def encode(self, tile: np.ndarray) -> bytes:
        samples = to_samples(tile)
        if self.distance == 0:
            return bytes(library().jpegxl_encode(samples, lossless=True, numthreads=self.threads))
        return bytes(library().jpegxl_encode(samples, distance=self.distance, usecontainer=False,
                                             numthreads=self.threads))

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        if not data.startswith(SIGNATURES):
            raise ValueError("jpegxl: not a JPEG XL stream (neither codestream nor container signature)")
        try:
            samples = library().jpegxl_decode(data, numthreads=self.threads)
        except (library().JpegxlError, RuntimeError) as error:
            raise ValueError(f"jpegxl: the codestream cannot be decoded: {error}") from error
        return from_samples(samples, shape, "jpegxl")


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [JpegXl]
