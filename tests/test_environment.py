"""environment.json records what a run ran on, and never fails the run doing so."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import datetime

import pytest

from harness.environment import collect_environment, git_state, package_versions, timing_warnings

CONFIG_TEXT = "name: default\nseed: 0\ndevice: auto\n"
EXPECTED_KEYS = {
    "timestamp_utc",
    "python",
    "platform",
    "cpu",
    "logical_cores",
    "load_average_start",
    "threads",
    "memory_total_gib",
    "packages",
    "gdal",
    "openjpeg",
    "cuda_available",
    "gpus",
    "device",
    "git_commit",
    "git_dirty",
    "config_sha256",
}
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict:
    return collect_environment(CONFIG_TEXT, "cpu", project_dir=tmp_path_factory.mktemp("not_a_checkout"))


def _git(folder, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    completed = subprocess.run(["git", *identity, *args], cwd=folder, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


def test_every_key_is_present(environment):
    assert set(environment) == EXPECTED_KEYS


def test_result_is_json_ready(environment):
    assert json.loads(json.dumps(environment)) == environment


def test_config_hash_is_sha256_of_the_config_text(environment):
    assert environment["config_sha256"] == hashlib.sha256(CONFIG_TEXT.encode("utf-8")).hexdigest()


def test_requested_device_is_recorded(environment):
    assert environment["device"] == "cpu"


def test_timestamp_is_iso_8601_utc(environment):
    assert datetime.fromisoformat(environment["timestamp_utc"]).utcoffset().total_seconds() == 0


def test_every_listed_package_has_an_entry(environment):
    assert {"numpy", "pandas", "torch", "rasterio", "glymur", "pluggy"} <= set(environment["packages"])
    assert environment["packages"]["numpy"]


def test_missing_package_gives_none():
    assert package_versions(("no-such-distribution-for-harness-tests",)) == {
        "no-such-distribution-for-harness-tests": None
    }


def test_outside_a_git_checkout_commit_and_dirty_are_none(environment):
    assert (environment["git_commit"], environment["git_dirty"]) == (None, None)


@pytest.fixture
def committed_checkout(tmp_path):
    """A fresh repository with one commit and a clean tree."""
    _git(tmp_path, "init", "--quiet")
    (tmp_path / "benchmarks.yaml").write_text(CONFIG_TEXT)
    _git(tmp_path, "add", "benchmarks.yaml")
    _git(tmp_path, "commit", "--quiet", "-m", "config")
    return tmp_path


@needs_git
def test_git_state_reports_the_checked_out_commit_of_a_clean_tree(committed_checkout):
    assert git_state(committed_checkout) == (_git(committed_checkout, "rev-parse", "HEAD"), False)


@needs_git
def test_git_state_flags_uncommitted_changes_as_dirty(committed_checkout):
    (committed_checkout / "benchmarks.yaml").write_text(CONFIG_TEXT + "max_tiles: 4\n")
    assert git_state(committed_checkout)[1] is True


def test_git_state_is_none_when_git_cannot_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert git_state(tmp_path) == (None, None)


def test_the_thread_counts_the_calls_ran_with_are_recorded(environment):
    import torch

    assert environment["threads"]["torch_threads"] == torch.get_num_threads()
    assert set(environment["threads"]) >= {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}


def test_no_timing_warning_on_an_idle_machine_with_steady_repeats():
    idle = {"logical_cores": 2, "load_average_start": [0.5, 0.5, 0.5], "load_average_end": [1.0, 0.8, 0.6]}
    assert timing_warnings(idle, {"jpeg2000": [0.05, 0.1, 0.2]}) == []


def test_a_load_above_the_core_count_warns_that_speeds_are_not_trustworthy():
    loaded = {"logical_cores": 2, "load_average_start": [0.5, 0.5, 0.5], "load_average_end": [3.5, 2.0, 1.0]}
    (warning,) = timing_warnings(loaded, {})
    assert "load average reached 3.5 on 2 cores" in warning and "not trustworthy" in warning


def test_a_codec_whose_repeats_spread_widely_is_named_in_a_warning():
    idle = {"logical_cores": 2, "load_average_start": [0.5, 0.5, 0.5], "load_average_end": [0.5, 0.5, 0.5]}
    (warning,) = timing_warnings(idle, {"jpeg2000": [0.1, 0.1, 0.1], "avif": [0.9, 1.2, 0.2]})
    assert warning.startswith("avif: the timed repeats of a call differ by 90% of their median")
