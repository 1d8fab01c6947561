"""The benchmark loop: rows per codec x point x tile, error rows, incremental writes and resume."""

from __future__ import annotations

import csv
import json
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness import UserError, torch_threads
from harness.config import load_config
from harness.results import RESULTS_FORMAT_VERSION
from harness.run import RunOptions, resolve_device, run_benchmark
from harness.timing import time_call
from tests.conftest import IN_PROCESS, MINIMAL_CONFIG

TEST_CODECS = '''
import numpy as np
from harness import Codec, Complexity, hookimpl


class Flaky(Codec):
    """8-bit bytes; raises the given exception on the n-th encode call."""
    name = "flaky"
    calls = 0

    def __init__(self, fail_on_call=0, exception="ValueError"):
        self.fail_on_call = fail_on_call
        self.exception = exception

    def encode(self, tile):
        Flaky.calls += 1
        if Flaky.calls == self.fail_on_call:
            raise {"ValueError": ValueError, "KeyboardInterrupt": KeyboardInterrupt}[self.exception]("bad tile")
        return (tile * 255).round().astype(np.uint8).tobytes()

    def decode(self, data, shape):
        return np.frombuffer(data, dtype=np.uint8).reshape(shape).astype(np.float32) / 255


class Picky(Flaky):
    """Raises whenever it meets the n-th distinct tile it has seen, however often it is retried."""
    name = "picky"
    seen = []

    def __init__(self, fail_on_tile=1):
        self.fail_on_tile = fail_on_tile

    def encode(self, tile):
        key = tile.tobytes()
        if key not in Picky.seen:
            Picky.seen.append(key)
        if Picky.seen.index(key) + 1 == self.fail_on_tile:
            raise ValueError("bad tile")
        return (tile * 255).round().astype(np.uint8).tobytes()


class Counted(Flaky):
    """Counts its complexity, or fails to when asked to."""
    name = "counted"

    def __init__(self, broken_count=False):
        super().__init__()
        self.broken_count = broken_count

    def complexity(self):
        if self.broken_count:
            raise RuntimeError("cannot count")
        return Complexity(encode_macs_per_pixel=12.5, decode_macs_per_pixel=7, parameters=321)


class WrongShape(Codec):
    name = "wrong_shape"

    def encode(self, tile):
        return b"x"

    def decode(self, data, shape):
        return np.zeros((shape[0] + 1, shape[1]), dtype=np.float32)


class Constant(Codec):
    """Decodes every tile to one value: what a corrupt stream can make a decoder do."""
    name = "constant"

    def __init__(self, value="nan"):
        self.value = float(value)

    def encode(self, tile):
        return b"x"

    def decode(self, data, shape):
        return np.full(shape, self.value, dtype=np.float32)


class Scribbler(Codec):
    name = "scribbler"

    def encode(self, tile):
        tile[0, 0] = 1.0
        return b""

    def decode(self, data, shape):
        return np.zeros(shape, dtype=np.float32)


class Estimating(Flaky):
    """Estimates its rate as ``factor`` times the real one, or returns ``count`` estimates per batch."""
    name = "estimating"

    def __init__(self, factor=1.0, count=None):
        super().__init__()
        self.factor = factor
        self.count = count

    def estimated_bpp(self, tiles):
        return [8.0 * self.factor] * (len(tiles) if self.count is None else self.count)


class Batching(Flaky):
    """A codec that prefers batches of 4 tiles, as a device codec does."""
    name = "batching"
    preferred_batch_size = 4


class Versioned(Flaky):
    """A codec with a stream format of its own, at version 3."""
    name = "versioned"
    stream_version = 3


@hookimpl
def harness_codecs():
    return [Flaky, Picky, Counted, WrongShape, Constant, Scribbler, Estimating, Batching, Versioned]
'''


@pytest.fixture
def bench(tmp_path, dual_pol_geotiff, write_config):
    """Write the test codecs and return a function making a config with the given codecs section."""
    (tmp_path / "test_codecs.py").write_text(TEST_CODECS)

    def make(codecs: str, batch_size: int | None = 1) -> Path:
        """``batch_size`` None leaves the key out of the config."""
        text = MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n" + textwrap.indent(textwrap.dedent(codecs), "  ")
        batching = "" if batch_size is None else f", batch_size: {batch_size}"
        timing = f"timing: {{warmup: 0, repeats: 1, {IN_PROCESS}{batching}}}\n"
        return write_config(text + "plugins: [test_codecs.py]\n" + timing)

    return make


def run(config_path: Path, run_dir: Path, **options) -> tuple:
    """Measure only: the report of these runs is tested where reports are (test_report, test_cli)."""
    config, registry = load_config(config_path)
    options.setdefault("report", False)
    outcome = run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False, **options))
    with (run_dir / "results.csv").open(newline="") as handle:
        return outcome, list(csv.DictReader(handle))


def test_one_row_per_codec_point_and_tile_with_rate_from_real_bytes(tmp_path, bench):
    outcome, rows = run(bench("- name: quantize\n  points: [{bits: 4}, {bits: 8}]\n"), tmp_path / "run")
    assert len(rows) == 2 * 6 == outcome.rows_written
    for row in rows:
        pixels = int(row["height"]) * int(row["width"])
        assert float(row["bpp"]) == pytest.approx(8 * int(row["bytes"]) / pixels)
        assert float(row["compression_ratio"]) == pytest.approx(16 / float(row["bpp"]))
        assert row["error"] == "" and float(row["psnr"]) > 0 and float(row["encode_mpix_s"]) > 0
    assert {row["point"] for row in rows} == {"bits=4", "bits=8"}


def test_results_have_the_documented_columns(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    expected = ("run dataset scene tile_id pol height width valid_pixels clipped_below clipped_above codec point "
                "options bytes bpp "
                "estimated_bpp compression_ratio psnr ssim ms_ssim rmse_db bias_db enl_ratio epi encode_s decode_s "
                "encode_mpix_s decode_mpix_s device precision error").split()
    assert set(expected) <= set(rows[0])


def test_a_codec_estimating_its_rate_fills_estimated_bpp_beside_the_real_bpp(tmp_path, bench):
    _, rows = run(bench("- name: estimating\n  points: [{factor: 0.5}]\n"), tmp_path / "run")
    assert all(float(row["estimated_bpp"]) == 4.0 and float(row["bpp"]) == 8.0 for row in rows)


def test_estimated_bpp_is_empty_for_codecs_without_an_estimate(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    assert all(row["estimated_bpp"] == "" for row in rows)


def test_an_estimate_per_batch_of_the_wrong_length_gives_error_rows(tmp_path, bench):
    _, rows = run(bench("- name: estimating\n  points: [{count: 3}]\n"), tmp_path / "run")
    assert all("estimated_bpp returned 3 values for 1 tiles" in row["error"] for row in rows)


def test_a_codec_that_raises_on_one_tile_gives_an_error_row_and_the_run_goes_on(tmp_path, bench):
    outcome, rows = run(bench("- name: flaky\n  points: [{fail_on_call: 2}]\n"), tmp_path / "run")
    errors = [row for row in rows if row["error"]]
    assert len(rows) == 6 and len(errors) == 1 == outcome.error_rows
    assert errors[0]["error"] == "ValueError: bad tile"
    assert errors[0]["psnr"] == "" and errors[0]["bytes"] == ""


def test_a_decoder_returning_the_wrong_shape_gives_error_rows(tmp_path, bench):
    _, rows = run(bench("- name: wrong_shape\n"), tmp_path / "run")
    assert all("decode returned shape (33, 32), expected (32, 32)" in row["error"] for row in rows)


@pytest.mark.parametrize("value, message", [
    ("nan", "decode returned 1024 non-finite values"), ("inf", "decode returned 1024 non-finite values"),
    ("7.5", "decode returned values up to 7.5"), ("-3", "decode returned values down to -3"),
])
def test_a_decoded_tile_that_is_no_reconstruction_gives_error_rows_not_scores(tmp_path, bench, value, message):
    _, rows = run(bench(f"- name: constant\n  points: [{{value: '{value}'}}]\n"), tmp_path / "run")
    assert all(message in row["error"] and row["psnr"] == "" for row in rows)


def test_a_lossy_decoder_may_overshoot_the_domain_a_little(tmp_path, bench):
    _, rows = run(bench("- name: constant\n  points: [{value: '1.2'}, {value: '-0.2'}]\n"), tmp_path / "run")
    assert all(row["error"] == "" for row in rows)


def test_an_interrupted_run_keeps_its_rows_and_resume_completes_it_without_duplicates(tmp_path, bench):
    config = bench("- name: flaky\n  points: [{fail_on_call: 4, exception: KeyboardInterrupt}]\n")
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run")
    with (tmp_path / "run" / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3
    outcome, rows = run(config, tmp_path / "run", resume=True)
    assert outcome.rows_skipped == 3 and outcome.rows_written == 3
    assert len({row["tile_id"] for row in rows}) == len(rows) == 6


def test_resume_retries_error_rows(tmp_path, bench):
    config = bench("- name: flaky\n  points: [{fail_on_call: 2}]\n")
    run(config, tmp_path / "run")
    outcome, rows = run(config, tmp_path / "run", resume=True)
    assert outcome.rows_written == 1 and outcome.rows_skipped == 5
    assert len(rows) == 6 and not any(row["error"] for row in rows)


def test_resume_of_a_folder_that_does_not_exist_is_the_command_lines_one_line_error_from_python_too(tmp_path, bench):
    absent = tmp_path / "no-such-run"
    with pytest.raises(UserError, match="^" + re.escape(f"--resume: {absent} does not exist, so there is no run")):
        run(bench("- name: quantize\n  points: [{bits: 4}]\n"), absent, resume=True)
    assert not absent.exists()


def test_a_resume_killed_while_it_drops_the_error_rows_leaves_the_finished_rows_intact(tmp_path, bench, monkeypatch):
    config = bench("- name: flaky\n  points: [{fail_on_call: 2}]\n")
    run(config, tmp_path / "run")
    before = (tmp_path / "run" / "results.csv").read_bytes()

    def killed(self, rows):
        raise KeyboardInterrupt
    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run", resume=True)

    assert (tmp_path / "run" / "results.csv").read_bytes() == before


def test_a_row_cut_short_is_measured_again_on_resume(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "run")
    results = tmp_path / "run" / "results.csv"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:4]) + lines[4][:25])  # killed, or the disk full, in the middle of a row

    outcome, rows = run(config, tmp_path / "run", resume=True)

    assert outcome.rows_skipped == 3 and outcome.rows_written == 3
    assert len(rows) == 6 and all(row["codec"] == "quantize" and row["psnr"] for row in rows)


def test_a_header_cut_short_starts_the_run_again(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "run")
    (tmp_path / "run" / "results.csv").write_text("run,dataset,sce")

    outcome, rows = run(config, tmp_path / "run", resume=True)

    assert outcome.rows_written == 6 and len(rows) == 6


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_the_rows_written(tmp_path, bench, monkeypatch):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    written = []

    def write_until_full(self, row):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(row)
        return original(self, row)
    original = csv.DictWriter.writerow
    monkeypatch.setattr(csv.DictWriter, "writerow", write_until_full)

    with pytest.raises(UserError, match=r"results\.csv: cannot write a result row \(No space left on device\); "
                                        r"make room, then rerun with --resume"):
        run(config, tmp_path / "run")
    monkeypatch.undo()
    outcome, _ = run(config, tmp_path / "run", resume=True)
    assert outcome.rows_skipped == 1 and outcome.rows_written == 5  # the header and one row were written


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, bench):
    import fcntl

    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    (tmp_path / "run").mkdir()
    with (tmp_path / "run" / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another run is writing into this folder"):
            run(config, tmp_path / "run")


def test_overwrite_keeps_the_old_results_until_the_new_run_has_finished(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    old = (tmp_path / "run" / "results.csv").read_text()
    crashing = bench("- name: flaky\n  points: [{fail_on_call: 1, exception: KeyboardInterrupt}]\n")

    with pytest.raises(KeyboardInterrupt):
        run(crashing, tmp_path / "run", overwrite=True)
    assert (tmp_path / "run" / "results.previous.csv").read_text() == old

    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run", overwrite=True)
    assert not (tmp_path / "run" / "results.previous.csv").exists()


def test_an_existing_run_is_not_overwritten_without_a_flag(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "run")
    with pytest.raises(UserError, match="already exists; pass --resume"):
        run(config, tmp_path / "run")
    _, rows = run(config, tmp_path / "run", overwrite=True)
    assert len(rows) == 6


def test_resume_refuses_a_changed_config(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    with pytest.raises(UserError, match="differs from the config of the run"):
        run(bench("- name: quantize\n  points: [{bits: 5}]\n"), tmp_path / "run", resume=True)


def test_every_row_records_the_results_format_version(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    assert {row["format_version"] for row in rows} == {str(RESULTS_FORMAT_VERSION)}


def test_the_format_version_is_a_plain_first_column_that_pandas_reads_without_options(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert results.columns[0] == "format_version" and (results["format_version"] == RESULTS_FORMAT_VERSION).all()


def test_the_environment_records_the_results_format_version(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["results_format_version"] == RESULTS_FORMAT_VERSION


def test_rows_record_the_stream_version_their_codec_declares(tmp_path, bench):
    _, rows = run(bench("- name: versioned\n"), tmp_path / "run")
    assert {row["stream_version"] for row in rows} == {"3"}


def test_the_stream_version_is_empty_for_a_codec_whose_library_owns_its_format(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    assert {row["stream_version"] for row in rows} == {""}


def test_resume_of_results_of_the_same_format_version_continues(tmp_path, bench):
    config = bench("- name: flaky\n  points: [{fail_on_call: 4, exception: KeyboardInterrupt}]\n")
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "run")
    outcome, rows = run(config, tmp_path / "run", resume=True)
    assert outcome.rows_skipped == 3 and outcome.rows_written == 3
    assert {row["format_version"] for row in rows} == {str(RESULTS_FORMAT_VERSION)}


def rewrite_results(path: Path, change_row) -> None:
    """Rewrite ``results.csv`` as another version of the harness would have written it."""
    with path.open(newline="") as handle:
        rows = [change_row(row) for row in csv.DictReader(handle)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_resume_of_results_of_another_format_version_is_refused_with_one_line_saying_what_to_do(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "run")
    results = tmp_path / "run" / "results.csv"
    rewrite_results(results, lambda row: {**row, "format_version": "0"})
    before = results.read_bytes()

    with pytest.raises(UserError) as refused:
        run(config, tmp_path / "run", resume=True)

    assert str(refused.value) == (f"{results} holds results of format version 0; this harness writes version "
                                  f"{RESULTS_FORMAT_VERSION} and cannot add to them: rerun without --resume, with "
                                  "--output for a new folder (or --overwrite to replace this run)")
    assert results.read_bytes() == before


def test_resume_of_results_from_before_format_versions_is_refused_with_one_line(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "run")
    results = tmp_path / "run" / "results.csv"
    rewrite_results(results, lambda row: {key: value for key, value in row.items() if key != "format_version"})

    with pytest.raises(UserError, match=r"^\S+results\.csv holds results of format version none \(written before "
                                        r"results\.csv had a format version\); this harness writes version \d+ .*"
                                        r"rerun without --resume, with --output for a new folder"):
        run(config, tmp_path / "run", resume=True)


def test_the_codecs_option_runs_a_subset(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n- name: flaky\n")
    _, rows = run(config, tmp_path / "run", codec_names=("flaky",))
    assert {row["codec"] for row in rows} == {"flaky"}


def test_the_codecs_option_rejects_an_unconfigured_codec(tmp_path, bench):
    with pytest.raises(UserError, match="--codecs: jpeg2000 not in the config"):
        run(bench("- name: quantize\n"), tmp_path / "run", codec_names=("jpeg2000",))


def test_a_bad_option_value_fails_before_any_tile_is_coded(tmp_path, bench):
    with pytest.raises(UserError, match=r"codecs\[0\]\.points\[0\] \(quantize bits=40\)"):
        run(bench("- name: quantize\n  points: [{bits: 40}]\n"), tmp_path / "run")
    assert not (tmp_path / "run" / "results.csv").exists()


def test_the_run_folder_keeps_the_config_and_the_resolved_config(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    assert "name: quantize" in (tmp_path / "run" / "config.yaml").read_text()
    resolved = (tmp_path / "run" / "config.resolved.yaml").read_text()
    assert "min_valid_fraction: 0.5" in resolved and "repeats: 1" in resolved


def test_timing_runs_warmup_untimed_and_keeps_the_median_of_repeats():
    calls = []
    timed = time_call(lambda: calls.append(1) or len(calls), warmup=2, repeats=3)
    assert len(calls) == 5 and timed.result == 5 and timed.seconds >= 0


def test_torch_threads_holds_the_count_inside_the_block_and_restores_it_after_an_error():
    before = torch.get_num_threads()
    inside = 2 if before == 1 else 1
    with pytest.raises(RuntimeError, match="codec failed"):
        with torch_threads(inside):
            assert torch.get_num_threads() == inside
            raise RuntimeError("codec failed")
    assert torch.get_num_threads() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_user_error():
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UserError, match="cuda requested but torch sees no CUDA device"):
        resolve_device("cuda")



def test_a_codec_writing_into_its_input_tile_gets_an_error_row(tmp_path, bench):
    _, rows = run(bench("- name: scribbler\n"), tmp_path / "run")
    assert all("read-only" in row["error"] for row in rows)


def test_codecs_declaring_device_and_base_dir_receive_the_runs_context(tmp_path):
    from harness import Codec
    from harness.measure import with_context

    class Contextual(Codec):
        name = "contextual"

        def __init__(self, device="none", base_dir=None, level=1):
            pass

    options = with_context(Contextual, {"level": 2}, device="cpu", base_dir=tmp_path, unrelated=1)
    assert options == {"device": "cpu", "base_dir": tmp_path, "level": 2}
    assert with_context(Contextual, {"device": "cuda"}, device="cpu")["device"] == "cuda"


def test_batches_share_their_time_among_their_tiles(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n", batch_size=4), tmp_path / "run")
    assert [row["batch_size"] for row in rows] == ["4"] * 4 + ["2"] * 2
    assert all(row["error"] == "" and float(row["encode_s"]) > 0 for row in rows)


def test_without_a_configured_batch_size_each_codec_runs_at_its_preferred_one(tmp_path, bench):
    _, rows = run(bench("- name: batching\n  points: [{}]\n- name: quantize\n  points: [{bits: 4}]\n",
                        batch_size=None), tmp_path / "run")
    assert [row["batch_size"] for row in rows if row["codec"] == "batching"] == ["4"] * 4 + ["2"] * 2
    assert [row["batch_size"] for row in rows if row["codec"] == "quantize"] == ["1"] * 6


def test_a_configured_batch_size_overrides_the_preferred_one(tmp_path, bench):
    _, rows = run(bench("- name: batching\n  points: [{}]\n", batch_size=1), tmp_path / "run")
    assert [row["batch_size"] for row in rows] == ["1"] * 6


def test_a_failing_batch_is_retried_tile_by_tile_so_only_the_bad_tile_is_an_error(tmp_path, bench):
    _, rows = run(bench("- name: picky\n  points: [{fail_on_tile: 2}]\n", batch_size=3), tmp_path / "run")
    assert len(rows) == 6
    assert [bool(row["error"]) for row in rows] == [False, True, False, False, False, False]


def test_every_run_writes_its_tile_manifest(tmp_path, bench):
    run(bench("- name: quantize\n  points: [{bits: 4}]\n"), tmp_path / "run")
    with (tmp_path / "run" / "tiles.csv").open() as handle:
        manifest = list(csv.DictReader(handle))
    assert len(manifest) == 6 and all(len(entry["sha256"]) == 64 for entry in manifest)


def test_a_manifest_restricts_a_run_to_exactly_its_tiles(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "first")
    manifest = tmp_path / "first" / "tiles.csv"
    kept = manifest.read_text().splitlines()[:3]
    (tmp_path / "subset.csv").write_text("\n".join(kept) + "\n")
    _, rows = run(config, tmp_path / "second", manifest=tmp_path / "subset.csv")
    assert [row["tile_id"] for row in rows] == [line.split(",")[0] for line in kept[1:]]


def test_a_manifest_whose_pixels_changed_is_an_error(tmp_path, bench, write_config):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "first")
    changed = write_config(config.read_text().replace("VV: [-25, 5]", "VV: [-26, 5]"), name="changed.yaml")
    with pytest.raises(UserError, match="has different pixels than when the manifest was written"):
        run(changed, tmp_path / "second", manifest=tmp_path / "first" / "tiles.csv")


def test_a_manifest_naming_a_tile_the_dataset_does_not_produce_is_an_error(tmp_path, bench):
    config = bench("- name: quantize\n  points: [{bits: 4}]\n")
    run(config, tmp_path / "first")
    manifest = tmp_path / "first" / "tiles.csv"
    manifest.write_text(manifest.read_text().replace("scene:VV:", "other:VV:", 1))
    with pytest.raises(UserError, match="tile other:VV:.* is not produced by this config's dataset"):
        run(config, tmp_path / "second", manifest=manifest)


@pytest.mark.parametrize("codec, options, lossless", [
    ("jpeg2000", {"lossless": True}, True), ("jpeg2000", {"bpp": 1.0}, False),
    ("htj2k", {"lossless": True}, True), ("htj2k", {"qstep": 0.1}, False),
    ("jpegxl", {"distance": 0}, True), ("jpegxl", {"distance": 1}, False),
    ("avif", {"quality": 100}, True), ("avif", {"quality": 90}, False),
])
def test_codecs_declare_which_of_their_points_are_lossless(codec, options, lossless):
    from harness.plugins import build_registry

    assert build_registry().codec(codec)(**options).lossless is lossless


def test_the_results_record_whether_a_point_is_lossless(tmp_path, bench):
    _, rows = run(bench("- name: jpeg2000\n  points: [{lossless: true}, {bpp: 4.0}]\n"), tmp_path / "run")
    assert {(row["point"], row["lossless"]) for row in rows} == {("lossless=True", "True"), ("bpp=4.0", "False")}


def test_rows_record_the_complexity_a_codec_counts(tmp_path, bench):
    _, rows = run(bench("- name: counted\n  points: [{}]\n"), tmp_path / "run")
    assert {(row["encode_macs_per_pixel"], row["decode_macs_per_pixel"], row["parameters"]) for row in rows} == {
        ("12.5", "7.0", "321.0")}


def test_a_codec_that_cannot_count_its_complexity_still_gets_its_rows(tmp_path, bench):
    _, rows = run(bench("- name: counted\n  points: [{broken_count: true}]\n"), tmp_path / "run")
    assert rows and all(row["error"] == "" and row["parameters"] == "" for row in rows)


def test_rows_record_the_library_threads_a_codec_declares_and_leave_them_empty_otherwise(tmp_path, bench):
    _, rows = run(bench("- name: quantize\n  points: [{bits: 4}]\n- name: flaky\n  points: [{}]\n"), tmp_path / "run")
    assert {(row["codec"], row["threads"]) for row in rows} == {("quantize", "1"), ("flaky", "")}
