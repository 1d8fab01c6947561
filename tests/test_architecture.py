"""The import contracts of pyproject.toml ([tool.importlinter]) hold: harness is layered and has no import cycle, and
the built-in codecs and datasets import only the public API and not each other; and the code stays in small
pieces."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    # --no-cache: nothing written into the checkout
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


CODE = [path for folder in ("harness", "codecs", "datasets") for path in sorted((PROJECT / folder).rglob("*.py"))]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(PROJECT)): lines for path in CODE
            if (lines := path.read_text().count("\n")) > MAX_MODULE_LINES}
    assert not long, f"split these modules by job: {long}"


def test_no_function_is_over_50_lines():
    long = [f"{path.relative_to(PROJECT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in CODE for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"split these functions: {long}"
