"""SZ3, an error-bounded compressor for scientific floating-point data, through imagecodecs.

The kind of compressor floating-point archives use: SZ3 predicts each sample
from its decoded neighbours (Lorenzo or spline interpolation), quantizes the
prediction residual with step ``2 * tolerance`` and entropy-codes the
integers, so no pixel errs by more than ``tolerance``. The bound is absolute,
in the normalized [0, 1] domain (1.0 is the whole dB range of the
polarisation). The SZ3 stream holds its own configuration (bound,
predictor); the decoder is told the tile shape, as the codec contract allows,
and that the samples are float32, which this codec always codes.

SZ3's decoder trusts its input: on a corrupt stream, or one decoded with
another shape than it was coded with, it aborts the whole process or corrupts
the heap instead of raising. So the stream opens with a 4-byte CRC-32 of the
tile shape and the SZ3 payload, checked before SZ3 sees a byte: a bad stream
becomes a ``ValueError`` for 0.0005 bpp on a 256x256 tile.

ZFP, the other error-bounded compressor of this family, is the ``zfp`` codec
(``codecs/zfp.py``), which scales the tile so that any tolerance is usable.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness import Codec, RateKnob, hookimpl
from harness_codecs._error_bounded import ErrorBoundedCodec, checked_payload, with_checksum
from harness_codecs._imagecodecs import library, unavailable_reason


class Sz3(ErrorBoundedCodec):
    """SZ3 with the absolute error bound ``tolerance`` on every pixel of the normalized tile."""

    name: ClassVar[str] = "sz3"
    description: ClassVar[str] = "SZ3 error-bounded compressor (imagecodecs), float32, absolute tolerance"
    unavailable: ClassVar[str | None] = unavailable_reason("SZ3")
    rate_knob = RateKnob("tolerance", low=1e-5, high=0.5, more_bits_when_higher=False, geometric=True)

    def encode(self, tile: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(tile, dtype=np.float32)
        payload = bytes(library().sz3_encode(samples, mode="abs", abs=self.tolerance))
        return with_checksum(samples.shape, payload)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        payload = checked_payload(self.name, data, shape)
        return library().sz3_decode(payload, shape=tuple(shape), dtype=np.float32).reshape(shape)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Sz3]
