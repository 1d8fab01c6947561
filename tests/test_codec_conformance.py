"""The codec contract, checked on every built-in codec at one rate point: a new codec without an entry here fails.

Each codec's own specification (test_codec_*.py) says what is particular to it; this says what the runner
relies on from all of them: bytes out, the tile's shape back as floats, the same bytes for the same tile, and
a damaged stream refused with ``ValueError`` (an error row), never another exception or a crash.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.plugins import build_registry
from harness.runner import RECONSTRUCTION_BOUNDS
from tests.codec_helpers import speckled_tile

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
POINTS = {
    "jpeg2000": {"bpp": 1.0},
    "htj2k": {"qstep": 0.1},
    "avif": {"quality": 50},
    "jpegxl": {"distance": 2},
    "sz3": {"tolerance": 0.05},
    "lerc": {"max_error": 0.05},
    "baq": {"bits": 3},
    "quantize": {"bits": 4},
    "quantize_zlib": {"bits": 4},
    "autoencoder": {"checkpoint": str(CHECKPOINTS / "autoencoder-tiny-c32-b4.pt")},
    "autoencoder_factorized": {"checkpoint": str(CHECKPOINTS / "autoencoder-tiny-factorized-l60.pt")},
    "autoencoder_hyperprior": {"checkpoint": str(CHECKPOINTS / "autoencoder-tiny-hyperprior-l60.pt")},
    "autoencoder_checkerboard": {"checkpoint": str(CHECKPOINTS / "autoencoder-gdn-dct-small-checkerboard.pt"),
                                 "quality": 2},
}
REGISTRY = build_registry()
BUILT_IN = sorted(name for name, entry in REGISTRY.codecs.items() if entry.origin.startswith("codecs/"))
TILE = speckled_tile(64)


@pytest.fixture(scope="module", params=BUILT_IN)
def coded(request):
    codec_class = REGISTRY.codec(request.param)
    if codec_class.unavailable:
        pytest.skip(codec_class.unavailable)
    codec = codec_class(**POINTS[request.param])
    return codec, codec.encode(TILE)


def test_every_built_in_codec_has_a_conformance_point():
    assert sorted(POINTS) == BUILT_IN


def test_encode_gives_bytes_and_decode_gives_the_tile_shape_as_floats_within_bounds(coded):
    codec, stream = coded
    decoded = np.asarray(codec.decode(stream, TILE.shape))
    low, high = RECONSTRUCTION_BOUNDS
    assert isinstance(stream, bytes) and len(stream) > 0
    assert decoded.shape == TILE.shape and np.issubdtype(decoded.dtype, np.floating)
    assert np.isfinite(decoded).all() and low <= decoded.min() and decoded.max() <= high


def test_the_same_tile_gives_the_same_bytes(coded):
    codec, stream = coded
    assert codec.encode(TILE) == stream


@pytest.mark.parametrize("damage", ["empty", "first half", "last byte dropped"])
def test_a_damaged_stream_is_refused_with_value_error(coded, damage):
    codec, stream = coded
    damaged = {"empty": b"", "first half": stream[: len(stream) // 2], "last byte dropped": stream[:-1]}[damage]
    with pytest.raises(ValueError):
        codec.decode(damaged, TILE.shape)


def test_a_stream_decoded_for_a_tile_of_another_size_is_refused_with_value_error(coded):
    codec, stream = coded
    with pytest.raises(ValueError):
        codec.decode(stream, (32, 32))
