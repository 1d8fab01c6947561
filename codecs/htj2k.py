"""HTJ2K (JPEG 2000 Part 15, high-throughput block coder; OpenJPH through imagecodecs).

HTJ2K keeps JPEG 2000's wavelet and codestream syntax but swaps the EBCOT
block coder for a much faster one, trading a little compression for speed:
the comparison with ``jpeg2000`` on the same tiles shows what that trade is
worth on SAR. The tile is quantized to 16-bit samples as for ``jpeg2000`` and
written as a raw codestream. OpenJPH has no rate control: the knob is the
irreversible wavelet's quantization step ``qstep`` (in units of the full
16-bit range), so the rate is whatever the tile needs at that step;
``lossless: true`` selects the reversible 5/3 wavelet instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._imagecodecs import LIBRARY_THREADS, library, unavailable_reason
from harness_codecs._j2k_codestream import check_codestream
from harness_codecs._samples import SAMPLE_BITS, from_samples, to_samples

QSTEP = CodecOption("qstep", float, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True,
                    required=True, description="the irreversible wavelet's quantization step, in units of the "
                                              "full 16-bit range")


class Htj2k(Codec):
    """HTJ2K at quantization step ``qstep`` in (0, 1), or lossless."""

    name: ClassVar[str] = "htj2k"
    description: ClassVar[str] = "HTJ2K (OpenJPH via imagecodecs), 16-bit samples, raw codestream"
    unavailable: ClassVar[str | None] = unavailable_reason("HTJ2K")
    rate_knob = RateKnob("qstep", low=1e-5, high=0.9, more_bits_when_higher=False, geometric=True)
    options = (QSTEP, CodecOption("lossless", bool, description="the reversible 5/3 wavelet instead of a step"))
    example_point = {"qstep": 0.1}

    def __init__(self, qstep: float | None = None, lossless: bool = False):
        self.qstep = _rate_point(qstep, lossless)
        self.lossless = self.qstep is None
        self.precision = f"uint{SAMPLE_BITS}"
        self.threads = LIBRARY_THREADS  # imagecodecs gives OpenJPH no thread option: it codes on one

    def encode(self, tile: np.ndarray) -> bytes:
        samples = to_samples(tile)
        return bytes(library().htj2k_encode(samples, level=self.qstep))

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        check_codestream(data, shape, self.name)
        try:
            with _ignored_errors() as ignored:
                samples = library().htj2k_decode(data)
        except (library().Htj2kError, RuntimeError) as error:
            raise ValueError(f"htj2k: the codestream cannot be decoded: {error}") from error
        if ignored:
            raise ValueError(f"htj2k: OpenJPH reported {len(ignored)} error(s) while decoding the codestream "
                             f"({ignored[0].exc_value}); the image it returned is not trusted")
        return from_samples(samples, shape, "htj2k")


@contextmanager
def _ignored_errors() -> Iterator[list]:
    """The exceptions that imagecodecs' OpenJPH callbacks raise but cannot propagate.

    Python hands such "Exception ignored in ..." errors to ``sys.unraisablehook``,
    which by default only prints them, and the decode returns a degraded image:
    catching them there turns OpenJPH's errors into a refusal.
    """
    caught: list = []
    previous, sys.unraisablehook = sys.unraisablehook, caught.append
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def _rate_point(qstep: float | None, lossless: bool) -> float | None:
    """Exactly one of ``qstep`` and ``lossless`` names the point, so a YAML typo cannot pass silently."""
    if lossless:
        if qstep is not None:
            raise ValueError("htj2k: give either qstep or lossless=true, not both")
        return None
    if qstep is None:
        raise ValueError(f"htj2k option qstep=None; accepted: {QSTEP.accepted}, or lossless=true")
    return float(qstep)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Htj2k]
