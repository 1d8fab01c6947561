"""ZFP (LLNL's compressed floating-point arrays) in fixed-accuracy mode, through imagecodecs.

An error-bounded codec beside SZ3 and LERC: no pixel errs by more than
``tolerance``, an absolute bound in the normalized [0, 1] domain (1.0 is the
whole dB range of the polarisation). ZFP codes 4x4 blocks: a common exponent,
a decorrelating integer transform, and the coefficients' bit planes from the
top down, embedded; fixed-accuracy mode stops at the bit plane
``2**floor(log2(tolerance))``, so ZFP's own tolerance moves in powers of two
(0.3 and 0.26 give the same stream, one bit plane apart is about 1 bpp apart
here). To give the knob every value in between, the codec codes
``tile / tolerance`` (float32) at ZFP tolerance 1, and the decoder multiplies
back: the bound is then ``tolerance`` itself, and the rate moves smoothly with
it. At a power of two the codec codes the same bit planes as ZFP at that
tolerance (a stream of the same length that decodes to the same tile), and in
between its points lie on the curve through ZFP's own. ZFP's fixed-accuracy
mode codes a few bit planes more than the bound needs, to cover the error of
its inverse transform (its largest error on the default tiles is 0.36-0.70
of the tolerance), so its rate stays above about 1.5 bpp on the default
tiles even at the loosest bound, 1.0 (25 dB PSNR): in JPEG 2000's range it
has points from 1.5 to 4 bpp only.

The stream: a 4-byte CRC-32 of the tile shape and the rest, the tolerance as
a float32 (4 bytes), then the ZFP stream with its short header (magic and
mode, 8 bytes; the decoder is told the shape and that the samples are
float32). ZFP's decoder does not check its input (a damaged stream reads past
its end), so the checksum is checked before ZFP sees a byte: 0.001 bpp on a
256x256 tile for the two fields.
"""

from __future__ import annotations

import struct
from typing import ClassVar

import numpy as np

from harness import Codec, RateKnob, hookimpl
from harness_codecs._error_bounded import ErrorBoundedCodec, checked_payload, with_checksum
from harness_codecs._imagecodecs import LIBRARY_THREADS, library, unavailable_reason

TOLERANCE = struct.Struct("<f")


class Zfp(ErrorBoundedCodec):
    """ZFP fixed-accuracy with the absolute error bound ``tolerance`` on every pixel of the normalized tile."""

    name: ClassVar[str] = "zfp"
    description: ClassVar[str] = "ZFP fixed-accuracy (imagecodecs), float32, absolute tolerance"
    unavailable: ClassVar[str | None] = unavailable_reason("ZFP")
    rate_knob = RateKnob("tolerance", low=1e-5, high=1.0, more_bits_when_higher=False, geometric=True)
    threads = LIBRARY_THREADS

    def encode(self, tile: np.ndarray) -> bytes:
        scale = np.float32(self.tolerance)
        scaled = np.ascontiguousarray(np.asarray(tile, dtype=np.float32) / scale, dtype=np.float32)
        payload = TOLERANCE.pack(scale) + bytes(
            library().zfp_encode(scaled, level=1.0, mode="a", header=False, numthreads=self.threads))
        return with_checksum(scaled.shape, payload)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        payload = checked_payload(self.name, data, shape, header_bytes=TOLERANCE.size)
        (scale,) = TOLERANCE.unpack_from(payload)
        if not 0 < scale <= 1:
            raise ValueError(f"zfp: the stream's tolerance {scale!r} is outside (0, 1]")
        try:
            scaled = library().zfp_decode(payload[TOLERANCE.size :], shape=tuple(shape), dtype=np.float32,
                                          numthreads=self.threads)
        except library().ZfpError as error:
            raise ValueError(f"zfp: the stream cannot be decoded: {error}") from error
        return (scaled * np.float32(scale)).astype(np.float32, copy=False).reshape(shape)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Zfp]
