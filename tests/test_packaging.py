"""The installable wheel holds every module of the project, not only those of the top folders."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
