"""Command-line arguments that cannot mean anything are refused with one line and a non-zero exit, before a run."""

from __future__ import annotations

import pytest

from harness.cli import USER_ERROR_EXIT, main
from tests.conftest import MINIMAL_CONFIG


@pytest.fixture
def config(write_config, dual_pol_geotiff):
    return write_config(MINIMAL_CONFIG)


@pytest.mark.parametrize("value", ["-3", "two", "1.5"])
def test_visual_tiles_must_be_a_whole_number_of_zero_or_more(config, capsys, value):
    with pytest.raises(SystemExit) as exited:
        main(["run", str(config), "--visual-tiles", value])
    assert exited.value.code == USER_ERROR_EXIT
    assert f"--visual-tiles: expected a whole number of tiles, 0 or more, got {value!r}" in capsys.readouterr().err


def test_resume_of_a_folder_that_does_not_exist_is_refused_before_a_run_starts(config, tmp_path, capsys):
    absent = tmp_path / "no-such-run"

    assert main(["run", str(config), "--output", str(absent), "--resume", "--no-progress"]) == USER_ERROR_EXIT

    assert capsys.readouterr().err == (f"error: --resume: {absent} does not exist, so there is no run to continue; "
                                       "give the interrupted run's folder with --output, or leave out --resume to "
                                       "start a new run\n")
    assert not absent.exists()


def test_resume_of_an_old_run_without_a_results_format_version_exits_with_one_line(config, tmp_path, capsys):
    old_run = tmp_path / "old-run"
    old_run.mkdir()
    (old_run / "results.csv").write_text("run,codec,point,tile_id,error\nunit,quantize,bits=4,t0,\n")

    assert main(["run", str(config), "--output", str(old_run), "--resume", "--no-progress"]) == USER_ERROR_EXIT

    error = capsys.readouterr().err
    assert error.startswith(f"error: {old_run / 'results.csv'} holds results of format version none")
    assert error.count("\n") == 1 and "Traceback" not in error
