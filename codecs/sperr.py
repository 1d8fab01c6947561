"""SPERR (wavelet-based error-bounded compressor for scientific data, NCAR) through imagecodecs.

An error-bounded codec beside SZ3, LERC and ZFP: SPERR's point-wise error
mode (``pwe``) codes the tile with a CDF 9/7 wavelet transform and SPECK
bit-plane coding, then codes the pixels that still err by more than
``tolerance`` as outlier corrections, so no pixel errs by more than
``tolerance``, an absolute bound in the normalized [0, 1] domain (1.0 is the
whole dB range of the polarisation). The SPERR stream holds its own
configuration (bound, wavelet levels); SPERR's 10-byte header of dimensions
and sample type is left out, since the decoder is told the tile shape, as the
codec contract allows, and that the samples are float32, which this codec
always codes.

imagecodecs warns that SPERR's 2-D decoder may crash or read past its input
on a bad stream or a wrong shape, so the stream opens with a 4-byte CRC-32
of the tile shape and the SPERR payload, checked before SPERR sees a byte
(0.0005 bpp on a 256x256 tile).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness import Codec, RateKnob, hookimpl
from harness_codecs._error_bounded import ErrorBoundedCodec, checked_payload, with_checksum
from harness_codecs._imagecodecs import LIBRARY_THREADS, library, unavailable_reason


class Sperr(ErrorBoundedCodec):
    """SPERR with the absolute error bound ``tolerance`` on every pixel of the normalized tile."""

    name: ClassVar[str] = "sperr"
    description: ClassVar[str] = "SPERR error-bounded wavelet compressor (imagecodecs), float32, absolute tolerance"
    unavailable: ClassVar[str | None] = unavailable_reason("SPERR")
    rate_knob = RateKnob("tolerance", low=1e-5, high=0.5, more_bits_when_higher=False, geometric=True)
    threads = LIBRARY_THREADS

    def encode(self, tile: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(tile, dtype=np.float32)
        payload = bytes(library().sperr_encode(samples, self.tolerance, "pwe", header=False, numthreads=self.threads))
        return with_checksum(samples.shape, payload)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        payload = checked_payload(self.name, data, shape)
        try:
            decoded = library().sperr_decode(payload, shape=tuple(shape), dtype=np.float32, header=False,
                                             numthreads=self.threads)
        except library().SperrError as error:
            raise ValueError(f"sperr: the stream cannot be decoded: {error}") from error
        return np.asarray(decoded, dtype=np.float32).reshape(shape)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Sperr]
