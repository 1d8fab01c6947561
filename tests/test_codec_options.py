"""Codecs declare their options (``Codec.options``): the config, a directly built codec and ``list --verbose`` read
the declaration, and a codec that declares nothing keeps checking its own options."""

from __future__ import annotations

import pytest

from harness import Codec, CodecOption, UserError
from harness.cli import main
from harness.config import load_config
from tests.conftest import MINIMAL_CONFIG

UNDECLARED_CODEC = '''
import numpy as np
from harness import Codec, hookimpl


class Undeclared(Codec):
    """A third-party codec that declares no options and checks its own ``level``."""
    name = "undeclared"

    def __init__(self, level=1):
        if not isinstance(level, int) or not 1 <= level <= 9:
            raise ValueError(f"undeclared option level={level!r}; accepted: 1 to 9")
        self.level = level

    def encode(self, tile):
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape).astype(np.float32) / 255


@hookimpl
def harness_codecs():
    return [Undeclared]
'''


class Declared(Codec):
    name = "declared"
    options = (CodecOption("level", int, minimum=1, maximum=9, description="effort"),
               CodecOption("mode", str, choices=("fast", "small")))

    def __init__(self, level: int = 1, mode: str = "fast"):
        self.level, self.mode = level, mode


def config_with_points(write_config, points: str) -> str:
    return write_config(MINIMAL_CONFIG.replace("[{bits: 4}, {bits: 8}]", points))


def test_a_declared_range_refuses_an_out_of_range_value_in_one_line_naming_codec_option_value_and_range(write_config):
    path = config_with_points(write_config, "[{bits: 4}, {bits: 17}]")

    with pytest.raises(UserError) as raised:
        load_config(path)

    assert str(raised.value) == (f"{path}: codecs[0].points[1] (quantize bits=17): quantize option bits=17; "
                                 "accepted: an integer from 1 to 16 (bits per sample)")


def test_a_declared_type_refuses_a_value_of_another_type(write_config):
    with pytest.raises(UserError, match=r"points\[0\] \(quantize bits=4.0\): quantize option bits=4.0; accepted: an "
                                        "integer"):
        load_config(config_with_points(write_config, "[{bits: 4.0}]"))


def test_an_option_the_codec_does_not_declare_is_refused(write_config):
    with pytest.raises(UserError, match=r"codecs\[0\]\.points\[0\]\.speed: unknown option for 'quantize'; "
                                        "accepted: bits$"):
        load_config(config_with_points(write_config, "[{bits: 4, speed: 2}]"))


def test_a_codec_built_directly_gets_the_declared_check():
    with pytest.raises(ValueError, match=r"^declared option mode='tiny'; accepted: fast or small$"):
        Declared(mode="tiny")


def test_a_positional_argument_is_checked_by_its_declared_name():
    with pytest.raises(ValueError, match=r"declared option level=10; accepted: an integer from 1 to 9 \(effort\)"):
        Declared(10)


@pytest.mark.parametrize("option, accepted", [
    (CodecOption("q", int, minimum=0, maximum=100), "an integer from 0 to 100"),
    (CodecOption("t", float, minimum=0, maximum=1, exclusive_minimum=True), "a number in (0, 1]"),
    (CodecOption("n", int, minimum=1), "an integer of at least 1"),
    (CodecOption("r", float, minimum=0, exclusive_minimum=True), "a number above 0"),
    (CodecOption("b", int, choices=(10, 12)), "10 or 12"),
    (CodecOption("p", str, choices=("a", "b", "c")), "one of a, b, c"),
    (CodecOption("l", bool), "true or false"),
])
def test_the_accepted_values_are_said_in_words(option, accepted):
    assert option.accepted == accepted


@pytest.fixture
def undeclared_config(tmp_path, write_config):
    (tmp_path / "undeclared_codec.py").write_text(UNDECLARED_CODEC)

    def make(points: str) -> str:
        text = MINIMAL_CONFIG.replace("name: quantize", "name: undeclared").replace("[{bits: 4}, {bits: 8}]", points)
        return write_config(text + "plugins: [undeclared_codec.py]\n")

    return make


def test_an_undeclared_codec_still_has_its_option_names_checked_against_its_constructor(undeclared_config):
    with pytest.raises(UserError, match=r"points\[0\]\.levle: unknown option for 'undeclared'; accepted: level$"):
        load_config(undeclared_config("[{levle: 2}]"))


def test_an_undeclared_codec_still_checks_its_option_values_itself(undeclared_config):
    config, registry = load_config(undeclared_config("[{level: 12}]"))  # the config leaves values to the codec

    with pytest.raises(ValueError, match="undeclared option level=12; accepted: 1 to 9"):
        registry.codec("undeclared")(**config.codecs[0].points[0].codec_options())


def test_list_verbose_shows_each_codecs_declared_options_and_example_point(capsys):
    assert main(["list", "--verbose"]) == 0
    listing = capsys.readouterr().out

    assert "      bits  an integer from 1 to 16, required: bits per sample\n      example point: bits=4" in listing


def test_list_without_verbose_shows_no_options(capsys):
    assert main(["list"]) == 0
    assert "example point" not in capsys.readouterr().out


def test_a_declared_range_refuses_nan():
    option = CodecOption("tolerance", float, minimum=0, maximum=1, exclusive_minimum=True)

    assert option.refusal("sz3", float("nan")) == "sz3 option tolerance=nan; accepted: a number in (0, 1]"
