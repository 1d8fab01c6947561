"""Config loading: every mistake is one line naming the file and the key, exit status 2."""

from __future__ import annotations

import pytest
import yaml

from harness import UserError
from harness.cli import main
from harness.config import load_config, resolved_config_yaml
from tests.conftest import MINIMAL_CONFIG


def test_a_valid_config_loads_into_typed_objects_with_defaults(write_config):
    config, _ = load_config(write_config(MINIMAL_CONFIG))
    assert config.name == "unit"
    assert config.seed == 0 and config.device == "auto"
    assert config.dataset.tile_size == 32 and config.dataset.polarisations == ("VV", "VH")
    assert config.dataset.options == {"paths": ["scene.tif"]}
    assert config.normalization["VH"] == (-32.0, -2.0)
    assert [point.label for point in config.codecs[0].points] == ["bits=4", "bits=8"]
    assert config.timing.repeats == 1


def test_a_config_without_isolate_isolates_its_codecs_with_a_120_s_timeout_and_a_breaker_after_2(write_config):
    config, _ = load_config(write_config(MINIMAL_CONFIG.replace(", isolate: false", "")))
    assert config.timing.isolate and config.timing.timeout_s == 120 and config.timing.breaker_after == 2


def test_the_shipped_default_benchmark_is_valid_and_real():
    config, _ = load_config("benchmarks.yaml")
    assert config.name == "default" and config.dataset.kind == "geotiff"
    assert config.dataset.options["paths"] == ["data/test/sen1floods11"]


@pytest.mark.parametrize("study", ["benchmarks-real.yaml", "benchmarks-matched.yaml"])
def test_the_real_data_studies_code_exactly_the_default_test_set(study):
    """benchmarks-real.yaml is what the shipped checkpoint was checked against; benchmarks-matched.yaml compares
    the default's codecs at matched rates: both must test the default's tiles."""
    default, _ = load_config("benchmarks.yaml")
    config, _ = load_config(study)
    assert config.dataset == default.dataset and config.normalization == default.normalization


def test_the_matched_rate_study_has_every_default_codec_at_the_same_four_targets():
    default, _ = load_config("benchmarks.yaml")
    matched, _ = load_config("benchmarks-matched.yaml")
    targets = {codec.name: [point.target_bpp for point in codec.points] for codec in matched.codecs}
    assert targets == {codec.name: [0.25, 0.5, 1.0, 2.0] for codec in default.codecs}


def test_the_default_benchmark_runs_every_built_in_codec_trained_on_real_data_or_untrained():
    """The toy autoencoders were trained on synthetic scenes: they belong to benchmarks-synthetic.yaml."""
    config, registry = load_config("benchmarks.yaml")
    built_in = {name for name, entry in registry.codecs.items() if entry.origin.startswith("codecs/")}
    toys = {"autoencoder", "autoencoder_factorized", "autoencoder_hyperprior"}
    assert {codec.name for codec in config.codecs} == built_in - toys


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", r"not valid YAML at line 2, column 1"),
    (MINIMAL_CONFIG + "colour: blue\n", r"colour: unknown key"),
    (MINIMAL_CONFIG.replace("max_tiles: 3", "max_tiles: three"), r"dataset\.max_tiles: expected an integer or 'all', got str 'three'"),
    (MINIMAL_CONFIG.replace("name: quantize", "name: jpeg3000"), r"codecs\[0\]\.name: unknown codec 'jpeg3000'"),
    (MINIMAL_CONFIG.replace("{bits: 4}", "{bitz: 4}"), r"codecs\[0\]\.points\[0\]\.bitz: unknown option for 'quantize'"),
    (MINIMAL_CONFIG.replace("  VH: [-32, -2]\n", ""), r"normalization\.VH: missing dB range"),
    (MINIMAL_CONFIG.replace("VV: [-25, 5]", "VV: [5, -25]"), r"normalization\.VV: low \(5\.0\) must be below high"),
    (MINIMAL_CONFIG.replace("kind: geotiff", "kind: sentinel9"), r"dataset\.kind: unknown dataset 'sentinel9'"),
    (MINIMAL_CONFIG.replace("name: unit", "name: a/b"), r"name: 'a/b' must be a plain folder name"),
    (MINIMAL_CONFIG.replace("[{bits: 4}, {bits: 8}]", "[]"), r"codecs\[0\]\.points: empty; list at least one"),
    (MINIMAL_CONFIG + "seed: 1\nseed: 2\n", r"not valid YAML at line \d+, column 1: duplicate key 'seed'"),
    (MINIMAL_CONFIG.replace("VV: [-25, 5]", "VV: [-.inf, 5]"), r"normalization\.VV: expected finite dB bounds"),
    (MINIMAL_CONFIG.replace("[{bits: 4}, {bits: 8}]", "[{bits: 4}, {bits: 8}, {bits: 4}]"),
     r"codecs\[0\]\.points\[2\]: repeats points\[0\] \(bits=4\)"),
    (MINIMAL_CONFIG.replace("  paths: [scene.tif]\n", "  colour: red\n"), r"dataset\.colour: unknown option for 'geotiff'"),
    ("- just\n- a list\n", r"expected a mapping, got list"),
])
def test_bad_config_values_are_reported_with_file_and_key(write_config, text, expected):
    path = write_config(text)
    with pytest.raises(UserError, match=expected) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_a_tile_smaller_than_a_codec_needs_is_rejected_before_running(write_config):
    text = MINIMAL_CONFIG.replace("tile_size: 32", "tile_size: 8").replace("name: quantize", "name: jpeg2000")
    text = text.replace("{bits: 4}, {bits: 8}", "{bpp: 1.0}")
    with pytest.raises(UserError, match=r"dataset\.tile_size: 8 is smaller than codec 'jpeg2000' needs"):
        load_config(write_config(text))


def test_a_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_the_cli_prints_one_error_line_and_exits_2_without_traceback(write_config, capsys):
    path = write_config("name: [unclosed\n")
    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and str(path) in error
    assert len(error.strip().splitlines()) == 1
    assert "Traceback" not in error


def test_every_mistake_of_a_config_is_reported_in_one_round_one_line_each(write_config, capsys):
    text = (MINIMAL_CONFIG.replace("max_tiles: 3", "max_tiles: three").replace("VH: [-32, -2]", "VH: [-2, -32]")
            .replace("{bits: 4}, {bits: 8}", "{bitz: 4}, {bits: 8}, {bits: 8}").replace("repeats: 1", "repeats: 0"))
    path = write_config(text)

    assert main(["run", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(": ")[2] for line in lines] == [
        "dataset.max_tiles", "codecs[0].points[0].bitz", "codecs[0].points[2]", "normalization.VH", "timing.repeats"]
    assert all(line.startswith(f"error: {path}: ") for line in lines)


def test_the_codecs_are_still_checked_when_the_dataset_section_is_wrong(write_config):
    text = MINIMAL_CONFIG.replace("kind: geotiff", "kind: nosuchkind").replace("name: quantize", "name: jpeg3000")

    with pytest.raises(UserError) as raised:
        load_config(write_config(text))

    assert "dataset.kind: unknown dataset" in str(raised.value)
    assert "codecs[0].name: unknown codec 'jpeg3000'" in str(raised.value)


def test_an_output_folder_that_cannot_be_written_is_one_error_line_naming_it(tmp_path, write_config,
                                                                             dual_pol_geotiff, capsys):
    path = write_config(MINIMAL_CONFIG)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["run", str(path), "--output", str(blocker / "run"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {blocker / 'run'}: ") and len(error.strip().splitlines()) == 1


def test_debug_flag_shows_the_traceback(write_config, capsys):
    path = write_config("name: [unclosed\n")
    assert main(["--debug", "run", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_the_shipped_synthetic_benchmark_runs_every_built_in_codec():
    config, registry = load_config("benchmarks-synthetic.yaml")
    built_in = {name for name, entry in registry.codecs.items() if entry.origin.startswith("codecs/")}
    assert built_in and built_in == {codec.name for codec in config.codecs}


def test_max_tiles_all_asks_for_every_window_and_the_resolved_config_says_so(write_config):
    config, _ = load_config(write_config(MINIMAL_CONFIG.replace("max_tiles: 3", "max_tiles: all")))

    assert config.dataset.max_tiles is None
    assert yaml.safe_load(resolved_config_yaml(config))["dataset"]["max_tiles"] == "all"
