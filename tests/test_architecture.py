"""The import contracts of pyproject.toml ([tool.importlinter]) hold: harness is layered and has no import cycle, and
the built-in codecs and datasets import only the public API and not each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    # --no-cache: nothing written into the checkout
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
