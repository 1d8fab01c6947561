"""AVIF (AV1 still image, libavif + libaom through imagecodecs), 10- or 12-bit monochrome.

The tile is quantized to ``bits`` (10 or 12) bit unsigned samples and coded as
a 4:0:0 (luma only) AV1 image in a minimal AVIF file. imagecodecs'
``avif_encode`` forces every single-channel input to lossless (its quality,
pixel format, speed and codec arguments are all ignored for gray arrays: 9.5
bpp at 10 bits, whatever the quality), so lossy points hand it the gray tile
replicated into R=G=B with ``pixelformat=YUV400``: libavif's RGB-to-YUV step
then writes luma only, which for R=G=B is the gray value itself (BT.601 full
range, whose luma weights sum to 1), no chroma planes are coded, and the file
is a true monochrome AVIF that decodes to one plane. ``quality=100`` takes the
gray path and so gets libaom's lossless 4:0:0 mode (an RGB input would force
lossless 4:4:4 with three planes, 20% larger). The rate knob is libavif's
``quality`` (0-100, 100 lossless); ``speed`` is libaom's effort, 0 slowest to
10, default 6 as in ``avifenc`` (libavif's own default is near the slowest,
about 0.01 MPix/s on a 256x256 tile, too slow to benchmark). The bit depth travels in the
stream's ``av1C`` box, from which the decoder scales back to [0, 1]. libavif
writes no Exif or XMP item; the container (ftyp, meta with the item
properties the decoder needs) costs about 270 bytes, 0.03 bpp on a 256x256
tile. Pillow's AVIF plugin decodes these streams (to 8 bits) but only writes
8-bit AVIF, so it could not be the encoder.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._heif import child, image_size, item_properties
from harness_codecs._imagecodecs import LIBRARY_THREADS, library, unavailable_reason
from harness_codecs._samples import from_samples, to_samples

BITS = (10, 12)
LOSSLESS_QUALITY = 100
MAX_SPEED = 10
DEFAULT_SPEED = 6
FILE_TYPE = b"ftypavif"
"""Bytes 4-12 of an AVIF file: the ftyp box with major brand ``avif``."""


class Avif(Codec):
    """AVIF at libavif ``quality`` (0-100; 100: lossless), monochrome, ``bits`` 10 or 12."""

    name: ClassVar[str] = "avif"
    description: ClassVar[str] = "AVIF (libavif/libaom via imagecodecs), 10/12-bit monochrome 4:0:0"
    unavailable: ClassVar[str | None] = unavailable_reason("AVIF")
    rate_knob = RateKnob("quality", low=0, high=LOSSLESS_QUALITY - 1, more_bits_when_higher=True, step=1)
    options = (
        CodecOption("quality", int, minimum=0, maximum=LOSSLESS_QUALITY, required=True,
                    description="libavif quality; 100: lossless"),
        CodecOption("bits", int, choices=BITS, description="sample precision"),
        CodecOption("speed", int, minimum=0, maximum=MAX_SPEED, description="libaom's effort, 0 slowest to 10 fastest"),
    )
    example_point = {"quality": 50}

    def __init__(self, quality: int, bits: int = 12, speed: int = DEFAULT_SPEED):
        self.quality = quality
        self.lossless = self.quality == LOSSLESS_QUALITY
        self.bits = bits
        self.speed = speed
        self.precision = f"uint{self.bits}"
        self.threads = LIBRARY_THREADS

    def encode(self, tile: np.ndarray) -> bytes:
        samples = to_samples(tile, self.bits)
        if self.quality == LOSSLESS_QUALITY:
            image, pixelformat = samples, None  # gray input: libaom lossless 4:0:0
        else:
            image, pixelformat = np.repeat(samples[..., np.newaxis], 3, axis=2), library().AVIF.PIXEL_FORMAT.YUV400
        return bytes(library().avif_encode(
            image, level=self.quality, speed=self.speed, bitspersample=self.bits, pixelformat=pixelformat,
            numthreads=self.threads,
        ))

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        if data[4:12] != FILE_TYPE:
            raise ValueError("avif: not an AVIF file (no 'ftyp' box with brand 'avif' at the start)")
        properties = item_properties(data, "avif")
        bits = _bit_depth(data, properties)
        claimed = image_size(data, properties, "avif")
        if claimed != tuple(shape):
            # libavif would allocate what the file claims first: 7 kB claiming 16384 x 16384 cost 981 MB.
            raise ValueError(f"avif: the file claims a {claimed[0]}x{claimed[1]} image, the tile is "
                             f"{shape[0]}x{shape[1]}")
        try:
            samples = library().avif_decode(data, numthreads=self.threads)
        except (library().AvifError, RuntimeError) as error:
            raise ValueError(f"avif: the file cannot be decoded: {error}") from error
        return from_samples(samples, shape, "avif", bits)


def _bit_depth(data: bytes, properties: tuple[int, int]) -> int:
    """Sample bit depth from the AV1 codec configuration (meta/iprp/ipco/av1C): 8, 10 or 12."""
    av1c, av1c_end = child(data, *properties, b"av1C", "avif")
    if av1c_end - av1c < 4:
        raise ValueError("avif: the av1C box is truncated")
    flags = data[av1c + 2]  # seq_tier_0, high_bitdepth, twelve_bit, monochrome, subsampling ...
    high_bitdepth, twelve_bit = flags >> 6 & 1, flags >> 5 & 1
    return 12 if twelve_bit else 10 if high_bitdepth else 8


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Avif]
