"""A rate point is parsed once from the config into a ``RatePoint``: the codec's options and what sets the rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import UserError
from harness.config_checks import Checker
from harness.plugins import build_registry
from harness.rate_points import RatePoint, RateTarget, parse_rate_point

JPEG2000 = build_registry().codec("jpeg2000")
CHECK = Checker(Path("bench.yaml"))


def parse(point: dict) -> RatePoint:
    return parse_rate_point(CHECK, JPEG2000, point, "codecs[0].points[0]")


def test_a_point_giving_the_codecs_own_knob_is_native():
    point = parse({"bpp": 1.0})

    assert (point.target, point.target_bpp, point.codec_options()) == (RateTarget.NATIVE, None, {"bpp": 1.0})


def test_a_match_bpp_point_is_matched_and_its_options_leave_the_target_out():
    point = parse({"match_bpp": 0.5, "bits": 16})

    assert (point.target, point.target_bpp, point.options) == (RateTarget.MATCHED_BPP, 0.5, {"bits": 16})


def test_a_lossless_point_asks_the_codec_for_its_lossless_mode():
    point = parse({"lossless": True})

    assert (point.target, point.options, point.codec_options()) == (RateTarget.LOSSLESS, {}, {"lossless": True})


def test_lossless_false_is_a_native_point():
    assert parse({"bpp": 1.0, "lossless": False}).target is RateTarget.NATIVE


def test_the_label_names_the_point_as_written_target_included_in_its_order():
    assert parse({"match_bpp": 0.5, "bits": 16}).label == "match_bpp=0.5,bits=16"


@pytest.mark.parametrize("point, message", [
    ({"bpp": 1.0, "lossless": True}, r"points\[0\]\.bpp: give either bpp or lossless: true, not both"),
    ({"match_bpp": 1.0, "lossless": True}, r"points\[0\]\.lossless: give either match_bpp or lossless: true"),
    ({"lossless": "yes"}, r"points\[0\]\.lossless: expected true or false, got str 'yes'"),
])
def test_a_contradictory_or_malformed_target_is_refused_in_one_line(point, message):
    with pytest.raises(UserError, match=message):
        parse(point)
