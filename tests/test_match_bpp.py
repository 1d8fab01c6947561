"""Points that ask for a rate (``match_bpp``) instead of a knob value: config checks and what the rows record."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness import UserError
from harness.config import load_config
from tests.conftest import IN_PROCESS, MINIMAL_CONFIG, run_rows

KNOBBED_CODECS = '''
import numpy as np
from harness import Codec, RateKnob, hookimpl


class Brittle(Codec):
    """8-bit bytes repeated ``copies`` times; its encoder raises above ``breaks_above`` copies."""
    name = "brittle"
    rate_knob = RateKnob("copies", low=1, high=8, more_bits_when_higher=True, step=1)

    def __init__(self, copies, breaks_above=8):
        self.copies, self.breaks_above = copies, breaks_above

    def encode(self, tile):
        if self.copies > self.breaks_above:
            raise ValueError("too many copies")
        return (tile * 255).round().astype(np.uint8).tobytes() * self.copies

    def decode(self, data, shape):
        return np.frombuffer(data[: shape[0] * shape[1]], dtype=np.uint8).reshape(shape).astype(np.float32) / 255


class Knobless(Brittle):
    name = "knobless"
    rate_knob = None


@hookimpl
def harness_codecs():
    return [Brittle, Knobless]
'''


@pytest.fixture
def bench(tmp_path, dual_pol_geotiff, write_config):
    """A function making a config with the given codecs section, the test codecs above as a plugin."""
    (tmp_path / "knobbed_codecs.py").write_text(KNOBBED_CODECS)

    def make(codecs: str, tile_size: int = 32) -> Path:
        text = MINIMAL_CONFIG.split("codecs:")[0].replace("tile_size: 32", f"tile_size: {tile_size}")
        text += "codecs:\n" + textwrap.indent(textwrap.dedent(codecs), "  ")
        return write_config(text + f"plugins: [knobbed_codecs.py]\ntiming: {{warmup: 0, repeats: 1, {IN_PROCESS}}}\n")

    return make


def test_an_integer_knob_gets_per_tile_the_highest_value_not_over_the_target(tmp_path, bench):
    rows = run_rows(bench("- name: quantize\n  points: [{match_bpp: 4.5}]\n"), tmp_path / "run")

    assert len(rows) == 6 and all(row["error"] == "" for row in rows)
    assert {row["point"] for row in rows} == {"match_bpp=4.5"}
    assert all(json.loads(row["options"]) == {"match_bpp": 4.5, "bits": 4} for row in rows)
    assert all(float(row["bpp"]) <= 4.5 for row in rows)


@pytest.mark.parametrize("codec, target", [("jpeg2000", 1.0), ("quantize_zlib", 2.0)])
def test_matched_rates_never_exceed_the_target_and_record_the_knob_each_tile_got(tmp_path, bench, codec, target):
    rows = run_rows(bench(f"- name: {codec}\n  points: [{{match_bpp: {target}}}]\n", tile_size=64), tmp_path / "run")

    assert all(row["error"] == "" and float(row["bpp"]) <= target for row in rows)
    knob = {"jpeg2000": "bpp", "quantize_zlib": "bits"}[codec]
    assert all(knob in json.loads(row["options"]) for row in rows)


def test_jpeg2000_matched_to_a_rate_comes_at_least_as_close_as_its_own_rate_control(tmp_path, bench):
    rows = run_rows(bench("- name: jpeg2000\n  points: [{bpp: 2.0}, {match_bpp: 2.0}]\n", tile_size=64), tmp_path / "run")

    rates = {(row["point"], row["tile_id"]): float(row["bpp"]) for row in rows}
    tiles = {row["tile_id"] for row in rows}
    assert all(rates["bpp=2.0", tile] <= rates["match_bpp=2.0", tile] <= 2.0 for tile in tiles)


def test_a_target_below_what_a_codec_can_reach_gets_its_lowest_rate_and_the_row_shows_it_is_over(tmp_path, bench):
    rows = run_rows(bench("- name: jpeg2000\n  points: [{match_bpp: 0.2}]\n"), tmp_path / "run")  # headers alone: ~1 bpp

    assert all(json.loads(row["options"])["bpp"] == 0.01 and float(row["bpp"]) > 0.2 for row in rows)


def test_a_codec_failing_during_the_search_gives_an_error_row_per_tile_and_the_run_goes_on(tmp_path, bench):
    rows = run_rows(bench("""\
        - name: brittle
          points: [{match_bpp: 20, breaks_above: 3}, {copies: 1}]
        """), tmp_path / "run")

    errors = [row for row in rows if row["error"]]
    assert len(errors) == 6 and all("too many copies" in row["error"] for row in errors)
    assert len(rows) == 12


@pytest.mark.parametrize("point, message", [
    ("{match_bpp: 2}", r"codecs\[0\]\.points\[0\]\.match_bpp: codec 'knobless' has no single rate knob"),
])
def test_match_bpp_on_a_codec_without_a_rate_knob_is_refused_in_one_line(bench, point, message):
    with pytest.raises(UserError, match=message):
        load_config(bench(f"- name: knobless\n  points: [{point}]\n"))


@pytest.mark.parametrize("point, message", [
    ("{match_bpp: 2, copies: 3}", r"points\[0\]\.copies: give either match_bpp or copies, not both"),
    ("{match_bpp: 0}", r"points\[0\]\.match_bpp: expected a rate in bits per pixel above 0, got 0"),
    ("{match_bpp: fast}", r"points\[0\]\.match_bpp: expected a number, got str 'fast'"),
    ("{match_bpp: 2, colour: red}", r"points\[0\]\.colour: unknown option for 'brittle'"),
])
def test_a_bad_match_bpp_point_is_refused_in_one_line(bench, point, message):
    with pytest.raises(UserError, match=message):
        load_config(bench(f"- name: brittle\n  points: [{point}]\n"))


def test_rows_record_the_target_of_a_match_bpp_point_and_leave_it_empty_for_native_points(tmp_path, bench):
    rows = run_rows(bench("- name: quantize\n  points: [{bits: 4}, {match_bpp: 4.5}]\n"), tmp_path / "run")
    assert {(row["point"], row["target_bpp"]) for row in rows} == {("bits=4", ""), ("match_bpp=4.5", "4.5")}
