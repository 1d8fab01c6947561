"""harness.testing catches what it promises to catch: hangs, crashes, bombs, bad arrays, wrong exception types."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from harness import Codec, CodecOption
from harness.testing import (
    CodecConformance,
    fuzz_decoder,
    mutated_streams,
    point_to_check,
    refusal_problems,
    speckled_tile,
    values_outside,
)


class StoredCodec(Codec):
    """Raw float32 bytes with a 4-byte shape header: exact, and strict about damage."""

    name = "stored"

    def encode(self, tile: np.ndarray) -> bytes:
        rows, cols = tile.shape
        return rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + tile.astype(np.float32).tobytes()

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        if len(data) != 4 + 4 * shape[0] * shape[1] or (int.from_bytes(data[:2], "big"),
                                                        int.from_bytes(data[2:4], "big")) != tuple(shape):
            raise ValueError("stored: the stream does not hold a tile of this shape")
        tile = np.frombuffer(data[4:], dtype=np.float32).reshape(shape)
        if not np.isfinite(tile).all() or tile.min() < 0 or tile.max() > 1:
            raise ValueError("stored: the stream holds values outside [0, 1]")
        return tile


class HangingCodec(StoredCodec):
    def decode(self, data, shape):
        time.sleep(3600)


class AbortingCodec(StoredCodec):
    def decode(self, data, shape):
        os.abort()


class BombCodec(StoredCodec):
    def decode(self, data, shape):
        return np.ones((1 << 36,), dtype=np.uint8)  # 64 GiB, as a damaged header might claim


class NanCodec(StoredCodec):
    def decode(self, data, shape):
        return np.full(shape, np.nan, dtype=np.float32)


class TypeErrorCodec(StoredCodec):
    def decode(self, data, shape):
        raise TypeError("unpack requires a buffer of 8 bytes")


SHAPE = (16, 16)
STREAM = StoredCodec().encode(speckled_tile(SHAPE))


@pytest.mark.parametrize("codec_class, problem", [
    (HangingCodec, "took over 1 s"),
    (AbortingCodec, "the worker died"),
    (BombCodec, "MemoryError"),
    (NanCodec, "non-finite values"),
    (TypeErrorCodec, "raised TypeError instead of ValueError"),
])
def test_fuzzing_names_the_case_and_what_went_wrong(codec_class, problem):
    cases = mutated_streams(STREAM, count=2)

    problems = fuzz_decoder(codec_class, {}, SHAPE, cases, call_limit_s=1.0, memory_limit_bytes=1 << 30)

    assert len(problems) == 2
    assert all(line.startswith(name + ": ") and problem in line for (name, _), line in zip(cases, problems))


def test_fuzzing_a_strict_decoder_finds_nothing():
    assert fuzz_decoder(StoredCodec, {}, SHAPE, mutated_streams(STREAM, count=40)) == []


def test_mutations_are_reproducible_and_of_all_four_kinds():
    cases = mutated_streams(STREAM, count=8)

    assert cases == mutated_streams(STREAM, count=8)
    assert [name.split()[0] for name, _ in cases[:4]] == ["bits", "cut", "header", str(len(cases[3][1]) - len(STREAM))]
    assert all(damaged != STREAM for _, damaged in cases)


class TestTheConformanceClassPassesAStrictCodec(CodecConformance):
    codec_class = StoredCodec


class StoredWithAHeader(StoredCodec):
    """The stored codec with an option it cannot be built without, declared with an example point."""

    name = "stored_with_a_header"
    options = (CodecOption("header", str, choices=("shape",), required=True),)
    example_point = {"header": "shape"}

    def __init__(self, header: str):
        self.header = header


class TestTheConformanceClassChecksACodecAtItsExamplePoint(CodecConformance):
    codec_class = StoredWithAHeader

    def test_the_codec_under_test_was_built_at_its_example_point(self, coded):
        assert coded[0].header == "shape"


def test_options_given_by_a_conformance_test_replace_the_example_point():
    assert point_to_check(StoredWithAHeader, {"header": "other"}) == {"header": "other"}


def test_a_codec_without_an_example_point_is_checked_without_options():
    assert point_to_check(StoredCodec) == {}


@pytest.mark.parametrize("option, outside", [
    (CodecOption("q", int, minimum=0, maximum=100), [-1, 101]),
    (CodecOption("t", float, minimum=0, maximum=1, exclusive_minimum=True), [0, 1.0000000000000002]),
    (CodecOption("d", float, minimum=0.5), [0.49999999999999994]),
    (CodecOption("b", int, choices=(10, 12)), [13]),
    (CodecOption("p", str, choices=("fast", "slow")), ["fastx"]),
    (CodecOption("l", bool), []),
    (CodecOption("c", str), []),
])
def test_the_values_outside_a_declaration_are_just_past_each_bound_or_outside_the_choices(option, outside):
    assert values_outside(option) == outside


class SkipsTheDeclaredCheck(StoredCodec):
    """Declares a range but is built without the declared check, as a codec with its own ``__new__`` would be."""

    name = "skips_the_declared_check"
    options = (CodecOption("level", int, minimum=1, maximum=9),)

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, level: int = 1):
        self.level = level


def test_the_range_check_names_each_value_past_the_declared_range_that_the_codec_accepts():
    assert refusal_problems(SkipsTheDeclaredCheck, {}) == ["level=0 accepted; declared: an integer from 1 to 9",
                                                           "level=10 accepted; declared: an integer from 1 to 9"]
