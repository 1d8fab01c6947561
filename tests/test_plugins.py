"""The plugin system: built-ins, config plugins, drop-in modules and entry points all register codecs."""

from __future__ import annotations

import csv
import importlib.metadata
import textwrap
from pathlib import Path

import pytest

from harness import UserError
from harness import plugins as plugin_module
from harness.cli import main
from harness.plugins import build_registry

CODEC_PLUGIN = """
import numpy as np
from harness import Codec, hookimpl


class {cls}(Codec):
    name = "{name}"

    def encode(self, tile):
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape) / np.float32(255)


@hookimpl
def harness_codecs():
    return [{cls}]
"""


def write_codec_plugin(path: Path, name: str, cls: str = "ByteCodec") -> Path:
    path.write_text(textwrap.dedent(CODEC_PLUGIN.format(name=name, cls=cls)))
    return path


def test_built_in_codecs_datasets_and_metrics_are_registered_with_their_files():
    registry = build_registry()
    assert {"jpeg2000", "quantize", "quantize_zlib"} <= set(registry.codecs)
    assert {"synthetic", "geotiff"} <= set(registry.datasets)
    assert {"psnr", "ssim", "ms_ssim"} <= set(registry.metrics)
    assert registry.codecs["jpeg2000"].origin.endswith("codecs/jpeg2000.py")
    assert registry.datasets["geotiff"].origin.endswith("datasets/geotiff.py")


def test_helper_modules_with_a_leading_underscore_are_not_plugins():
    registry = build_registry()
    origins = [entry.origin for entry in (*registry.codecs.values(), *registry.datasets.values())]
    assert not any("/_" in origin for origin in origins)


def test_a_plugin_file_named_in_the_config_adds_a_codec(tmp_path):
    write_codec_plugin(tmp_path / "my_codec.py", "bytes8")
    registry = build_registry(["my_codec.py"], tmp_path)
    assert registry.codecs["bytes8"].origin == "config plugin my_codec.py"


RAMP_DATASET_PLUGIN = """
import numpy as np
from harness import Tile, hookimpl


class Ramp:
    \"\"\"Horizontal ramps in the normalized domain, one per window and polarisation.\"\"\"

    name = "ramp"

    def __init__(self, settings, windows=2):
        self.settings, self.windows = settings, windows

    def tiles(self):
        side = self.settings.tile_size
        for window in range(self.windows):
            for pol in self.settings.polarisations:
                data = np.tile(np.linspace(0, 1, side, dtype=np.float32), (side, 1))
                yield Tile(f"ramp_{window}_{pol}", "ramp", pol, 0, window * side, data,
                           np.ones((side, side), dtype=bool), tuple(self.settings.normalization[pol]))


@hookimpl
def harness_datasets():
    return [Ramp]
"""


def test_a_dataset_plugin_file_named_in_the_config_supplies_the_tiles(tmp_path, write_config):
    (tmp_path / "ramp_dataset.py").write_text(RAMP_DATASET_PLUGIN)
    config = write_config("""\
        name: ramps
        dataset: {kind: ramp, windows: 3, tile_size: 32, polarisations: [VV]}
        normalization: {VV: [-25, 5]}
        codecs:
          - name: quantize
            points: [{bits: 8}]
        timing: {warmup: 0, repeats: 1, isolate: false}
        plugins: [ramp_dataset.py]
        """)
    assert main(["run", str(config), "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    with (tmp_path / "run" / "results.csv").open(newline="") as file:
        tile_ids = [row["tile_id"] for row in csv.DictReader(file)]
    assert tile_ids == ["ramp_0_VV", "ramp_1_VV", "ramp_2_VV"]


def test_the_plugin_docs_show_the_dataset_plugin_that_the_test_runs():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert RAMP_DATASET_PLUGIN.strip() in docs


def test_a_module_dropped_into_the_codecs_folder_is_registered(tmp_path, monkeypatch):
    # The codecs folder is the namespace package harness_codecs: another portion of it on
    # sys.path is exactly "a module in codecs/", without writing into the source tree.
    folder = tmp_path / "harness_codecs"
    folder.mkdir()
    write_codec_plugin(folder / "dropin_codec.py", "dropin")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    assert registry.codecs["dropin"].origin.endswith("harness_codecs/dropin_codec.py")


@pytest.fixture
def entry_points_on(monkeypatch):
    monkeypatch.setenv("HARNESS_LOAD_ENTRY_POINTS", "1")


def test_an_installed_package_entry_point_adds_a_codec(tmp_path, monkeypatch, entry_points_on):
    write_codec_plugin(tmp_path / "thirdparty_codec.py", "thirdparty")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = importlib.metadata.EntryPoint(name="thirdparty", value="thirdparty_codec", group="harness")
    monkeypatch.setattr(plugin_module.importlib.metadata, "entry_points",
                        lambda group: [entry_point] if group == "harness" else [])
    registry = build_registry()
    assert registry.codecs["thirdparty"].origin.startswith("entry point thirdparty")


def test_an_entry_point_that_fails_to_import_is_skipped_with_a_warning(monkeypatch, entry_points_on):
    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_xyz", group="harness")
    monkeypatch.setattr(plugin_module.importlib.metadata, "entry_points", lambda group: [broken])
    with pytest.warns(UserWarning, match="skipping plugin entry point 'broken'"):
        registry = build_registry()
    assert "jpeg2000" in registry.codecs


def test_entry_points_are_not_loaded_when_the_environment_says_so(tmp_path, monkeypatch):
    write_codec_plugin(tmp_path / "thirdparty_codec.py", "thirdparty")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = importlib.metadata.EntryPoint(name="thirdparty", value="thirdparty_codec", group="harness")
    monkeypatch.setattr(plugin_module.importlib.metadata, "entry_points", lambda group: [entry_point])
    monkeypatch.setenv("HARNESS_LOAD_ENTRY_POINTS", "0")
    assert "thirdparty" not in build_registry().codecs


def test_duplicate_codec_names_are_an_error_naming_both_origins(tmp_path):
    write_codec_plugin(tmp_path / "impostor.py", "jpeg2000")
    with pytest.raises(UserError, match=r"duplicate codec name 'jpeg2000'.*codecs/jpeg2000\.py.*impostor\.py"):
        build_registry(["impostor.py"], tmp_path)


def test_a_missing_plugin_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="plugins: file 'absent.py' not found"):
        build_registry(["absent.py"], tmp_path)


def test_a_plugin_file_that_raises_on_import_is_a_user_error(tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UserError, match="bad.py failed to import: RuntimeError: boom"):
        build_registry(["bad.py"], tmp_path)


def test_list_prints_every_codec_dataset_and_metric_with_its_origin(capsys):
    assert main(["list"]) == 0
    output = capsys.readouterr().out
    assert "codecs:" in output and "datasets:" in output and "metrics:" in output
    assert any(line.split()[:1] == ["jpeg2000"] and "codecs/jpeg2000.py" in line for line in output.splitlines())
    assert any(line.split()[:1] == ["psnr"] and "harness/metrics.py" in line for line in output.splitlines())


def test_list_with_a_config_shows_its_plugins(tmp_path, write_config, capsys):
    write_codec_plugin(tmp_path / "my_codec.py", "bytes8")
    config = write_config("""\
        name: t
        dataset: {kind: synthetic}
        normalization: {VV: [-25, 5], VH: [-32, -2]}
        codecs: [{name: bytes8}]
        plugins: [my_codec.py]
        """)
    assert main(["list", "--config", str(config)]) == 0
    assert "config plugin my_codec.py" in capsys.readouterr().out


TRAINER_PLUGIN = """
from harness import Trainer, hookimpl


class Echo(Trainer):
    name = "echo"
    description = "writes its option to a file"

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True)
        parser.add_argument("--steps", type=int, default=1)

    def train(self, args):
        with open(args.out, "w") as handle:
            handle.write(str(args.steps))


@hookimpl
def harness_trainers():
    return [Echo]
"""


def test_train_dispatches_to_the_trainer_plugin_with_its_own_options(tmp_path, monkeypatch):
    folder = tmp_path / "harness_codecs"
    folder.mkdir()
    (folder / "echo_trainer.py").write_text(TRAINER_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["train", "echo", "--out", str(tmp_path / "done.txt"), "--steps", "7"]) == 0
    assert (tmp_path / "done.txt").read_text() == "7"


def test_the_plugin_docs_show_the_trainer_plugin_that_the_test_runs():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert TRAINER_PLUGIN.strip() in docs


def test_train_with_an_unknown_trainer_name_is_a_user_error(capsys):
    assert main(["train", "no-such-trainer"]) == 2
    assert "unknown trainer 'no-such-trainer'" in capsys.readouterr().err


def test_every_hook_has_a_contract_docstring_and_is_documented_in_the_plugin_docs():
    from harness import hookspecs

    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("harness_")]
    assert hooks
    for name in hooks:
        assert len((getattr(hookspecs, name).__doc__ or "").strip()) > 40, name
        assert f"`{name}`" in docs, name


def test_every_hook_is_implemented_by_a_plugin_written_in_a_test():
    """As datasette's meta-tests: a hook that no test-local plugin uses is a contract nobody has tried."""
    from harness import hookspecs

    tests = "\n".join(path.read_text(encoding="utf-8") for path in Path(__file__).resolve().parent.glob("test_*.py"))
    untried = [name for name in dir(hookspecs) if name.startswith("harness_") and f"def {name}(" not in tests]
    assert untried == []


UNAVAILABLE_PLUGIN = """
from harness import Codec, hookimpl


class Missing(Codec):
    name = "missing"
    unavailable = "the library superzip is not installed; pip install superzip"


@hookimpl
def harness_codecs():
    return [Missing]
"""


def test_an_unavailable_codec_is_listed_with_its_reason(tmp_path, write_config, capsys):
    (tmp_path / "missing.py").write_text(UNAVAILABLE_PLUGIN)
    config = write_config("""\
        name: t
        dataset: {kind: synthetic}
        normalization: {VV: [-25, 5], VH: [-32, -2]}
        codecs: [{name: quantize, points: [{bits: 4}]}]
        plugins: [missing.py]
        """)
    assert main(["list", "--config", str(config)]) == 0
    assert "[unavailable: the library superzip is not installed; pip install superzip]" in capsys.readouterr().out


def test_a_config_asking_for_an_unavailable_codec_fails_with_the_reason(tmp_path, write_config, capsys):
    (tmp_path / "missing.py").write_text(UNAVAILABLE_PLUGIN)
    config = write_config("""\
        name: t
        dataset: {kind: synthetic}
        normalization: {VV: [-25, 5], VH: [-32, -2]}
        codecs: [{name: missing}]
        plugins: [missing.py]
        """)
    assert main(["run", str(config)]) == 2
    assert "codec 'missing' is unavailable: the library superzip is not installed" in capsys.readouterr().err


def test_every_column_of_every_built_in_metric_is_documented_in_the_metrics_docs():
    import numpy as np

    from harness import MetricInput
    from harness.plugins import build_registry

    docs = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    tile = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    pair = MetricInput(tile, tile, np.ones(tile.shape, dtype=bool), (-25.0, 5.0))
    columns = [column for entry in build_registry().metrics.values() if entry.origin.startswith("harness/")
               for column in entry.obj(pair)]
    assert "cfar_f1" in columns
    assert [column for column in columns if f"`{column}`" not in docs] == []


@pytest.mark.parametrize("body, message", [
    ("class NotACodec:\n    name = 'plain'\n", r"is not a subclass of harness\.Codec"),
    ("from harness import Codec\nclass Nameless(Codec):\n    pass\n", r"has no name"),
])
def test_a_codec_plugin_breaking_the_contract_is_one_line_naming_its_file(tmp_path, body, message):
    cls = body.split("class ")[1].split("(")[0].split(":")[0]
    (tmp_path / "broken.py").write_text(f"from harness import hookimpl\n{body}\n@hookimpl\n"
                                        f"def harness_codecs():\n    return [{cls}]\n")
    with pytest.raises(UserError, match=rf"codec plugin from config plugin broken\.py: .*{message}"):
        build_registry(["broken.py"], tmp_path)


def test_a_codec_whose_constructor_fails_unexpectedly_is_one_line(tmp_path, write_config, dual_pol_geotiff, capsys):
    (tmp_path / "grumpy.py").write_text(
        "from harness import Codec, hookimpl\n"
        "class Grumpy(Codec):\n    name = 'grumpy'\n"
        "    def __init__(self):\n        raise RuntimeError('no licence server')\n"
        "@hookimpl\ndef harness_codecs():\n    return [Grumpy]\n")
    config = write_config("name: unit\ndataset:\n  kind: geotiff\n  paths: [scene.tif]\n  tile_size: 32\n"
                          "normalization:\n  VV: [-25, 5]\n  VH: [-32, -2]\ncodecs:\n  - name: grumpy\n"
                          "plugins: [grumpy.py]\n")
    assert main(["run", str(config), "--output", str(tmp_path / "run"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "the codec failed to start: RuntimeError: no licence server" in error and "Traceback" not in error


def test_train_help_describes_the_command_and_asks_only_for_a_trainer_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0 and "NAME --help" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train"])
    assert capsys.readouterr().err.strip().endswith("the following arguments are required: NAME")


def drop_into_codecs_folder(tmp_path: Path, monkeypatch, module: str, first_line: str) -> None:
    """A module in codecs/ (another portion of the harness_codecs namespace package) starting with ``first_line``."""
    folder = tmp_path / "harness_codecs"
    folder.mkdir(exist_ok=True)
    write_codec_plugin(folder / f"{module}.py", "superzip")
    (folder / f"{module}.py").write_text(f"{first_line}\n" + (folder / f"{module}.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def built_in_lacking_a_library(tmp_path, monkeypatch):
    """A built-in codec module that imports a third-party library this machine does not have."""
    drop_into_codecs_folder(tmp_path, monkeypatch, "superzip_codec", "import superzip_not_installed")


def test_a_built_in_module_lacking_a_third_party_library_is_skipped_and_the_rest_loads(built_in_lacking_a_library):
    registry = build_registry()
    assert registry.skipped == (plugin_module.SkippedModule(
        "harness_codecs.superzip_codec", "superzip_not_installed", "No module named 'superzip_not_installed'"),)
    assert "superzip" not in registry.codecs
    assert {"quantize", "jpeg2000"} <= set(registry.codecs) and "psnr" in registry.metrics


def test_asking_for_a_name_a_skipped_built_in_would_provide_names_the_module_and_library_in_one_line(
        built_in_lacking_a_library, write_config, capsys):
    config = write_config("""\
        name: t
        dataset: {kind: synthetic}
        normalization: {VV: [-25, 5], VH: [-32, -2]}
        codecs: [{name: superzip}]
        """)
    assert main(["run", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "codecs[0].name: unknown codec 'superzip'; registered: " in error
    assert error.endswith("; not loaded on this machine: harness_codecs.superzip_codec (No module named "
                          "'superzip_not_installed'): install the project's dependencies (bash scripts/setup.sh)")


def test_a_built_in_module_importing_a_missing_project_module_is_still_fatal(tmp_path, monkeypatch):
    drop_into_codecs_folder(tmp_path, monkeypatch, "buggy_codec", "import harness_codecs._missing")
    with pytest.raises(ModuleNotFoundError, match="harness_codecs._missing"):
        build_registry()


def test_list_names_the_skipped_built_ins_and_missing_libraries_on_stderr(built_in_lacking_a_library, capsys):
    assert main(["list"]) == 0
    output = capsys.readouterr()
    assert output.err == ("warning: built-in plugins not loaded on this machine: harness_codecs.superzip_codec "
                          "(No module named 'superzip_not_installed'): install the project's dependencies "
                          "(bash scripts/setup.sh)\n")
    assert "quantize" in output.out
