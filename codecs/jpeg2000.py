"""JPEG 2000 through glymur over OpenJPEG: the anchor codec of the benchmark.

The tile is quantized to 16-bit unsigned samples and coded as a raw
codestream (``.j2k``), not a JP2 file, so no box bytes count against the
rate. Lossy points use the irreversible 9/7 wavelet with OpenJPEG's rate
allocation aiming at ``bpp``; the lossless point uses the reversible 5/3
wavelet.

Rate control: OpenJPEG turns the compression ratio into a byte budget and
already deducts the main header it has written from that budget, yet lands
up to about 16 bytes over it on 256x256 tiles. It also always writes a
comment marker ("Created by OpenJPEG version ...", 39 bytes for 2.5.0) that
no decoder needs. We strip that marker from the stream, which both removes
wasted bytes and leaves a margin that absorbs the overshoot, so the achieved
rate stays at or just under the target.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._j2k_codestream import START_OF_CODESTREAM, check_codestream
from harness_codecs._samples import SAMPLE_BITS, from_samples, to_samples

try:
    import glymur
    from glymur.jp2box import InvalidJp2kError
    from glymur.lib.openjp2 import OpenJPEGLibraryError

    DECODING_ERRORS: tuple[type[Exception], ...] = (InvalidJp2kError, OpenJPEGLibraryError, struct.error)
    """How glymur reports a stream it cannot decode."""
except ImportError:  # the plugin must still import, so `harness list` can say what is missing
    glymur = None
    DECODING_ERRORS = ()

INSTALL_HINT = "glymur is not installed: pip install glymur (it needs OpenJPEG: apt-get install libopenjp2-7)"

SCRATCH_DIR = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
"""glymur only reads and writes named files; a RAM-backed folder keeps that off the disk."""


RESOLUTIONS = 6
"""OpenJPEG's default: five wavelet decompositions. OpenJPEG refuses a tile
side shorter than ``2 ** (RESOLUTIONS - 1)``, and below that side the ~100
bytes of main header alone exceed the budget of every usual rate point, so
smaller tiles are refused rather than coded with fewer levels."""

OPENJPEG_THREADS = 1
"""OpenJPEG's threads (glymur's ``lib.num_threads``, a process-wide option set by every instance): one, fixed, so a
speed means the same on every machine and parallel runs split the cores between workers."""

START_OF_TILE_PART = b"\xff\x90"
COMMENT = b"\xff\x64"

BPP = CodecOption("bpp", float, minimum=0, maximum=SAMPLE_BITS, exclusive_minimum=True, exclusive_maximum=True,
                  required=True, description="bits per pixel, the target of OpenJPEG's rate allocation")


class Jpeg2000(Codec):
    """JPEG 2000 at one target rate (``bpp``) or lossless (``lossless=True``)."""

    name: ClassVar[str] = "jpeg2000"
    description: ClassVar[str] = "JPEG 2000 (OpenJPEG via glymur), 16-bit samples, raw codestream"
    min_tile_size: ClassVar[int] = 2 ** (RESOLUTIONS - 1)
    unavailable: ClassVar[str | None] = None if glymur else INSTALL_HINT
    # The achieved rate stays at or under the target bpp, so a search over the target matches a rate closely.
    rate_knob = RateKnob("bpp", low=0.01, high=SAMPLE_BITS - 0.01, more_bits_when_higher=True, geometric=True)
    options = (
        BPP,
        CodecOption("lossless", bool, description="the reversible 5/3 wavelet instead of a rate"),
        # glymur derives the codestream's precision from the array dtype, with no way to declare 12 bits (OpenJPEG
        # allows it; glymur sets 12 only for its cinema profiles)
        CodecOption("bits", int, choices=(SAMPLE_BITS,),
                    description="glymur writes only 8- or 16-bit codestreams, so 12-bit precision cannot be declared"),
    )
    example_point = {"bpp": 1.0}

    def __init__(self, bpp: float | None = None, lossless: bool = False, bits: int = SAMPLE_BITS):
        self.bits = bits
        self.bpp = _rate_point(bpp, lossless)
        self.lossless = lossless
        self.precision = f"uint{self.bits}"
        self.threads = OPENJPEG_THREADS
        glymur.set_option("lib.num_threads", OPENJPEG_THREADS)

    def encode(self, tile: np.ndarray) -> bytes:
        samples = self._quantized(tile)
        with _scratch_file() as path:
            glymur.Jp2k(path, data=samples, numres=RESOLUTIONS, **self._coding_options())
            codestream = path.read_bytes()
        return _without_comments(codestream)

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        check_codestream(data, shape, self.name)
        with _scratch_file() as path:
            path.write_bytes(data)
            samples = _read_codestream(path)
        return from_samples(samples, shape, self.name, self.bits)

    def _quantized(self, tile: np.ndarray) -> np.ndarray:
        self._check_tile_shape(tile.shape)
        return to_samples(tile, self.bits)

    def _check_tile_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or min(shape) < self.min_tile_size:
            raise ValueError(
                f"jpeg2000 needs a 2-D tile of at least {self.min_tile_size}x{self.min_tile_size} pixels "
                f"({RESOLUTIONS - 1} wavelet decompositions); got shape {shape}"
            )

    def _coding_options(self) -> dict:
        if self.lossless:
            return {"irreversible": False}
        return {"irreversible": True, "cratios": [self.bits / self.bpp]}


def _rate_point(bpp: float | None, lossless: bool) -> float | None:
    """Exactly one of ``bpp`` and ``lossless`` names the rate point, so a YAML typo cannot pass silently."""
    if lossless and bpp is not None:
        raise ValueError("jpeg2000: give either bpp or lossless=true, not both")
    if lossless:
        return None
    if bpp is None:
        raise ValueError(f"jpeg2000 needs a rate point: bpp ({BPP.accepted}) or lossless=true")
    return float(bpp)


@contextmanager
def _scratch_file() -> Iterator[Path]:
    """A private folder per call: removed with its file whatever happens, and safe across processes."""
    with tempfile.TemporaryDirectory(dir=SCRATCH_DIR, prefix="harness-jpeg2000-") as folder:
        yield Path(folder) / "tile.j2k"


def _read_codestream(path: Path) -> np.ndarray:
    """glymur reports a bad stream in several ways; the codec contract has one: ValueError."""
    try:
        return glymur.Jp2k(path)[:]
    except DECODING_ERRORS as error:
        raise ValueError(f"jpeg2000: the codestream cannot be decoded: {error}") from error


def _without_comments(codestream: bytes) -> bytes:
    """Drop the main header's COM segments: informative text only, never needed to decode."""
    kept = [START_OF_CODESTREAM]
    offset = len(START_OF_CODESTREAM)
    while offset < len(codestream) and codestream[offset : offset + 2] != START_OF_TILE_PART:
        segment_end = offset + 2 + int.from_bytes(codestream[offset + 2 : offset + 4], "big")
        if codestream[offset : offset + 2] != COMMENT:
            kept.append(codestream[offset:segment_end])
        offset = segment_end
    kept.append(codestream[offset:])
    return b"".join(kept)


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Jpeg2000]
