"""HEVC intra (x265 through libheif, as bundled in pillow-heif's wheels), 10- or 12-bit monochrome, in a HEIF file.

The anchor that learned-compression papers call "HEVC intra" (BPG, HM): the
tile is quantized to ``bits`` (12 or 10) bit unsigned samples and coded by
x265 as one intra picture with chroma format 4:0:0 (luma only), profile
Format Range Extensions (Monochrome 12 / Monochrome 10; libheif asks x265 for
``main12-intra`` / ``main10-intra`` and x265 drops the chroma planes of an
I400 input). libheif wraps the HEVC stream in a HEIF file, and libde265
(libheif's decoder) decodes it to one plane.

The rate knob is libheif's ``quality`` (0-100), which libheif's x265 plugin
turns into x265's constant rate factor ``crf = (100 - quality) / 2`` (one
step of quality is half a CRF step). ``lossless=true`` gives x265's lossless
mode (transquant bypass). libheif's plugin forces psychovisual
rate-distortion and adaptive quantization on (``psy-rd 1``, ``psy-rdoq 1``,
``aq-mode 1``) whatever the tune; this codec turns them off again with
``tune psnr`` (x265 options passed through libheif), as the HM reference
encoder has neither: they spend bits on texture that PSNR does not reward,
and libheif's own settings cost 1.75 % in BD-rate (PSNR) on the default
tiles. 10 bits code those tiles as well as 12 (BD-rate +0.02 %); 12, the
deepest x265 codes, is the default. ``preset`` is x265's effort, default
``slow`` as in libheif (``veryslow`` gave about the same rate and PSNR).
x265 runs with one worker thread (``pools 1``, ``frame-threads 1``) and
libde265 decodes with one, so speeds compare across machines.

The HEIF container (ftyp, meta with hdlr, iloc, iinf, pitm and the item
properties hvcC, ispe, pixi, ipma, the mdat box header and the slice's length
field; no colour profile, Exif, XMP or thumbnail) costs 351 bytes besides the
slice data on every tile, 0.043 bpp on a 256x256 tile: 69 of them are the
parameter sets (VPS, SPS, PPS, inside hvcC) that any HEVC stream carries, the
other 282 (0.034 bpp) are HEIF's box structure. On the default tiles those
282 bytes cost 4.8 % in BD-rate (PSNR), a third of the rate at quality 5
(0.13 bpp). libheif pads a picture to even sides of at least 64 pixels for
x265 and crops it back with a ``clap`` box, so a tile under 64 pixels a side
pays for the padding. The decoder reads the coded size from the ``ispe`` box
and refuses one that no tile of the given shape would give before libheif
allocates anything, and reads the chroma format and bit depth from hvcC.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np

from harness import Codec, CodecOption, RateKnob, hookimpl
from harness_codecs._heif import child, image_size, item_properties
from harness_codecs._samples import from_samples, to_samples

try:
    import pillow_heif
except ImportError:
    pillow_heif = None

BITS = (10, 12)
MAX_QUALITY = 100
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
DEFAULT_PRESET = "slow"
THREADS = 1
PSNR_TUNING = {"tune": "psnr", "x265:psy-rd": "0", "x265:psy-rdoq": "0", "x265:aq-mode": "0"}
"""x265's PSNR tuning, with what libheif's plugin turns back on after the tune (psy-rd, psy-rdoq, AQ) off again."""
SINGLE_THREAD = {"x265:pools": "1", "x265:frame-threads": "1"}
BRANDS = (b"heic", b"heix")
MIN_CODED_SIDE = 64
PADDING = 64
"""libheif pads the picture it hands x265 to even sides of at least 64 pixels and crops it back with a ``clap``
box; the coded size (``ispe``) of a stream for an h x w tile is at most max(h, 64) + 64 by max(w, 64) + 64."""
INSTALL_HINT = "pillow-heif is not installed: pip install pillow-heif"
QUALITY = CodecOption("quality", int, minimum=0, maximum=MAX_QUALITY, required=True,
                      description="libheif quality, x265 CRF (100 - quality) / 2")


def _unavailable_reason() -> str | None:
    if pillow_heif is None:
        return INSTALL_HINT
    try:
        info = pillow_heif.libheif_info()
    except Exception as error:  # a broken native library must not stop the registry
        return f"pillow-heif cannot load libheif ({error}): pip install --force-reinstall pillow-heif"
    if "x265" not in info.get("encoders", {}) or "libde265" not in info.get("decoders", {}):
        return ("this pillow-heif build lacks the x265 encoder or the libde265 decoder: "
                "pip install --upgrade pillow-heif (its wheels bundle both)")
    return None


def _description() -> str:
    mode = "10/12-bit monochrome 4:0:0, HEIF file"
    if _unavailable_reason() is not None:
        return f"HEVC intra (x265 via libheif/pillow-heif), {mode}"
    x265 = pillow_heif.libheif_info()["encoders"]["x265"].removeprefix("x265 HEVC encoder").strip(" ()")
    return (f"HEVC intra (x265 {x265} via libheif {pillow_heif.libheif_version()}, pillow-heif "
            f"{pillow_heif.__version__}), {mode}")


class Hevc(Codec):
    """HEVC intra at libheif ``quality`` (0-100), or lossless; monochrome, ``bits`` 10 or 12."""

    name: ClassVar[str] = "hevc"
    description: ClassVar[str] = _description()
    unavailable: ClassVar[str | None] = _unavailable_reason()
    rate_knob = RateKnob("quality", low=0, high=MAX_QUALITY, more_bits_when_higher=True, step=1)
    options = (
        QUALITY,
        CodecOption("lossless", bool, description="x265's lossless mode, transquant bypass, instead of a quality"),
        CodecOption("bits", int, choices=BITS, description="sample precision"),
        CodecOption("preset", str, choices=PRESETS, description="x265's presets, fastest to slowest"),
    )
    example_point = {"quality": 50}

    def __init__(self, quality: int | None = None, lossless: bool = False, bits: int = 12,
                 preset: str = DEFAULT_PRESET):
        self.quality = _rate_point(quality, lossless)
        self.lossless = self.quality is None
        self.bits = bits
        self.preset = preset
        self.precision = f"uint{self.bits}"
        self.threads = THREADS

    def encode(self, tile: np.ndarray) -> bytes:
        samples = np.ascontiguousarray(to_samples(tile, self.bits), dtype="<u2")
        height, width = samples.shape
        output = io.BytesIO()
        pillow_heif.encode(
            f"I;{self.bits}", (width, height), samples.tobytes(), output,
            quality=-1 if self.lossless else self.quality, bit_depth=self.bits, save_nclx_profile=False,
            enc_params={"preset": self.preset, **PSNR_TUNING, **SINGLE_THREAD},
        )
        return output.getvalue()

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        if data[4:8] != b"ftyp" or data[8:12] not in BRANDS:
            raise ValueError("hevc: not a HEIF file (no 'ftyp' box with brand 'heic' or 'heix' at the start)")
        properties = item_properties(data, "hevc")
        coded = image_size(data, properties, "hevc")
        if not all(side <= length <= max(side, MIN_CODED_SIDE) + PADDING for side, length in zip(shape, coded)):
            # libde265 would allocate what the file claims first.
            raise ValueError(f"hevc: the file claims a {coded[0]}x{coded[1]} coded image, too large or too small "
                             f"for a {shape[0]}x{shape[1]} tile")
        bits = _monochrome_bit_depth(data, properties)
        try:
            with _decoder_threads(THREADS):
                image = pillow_heif.open_heif(data, convert_hdr_to_8bit=False, hdr_to_16bit=False)
                samples = np.asarray(image)  # a file whose items are damaged can hold no image: IndexError
        except (ValueError, RuntimeError, SyntaxError, EOFError, OSError, IndexError, KeyError) as error:
            raise ValueError(f"hevc: the file cannot be decoded: {error}") from error
        if samples.max(initial=0) > 2**bits - 1:
            raise ValueError(f"hevc: decoded samples exceed the file's {bits}-bit range")
        return from_samples(samples, shape, "hevc", bits)


def _rate_point(quality: int | None, lossless: bool) -> int | None:
    """Exactly one of ``quality`` and ``lossless`` names the point, so a YAML typo cannot pass silently."""
    if lossless:
        if quality is not None:
            raise ValueError("hevc: give either quality or lossless=true, not both")
        return None
    if quality is None:
        raise ValueError(f"hevc option quality=None; accepted: {QUALITY.accepted} ({QUALITY.description}), "
                         "or lossless=true")
    return quality


@contextmanager
def _decoder_threads(threads: int) -> Iterator[None]:
    """pillow-heif reads libde265's thread count from a module-wide option: set it for this decode only."""
    previous, pillow_heif.options.DECODE_THREADS = pillow_heif.options.DECODE_THREADS, threads
    try:
        yield
    finally:
        pillow_heif.options.DECODE_THREADS = previous


def _monochrome_bit_depth(data: bytes, properties: tuple[int, int]) -> int:
    """The luma bit depth from the HEVC decoder configuration (hvcC), which must say 4:0:0 and 10 or 12 bits."""
    hvcc, hvcc_end = child(data, *properties, b"hvcC", "hevc")
    if hvcc_end - hvcc < 23:
        raise ValueError("hevc: the hvcC box is truncated")
    chroma_format = data[hvcc + 16] & 0b11
    bits = (data[hvcc + 17] & 0b111) + 8
    if chroma_format != 0 or bits not in BITS:
        raise ValueError(f"hevc: the stream is not 10- or 12-bit monochrome (chroma format {chroma_format}, "
                         f"{bits} bits)")
    return bits


@hookimpl
def harness_codecs() -> list[type[Codec]]:
    return [Hevc]
