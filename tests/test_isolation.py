"""Codecs in a worker process (the default, ``timing: {isolate: true}``): hangs and crashes become error rows, and
a point that keeps failing so is stopped (the breaker)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from html import escape
from pathlib import Path

import pytest

from harness import UserError
from harness.config import load_config
from harness.run import RunOptions, run_benchmark
from harness.results import BPP, BYTES, ERROR, TIMING_COLUMNS
from tests.conftest import MINIMAL_CONFIG, run_rows

ROOT = Path(__file__).resolve().parents[1]

HAZARDS = '''
import ctypes
import os
import signal
import time

import numpy as np
from harness import Codec, hookimpl


class Hazard(Codec):
    """8-bit bytes, or on decode: hang, crash the process, or raise, as asked."""
    name = "hazard"

    def __init__(self, does="nothing"):
        self.does = does

    def encode(self, tile):
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        if self.does == "hang" or (self.does == "hang while HAZARD_HANGS is set" and os.environ.get("HAZARD_HANGS")):
            time.sleep(3600)
        if self.does == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.does == "raise":
            raise ValueError("corrupt stream")
        if self.does == "hang in native code":
            ctypes.CDLL(None).pause()  # blocks in libc, where no Python signal handler runs
        if self.does == "abort":
            os.abort()
        if self.does == "return nan":
            return np.full(shape, np.nan, dtype=np.float32)
        if self.does == "return 7.5":
            return np.full(shape, 7.5, dtype=np.float32)
        return np.frombuffer(data, dtype=np.uint8).reshape(shape) / np.float32(255)


@hookimpl
def harness_codecs():
    return [Hazard]
'''


@pytest.fixture
def bench(tmp_path, dual_pol_geotiff, write_config):
    """A config with the given codecs section, the hazard codec as a plugin, and process isolation."""
    (tmp_path / "hazards.py").write_text(HAZARDS)

    def make(codecs: str, isolation: str = "isolate: true, timeout_s: 2", windows: int = 1) -> Path:
        # 2 tiles a window (VV and VH), 1 window by default: workers are slow to start
        text = MINIMAL_CONFIG.split("codecs:")[0].replace("max_tiles: 3", f"max_tiles: {windows}")
        text += "codecs:\n" + textwrap.indent(textwrap.dedent(codecs), "  ")
        return write_config(text + f"plugins: [hazards.py]\ntiming: {{warmup: 0, repeats: 1, {isolation}}}\n")

    return make


def measured(row: dict[str, str]) -> dict[str, str]:
    """A row without its timing columns, which differ from run to run."""
    return {key: value for key, value in row.items() if key not in TIMING_COLUMNS}


def test_an_isolated_run_gives_the_rows_of_an_in_process_run(tmp_path, bench):
    codecs = "- name: quantize\n  points: [{bits: 4}]\n- name: hazard\n"
    isolated = run_rows(bench(codecs), tmp_path / "isolated")
    in_process = run_rows(bench(codecs, isolation="isolate: false"), tmp_path / "in_process")
    assert [measured(row) for row in isolated] == [measured(row) for row in in_process]


@pytest.mark.parametrize("does, message", [
    ("hang", "no answer within 2 s; the codec's worker process was stopped"),
    ("crash", "the codec's worker process died (signal SIGSEGV)"),
    ("raise", "ValueError: corrupt stream"),
])
def test_a_codec_that_hangs_crashes_or_raises_gives_error_rows_and_the_run_goes_on(tmp_path, bench, does, message):
    rows = run_rows(bench(f"- name: hazard\n  points: [{{does: {does}}}, {{does: nothing}}]\n"), tmp_path / "run")

    failed = [row for row in rows if row["point"] == f"does={does}"]
    assert len(failed) == 2 and all(row["error"] == message for row in failed)
    assert all(row["error"] == "" and row["psnr"] for row in rows if row["point"] == "does=nothing")


def test_a_run_with_a_native_hang_an_abort_nan_and_7_5_finishes_with_an_error_row_for_each(tmp_path, bench):
    hazards = ["hang in native code", "abort", "return nan", "return 7.5"]
    points = ", ".join(f"{{does: {does}}}" for does in hazards)
    rows = run_rows(bench(f"- name: quantize\n  points: [{{bits: 4}}]\n- name: hazard\n  points: [{points}]\n"),
                    tmp_path / "run")

    errors = {row["point"]: row["error"] for row in rows if row["codec"] == "hazard"}
    assert errors == {
        "does=hang in native code": "no answer within 2 s; the codec's worker process was stopped",
        "does=abort": "the codec's worker process died (signal SIGABRT)",
        "does=return nan": "ValueError: decode returned 1024 non-finite values (NaN or inf); expected floats in [0, 1]",
        "does=return 7.5": "ValueError: decode returned values up to 7.5; expected floats in [0, 1]",
    }
    assert [row["error"] for row in rows if row["codec"] == "quantize"] == ["", ""]


def test_an_isolated_learned_codec_range_coding_in_worker_processes_gives_the_in_process_rates(tmp_path, bench):
    """The isolated codec's process starts processes of its own, which a daemonic process could not."""
    checkpoint = ROOT / "checkpoints" / "autoencoder-tiny-factorized-l60.pt"
    point = f"{{checkpoint: {checkpoint}"
    pooled = run_rows(bench(f"- name: autoencoder_factorized\n  points: [{point}, range_coding_processes: 2}}]\n",
                            isolation="isolate: true, timeout_s: 120"), tmp_path / "pooled")
    in_process = run_rows(bench(f"- name: autoencoder_factorized\n  points: [{point}}}]\n",
                                isolation="isolate: false"), tmp_path / "in_process")

    assert [row[ERROR] for row in pooled] == ["", ""]
    assert [[row[column] for column in (BYTES, BPP, "psnr")] for row in pooled] == \
        [[row[column] for column in (BYTES, BPP, "psnr")] for row in in_process]


def test_match_bpp_searches_in_the_worker_too(tmp_path, bench):
    rows = run_rows(bench("- name: quantize\n  points: [{match_bpp: 4.5}]\n"), tmp_path / "run")
    assert len(rows) == 2 and all(row["error"] == "" and float(row["bpp"]) <= 4.5 for row in rows)


@pytest.mark.parametrize("isolation, message", [
    ("isolate: yes please", r"timing\.isolate: expected true or false"),
    ("isolate: true, timeout_s: 0", r"timing\.timeout_s: expected a number of seconds above 0"),
    ("processes: 4", r"timing\.processes: unknown key"),
    ("breaker_after: 0", r"timing\.breaker_after: must be at least 1, got 0"),
    ("breaker_after: two", r"timing\.breaker_after: expected an integer, got str 'two'"),
])
def test_a_bad_isolation_setting_is_one_line(bench, isolation, message):
    with pytest.raises(UserError, match=message):
        load_config(bench("- name: quantize\n  points: [{bits: 4}]\n", isolation=isolation))


def test_a_config_without_isolate_survives_a_decoder_that_hangs_with_an_error_row(tmp_path, bench):
    rows = run_rows(bench("- name: hazard\n  points: [{does: hang}]\n", isolation="timeout_s: 1"), tmp_path / "run")
    assert [row[ERROR] for row in rows] == ["no answer within 1 s; the codec's worker process was stopped"] * 2


UNGUARDED_SCRIPT = """
import csv, sys
from pathlib import Path
from harness.config import load_config
from harness.run import RunOptions, run_benchmark

config, registry = load_config(Path(sys.argv[1]))
run_benchmark(config, registry, RunOptions(run_dir=Path(sys.argv[2]), progress=False, report=False))
print([row["error"] for row in csv.DictReader(open(Path(sys.argv[2]) / "results.csv"))])
"""


def test_a_script_calling_run_benchmark_without_a_main_guard_runs_isolated(tmp_path, bench):
    """spawn would import the script again in the codec's worker, which would run the benchmark again there."""
    (tmp_path / "script.py").write_text(UNGUARDED_SCRIPT)
    config = bench("- name: hazard\n  points: [{does: abort}, {does: nothing}]\n", isolation="timeout_s: 30")
    done = subprocess.run([sys.executable, "script.py", str(config), "run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    died = "the codec's worker process died (signal SIGABRT)"
    assert done.returncode == 0 and done.stdout.strip() == str([died, died, "", ""])


@pytest.mark.parametrize("isolation, recorded, line", [
    ("isolate: false", {"isolate": False}, "codec calls: in the run's process (timing.isolate: false)"),
    ("timeout_s: 30, breaker_after: 3", {"isolate": True, "timeout_s": 30, "breaker_after": 3},
     "codec calls: in a worker process, 30 s a call: a call without an answer is an error row, and a rate point "
     "stops after 3 of them in a row"),
])
def test_environment_json_and_the_report_say_where_the_codec_calls_ran(tmp_path, bench, isolation, recorded, line):
    run_rows(bench("- name: quantize\n  points: [{bits: 4}]\n", isolation=isolation), tmp_path / "run")

    assert json.loads((tmp_path / "run" / "environment.json").read_text())["isolation"] == recorded
    assert line in (tmp_path / "run" / "summary.md").read_text()
    assert escape(line.removeprefix("codec calls: ")) in (tmp_path / "run" / "report.html").read_text()


def stopped(calls: str, last: str) -> str:
    return f"not tried: this point's last {calls} gave no answer (the last: {last}); --resume tries it again"


HUNG = "no answer within 1 s; the codec's worker process was stopped"


def test_after_2_calls_without_an_answer_a_points_other_tiles_are_error_rows_and_the_other_points_go_on(
        tmp_path, bench):
    codecs = "- name: hazard\n  points: [{does: hang}, {does: crash}, {does: nothing}]\n"
    rows = run_rows(bench(codecs, isolation="timeout_s: 1", windows=2), tmp_path / "run")

    errors = {point: [row[ERROR] for row in rows if row["point"] == point]
              for point in ("does=hang", "does=crash", "does=nothing")}
    died = "the codec's worker process died (signal SIGSEGV)"
    assert errors == {"does=hang": [HUNG, HUNG, stopped("2 calls", HUNG), stopped("2 calls", HUNG)],
                      "does=crash": [died, died, stopped("2 calls", died), stopped("2 calls", died)],
                      "does=nothing": ["", "", "", ""]}


def test_resume_measures_the_tiles_of_a_stopped_point_again(tmp_path, bench, monkeypatch):
    config = bench("- name: hazard\n  points: [{does: hang while HAZARD_HANGS is set}]\n",
                   isolation="timeout_s: 1, breaker_after: 1")
    monkeypatch.setenv("HAZARD_HANGS", "1")  # the codec's worker process inherits it
    first = run_rows(config, tmp_path / "run")
    monkeypatch.delenv("HAZARD_HANGS")
    loaded, registry = load_config(config)
    run_benchmark(loaded, registry, RunOptions(run_dir=tmp_path / "run", resume=True, progress=False, report=False))

    assert [row[ERROR] for row in first] == [HUNG, stopped("call", HUNG)]
    with (tmp_path / "run" / "results.csv").open(newline="") as handle:
        assert [(row["tile_id"], row[ERROR]) for row in csv.DictReader(handle)] == \
            [(row["tile_id"], "") for row in first]
