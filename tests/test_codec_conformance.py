"""The codec contract (``harness.testing.CodecConformance``), checked on every built-in codec at its example point.

A new built-in codec without a declared ``example_point`` fails. Each codec's own specification (test_codec_*.py)
says what is particular to it; this is what the harness relies on from all of them.
"""

from __future__ import annotations

import pytest

from harness.plugins import build_registry
from harness.testing import CodecConformance, point_to_check

REGISTRY = build_registry()
BUILT_IN = sorted(name for name, entry in REGISTRY.codecs.items() if entry.origin.startswith("codecs/"))


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_codec_declares_its_options_and_an_example_point(name):
    codec_class = REGISTRY.codec(name)
    assert codec_class.options and codec_class.example_point


class TestEveryBuiltInCodec(CodecConformance):
    @pytest.fixture(scope="class", params=BUILT_IN)
    @classmethod
    def codec_under_test(cls, request):
        codec_class = REGISTRY.codec(request.param)
        return codec_class, point_to_check(codec_class)


SPEED_OPTIONS = {"range_coding_processes": 1, "overlap_sub_batches": 2}
"""The entropy-coded codecs' options that change where and when the work is done, not the streams' format."""


class TestAnEntropyCodedCodecWithItsSpeedOptions(CodecConformance):
    """Range coding in a worker process and overlapped sub-batches, under the same contract (fuzzing included)."""

    @pytest.fixture(scope="class")
    @classmethod
    def codec_under_test(cls):
        codec_class = REGISTRY.codec("autoencoder_hyperprior")
        return codec_class, codec_class.example_point | SPEED_OPTIONS


class TestTheShippedLearnedCodecTrellisCoded(CodecConformance):
    """The shipped learned codec with ``quantizer: trellis`` at a trellis-coded quality, under the same contract
    (fuzzing included): its chained range decoding meets damaged streams too."""

    @pytest.fixture(scope="class")
    @classmethod
    def codec_under_test(cls):
        codec_class = REGISTRY.codec("autoencoder_checkerboard")
        return codec_class, codec_class.example_point | {"quality": 7, "quantizer": "trellis"}
