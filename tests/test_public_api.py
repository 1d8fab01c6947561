"""The built-in plugins use only the public API, so it is proven sufficient for third-party plugins."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

PROJECT = Path(harness.__file__).resolve().parent.parent
PLUGIN_PACKAGES = {"codecs": "harness_codecs", "datasets": "harness_datasets"}


def harness_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every import of the harness in a file; name is None for ``import module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "harness"]
    return found


def plugin_files() -> list[Path]:
    return sorted(path for folder in PLUGIN_PACKAGES for path in (PROJECT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", plugin_files(), ids=lambda path: str(path.relative_to(PROJECT)))
def test_built_in_plugins_import_only_the_public_api(path):
    private = [f"{module}.{name}" if name else module for module, name in harness_imports(path)
               if module not in harness.PUBLIC_MODULES or (module == "harness" and name not in harness.__all__)]
    assert private == [], "import these through harness (add them to its public API, documented) instead"


@pytest.mark.parametrize("folder", sorted(PLUGIN_PACKAGES))
def test_a_plugin_package_does_not_import_another(folder):
    others = {package for name, package in PLUGIN_PACKAGES.items() if name != folder}
    offenders = []
    for path in sorted((PROJECT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [node.module] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {module}" for module in modules if module and module.split(".")[0] in others]
    assert offenders == [], "reach another plugin through the registry (BenchmarkContext.dataset), not by import"


def test_every_public_name_is_importable():
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name


def test_importing_harness_does_not_import_the_run_or_torch():
    """A dataset plugin imports harness; it should not pay for torch, the run or the tile stream (imported on first
    use of BenchmarkContext)."""
    import subprocess
    import sys

    code = ("import sys, harness; "
            "print(*(name in sys.modules for name in ('torch', 'harness.run', 'harness.measure', 'harness.tiles')))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False", "False", "False"]


class _CodecWithoutMethods(harness.Codec):
    name = "without-methods"


@pytest.mark.parametrize("call, method", [
    (lambda codec: codec.encode(None), r"encode\(self, tile\) -> bytes"),
    (lambda codec: codec.decode(b"", (8, 8)), r"decode\(self, data, shape\) -> array"),
])
def test_a_codec_class_without_its_methods_says_which_class_lacks_which_method_and_what_to_define(call, method):
    with pytest.raises(NotImplementedError, match=rf"^tests\.test_public_api\._CodecWithoutMethods does not define "
                                                  rf"{method}; a harness\.Codec subclass must define encode and "
                                                  r"decode$"):
        call(_CodecWithoutMethods())


def test_a_trainer_class_without_train_says_so():
    class Idle(harness.Trainer):
        name = "idle"

    with pytest.raises(NotImplementedError, match=r"Idle does not define train\(self, args\); a harness\.Trainer "
                                                  r"subclass must define train$"):
        Idle().train(None)
