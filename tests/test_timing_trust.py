"""A run says when its speeds cannot be trusted: a loaded machine, or timed repeats that spread widely."""

from __future__ import annotations

import csv
import json

from harness import run
from harness.cli import main
from tests.conftest import IN_PROCESS, MINIMAL_CONFIG

JITTERY = '''
import time

import numpy as np
from harness import Codec, hookimpl


class Jittery(Codec):
    """8-bit samples; every other encode stalls 30 ms, as on a machine where other work takes the core."""
    name = "jittery"
    calls = 0

    def encode(self, tile):
        Jittery.calls += 1
        if Jittery.calls % 2:
            time.sleep(0.03)
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape) / np.float32(255)


@hookimpl
def harness_codecs():
    return [Jittery]
'''


def run_cli(tmp_path, write_config, codecs: str) -> tuple[int, str]:
    (tmp_path / "jittery.py").write_text(JITTERY)
    text = MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n" + codecs + "plugins: [jittery.py]\n" \
        f"timing: {{warmup: 0, repeats: 4, {IN_PROCESS}}}\n"
    status = main(["run", str(write_config(text)), "--output", str(tmp_path / "run"), "--no-progress"])
    return status, tmp_path / "run"


def test_a_loaded_machine_is_recorded_and_warned_about(tmp_path, dual_pol_geotiff, write_config, monkeypatch, capsys):
    monkeypatch.setattr(run, "load_average", lambda: [9.0, 5.0, 2.0])

    status, run_dir = run_cli(tmp_path, write_config, "  - name: quantize\n    points: [{bits: 4}]\n")

    environment = json.loads((run_dir / "environment.json").read_text())
    assert status == 0 and environment["load_average_end"] == [9.0, 5.0, 2.0]
    assert "warning: the load average reached 9 on" in capsys.readouterr().err


def test_a_codec_whose_repeats_stall_is_named_in_a_warning_and_its_rows_keep_the_spread(
        tmp_path, dual_pol_geotiff, write_config, monkeypatch, capsys):
    monkeypatch.setattr(run, "load_average", lambda: [0.0, 0.0, 0.0])

    status, run_dir = run_cli(tmp_path, write_config, "  - name: jittery\n")

    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    spreads = {row["codec"]: float(row["encode_spread"]) for row in rows}
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert status == 0 and spreads["jittery"] > 1.5  # 30 ms, 0, 30 ms, 0: (30 - 0) / 15
    assert any(line.startswith("warning: jittery: the timed repeats of a call differ by") for line in warnings)
