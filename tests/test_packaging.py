"""The installable wheel holds every module and shipped checkpoint, and works on its own."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def installed_package_folders() -> dict[str, Path]:
    """Each package pyproject.toml installs, with the folder it is built from."""
    setuptools = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = setuptools["package-dir"]
    folders = {}
    for package in setuptools["packages"]:
        top, *rest = package.split(".")
        folders[package] = REPOSITORY / roots.get(top, top) / Path(*rest)
    return folders


def test_every_folder_of_python_modules_in_the_project_packages_is_installed():
    installed = set(installed_package_folders().values())
    sources = {REPOSITORY / root for root in ("harness", "codecs", "datasets")}
    with_modules = {path.parent for source in sources for path in source.rglob("*.py")
                    if "__pycache__" not in path.parts}

    assert with_modules - installed == set()


INSTALLED_RUN_CONFIG = """\
name: from-the-wheel
dataset: {kind: synthetic, tile_size: 64, max_tiles: 2, polarisations: [VV]}
normalization: {VV: [-25, 5]}
timing: {warmup: 0, repeats: 1}
codecs:
  - name: quantize
    points: [{bits: 4}]
  - name: autoencoder
    points: [{checkpoint: autoencoder-tiny-c16-b4.pt}]
"""


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without dependencies) into a folder of its own."""
    wheels, site = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPOSITORY), "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(wheels)], check=True, cwd=wheels)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--quiet", "--target", str(site)],
                   check=True, cwd=wheels)
    return site


def harness_from(site: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m harness`` importing the installed copy: PYTHONPATH comes before the editable install."""
    environment = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "harness", *arguments], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600)


def test_the_wheel_holds_every_module_and_the_shipped_checkpoints(installed_wheel):
    shipped = {path.name for path in (REPOSITORY / "checkpoints").glob("*.pt")
               if subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=REPOSITORY,
                                 capture_output=True).returncode == 0}
    modules = {path.relative_to(REPOSITORY / root).as_posix() for root in ("harness", "codecs", "datasets")
               for path in (REPOSITORY / root).rglob("*.py")}
    installed = {path.relative_to(installed_wheel / root).as_posix()
                 for root in ("harness", "harness_codecs", "harness_datasets")
                 for path in (installed_wheel / root).rglob("*.py")}

    assert shipped and {path.name for path in (installed_wheel / "harness_checkpoints").glob("*.pt")} == shipped
    assert modules <= installed


def test_an_installed_wheel_lists_the_codecs_from_its_own_files(installed_wheel, tmp_path):
    listing = harness_from(installed_wheel, "list", cwd=tmp_path)
    where = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed_wheel)}, capture_output=True, text=True)

    assert listing.returncode == 0, listing.stderr
    assert "jpeg2000" in listing.stdout and "autoencoder" in listing.stdout
    assert where.stdout.startswith(str(installed_wheel))


def test_an_installed_wheel_runs_a_config_outside_the_repository_with_a_shipped_checkpoint(installed_wheel, tmp_path):
    (tmp_path / "benchmark.yaml").write_text(INSTALLED_RUN_CONFIG)

    result = harness_from(installed_wheel, "run", "benchmark.yaml", "--output", "out", "--no-progress", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert {row["codec"] for row in rows} == {"quantize", "autoencoder"}
    assert all(not row["error"] for row in rows)
