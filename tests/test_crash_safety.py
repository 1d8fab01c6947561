"""kill -9 at the worst moments never loses a finished row: real SIGKILLs, injected where only tests ask
(``HARNESS_TEST_KILL_AT``), then ``--resume``."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_CONFIG

FLAKY = '''
import numpy as np
from harness import Codec, hookimpl


class EveryOther(Codec):
    """8-bit bytes; encode fails on every second tile it sees, until ERRORS_FIXED is set."""
    name = "every_other"
    calls = 0

    def encode(self, tile):
        EveryOther.calls += 1
        if EveryOther.calls % 2 == 0 and not __import__("os").environ.get("ERRORS_FIXED"):
            raise ValueError("flaky")
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape) / np.float32(255)


@hookimpl
def harness_codecs():
    return [EveryOther]
'''


@pytest.fixture
def config(tmp_path, dual_pol_geotiff, write_config) -> Path:
    (tmp_path / "flaky.py").write_text(FLAKY)
    text = MINIMAL_CONFIG.replace("  - name: quantize\n    points: [{bits: 4}, {bits: 8}]\n",
                                  "  - name: quantize\n    points: [{bits: 4}, {bits: 8}]\n  - name: every_other\n")
    return write_config(text + "plugins: [flaky.py]\n")


def harness(config: Path, run_dir: Path, *flags: str, **environment: str) -> int:
    command = [sys.executable, "-m", "harness", "run", str(config), "--output", str(run_dir), "--no-progress", *flags]
    return subprocess.run(command, env={**os.environ, **environment}, capture_output=True).returncode


def rows(run_dir: Path) -> list[dict[str, str]]:
    """The complete rows on disk: a line the kill cut short (no newline yet) is not one."""
    text = (run_dir / "results.csv").read_text()
    return [row for row in csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1]))
            if None not in row.values()]


def finished(run_dir: Path) -> set[tuple[str, str, str]]:
    return {(row["codec"], row["point"], row["tile_id"]) for row in rows(run_dir) if not row["error"]
            and row["psnr"]}


def test_a_run_killed_in_the_middle_of_a_row_loses_only_that_row(tmp_path, config):
    run_dir = tmp_path / "run"
    assert harness(config, run_dir, HARNESS_TEST_KILL_AT="row:4") == -signal.SIGKILL
    before = finished(run_dir)
    assert len(before) == 3

    assert harness(config, run_dir, "--resume", ERRORS_FIXED="1") == 0

    after = rows(run_dir)
    assert before <= finished(run_dir) and len(after) == 18
    assert len({(row["codec"], row["point"], row["tile_id"]) for row in after}) == 18


def test_a_resume_killed_while_it_rewrites_the_results_keeps_every_finished_row(tmp_path, config):
    run_dir = tmp_path / "run"
    assert harness(config, run_dir) == 0
    before = finished(run_dir)
    assert len(before) == 15  # 12 quantize rows, and 3 of the flaky codec's 6

    assert harness(config, run_dir, "--resume", HARNESS_TEST_KILL_AT="rewrite") == -signal.SIGKILL
    assert finished(run_dir) == before

    assert harness(config, run_dir, "--resume", ERRORS_FIXED="1") == 0
    assert len(finished(run_dir)) == 18 and len(rows(run_dir)) == 18
