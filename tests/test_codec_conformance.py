"""The codec contract (``harness.testing.CodecConformance``), checked on every built-in codec at one rate point.

A new built-in codec without an entry here fails. Each codec's own specification (test_codec_*.py) says
what is particular to it; this is what the harness relies on from all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugins import build_registry
from harness.testing import CodecConformance

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
POINTS = {
    "jpeg2000": {"bpp": 1.0},
    "htj2k": {"qstep": 0.1},
    "avif": {"quality": 50},
    "jpegxl": {"distance": 2},
    "sz3": {"tolerance": 0.05},
    "lerc": {"max_error": 0.05},
    "zfp": {"tolerance": 0.05},
    "sperr": {"tolerance": 0.05},
    "hevc": {"quality": 50},
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


def test_every_built_in_codec_has_a_conformance_point():
    assert sorted(POINTS) == BUILT_IN


class TestEveryBuiltInCodec(CodecConformance):
    @pytest.fixture(scope="class", params=BUILT_IN)
    @classmethod
    def codec_under_test(cls, request):
        return REGISTRY.codec(request.param), POINTS[request.param]


SPEED_OPTIONS = {"range_coding_processes": 1, "overlap_sub_batches": 2}
"""The entropy-coded codecs' options that change where and when the work is done, not the streams' format."""


class TestAnEntropyCodedCodecWithItsSpeedOptions(CodecConformance):
    """Range coding in a worker process and overlapped sub-batches, under the same contract (fuzzing included)."""

    @pytest.fixture(scope="class")
    @classmethod
    def codec_under_test(cls):
        return REGISTRY.codec("autoencoder_hyperprior"), POINTS["autoencoder_hyperprior"] | SPEED_OPTIONS
