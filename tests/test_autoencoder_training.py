"""Specification of `python -m harness train autoencoder`: options, determinism, data loading, logs,
checkpoints, split, end to end."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from harness_codecs._autoencoder.training.data import TRAINING_SEED_BASE, TrainingSplit
from harness_codecs._autoencoder.training.loop import resume_path
from harness_codecs._autoencoder.training.overlap import TestSet, check_against_manifest, check_no_overlap
from harness_codecs._autoencoder.training.log import open_log
from harness_codecs._autoencoder.training.trainer import AutoencoderTrainer, resolve_options

from harness import BenchmarkContext, UserError
from harness.cli import main
from harness.manifest import manifest_entry, tile_checksum

EXAMPLE_OPTIONS = Path(__file__).resolve().parents[1] / "examples" / "train_autoencoder.yaml"

SMALL_BENCHMARK = """\
name: small
seed: {seed}
dataset:
  kind: synthetic
  scenes: 1
  scene_size: 256
  tile_size: 64
  max_tiles: 2
  cache_dir: {cache}
normalization:
  VV: [-25, 5]
  VH: [-32, -2]
codecs:
  - name: {codec}
    points: [{{checkpoint: {checkpoint}}}]
timing: {{warmup: 0, repeats: 1}}
"""
FAST_OPTIONS = ["--scenes", "1", "--scene-size", "256", "--validation-patches", "4", "--patch-size", "64",
                "--batch-size", "2", "--checkpoint-every", "2", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("autoencoder_training")


def write_benchmark(folder: Path, checkpoint: str = "model.pt", seed: int = 0, codec: str = "autoencoder") -> Path:
    """A small synthetic benchmark whose ``codec`` point uses ``checkpoint`` (relative to ``folder``)."""
    path = folder / f"bench-seed{seed}-{codec}.yaml"
    path.write_text(SMALL_BENCHMARK.format(seed=seed, cache=folder / "cache", checkpoint=checkpoint, codec=codec))
    return path


def train(config: Path, output: Path, *options: str) -> None:
    trainer = AutoencoderTrainer()
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    trainer.train(parser.parse_args(["--config", str(config), "--output", str(output), *FAST_OPTIONS, *options]))


@pytest.fixture(scope="module")
def trained(workspace) -> Path:
    """A checkpoint trained for 4 steps next to the small benchmark that refers to it."""
    output = workspace / "model.pt"
    train(write_benchmark(workspace), output, "--steps", "4")
    return output


def test_checkpoint_loads_with_weights_only_and_holds_what_rebuilds_the_model(trained):
    raw = torch.load(trained, map_location="cpu", weights_only=True)

    assert raw["model"]["preset"] == "tiny" and raw["bits"] == 4
    assert raw["latent_range"] == [-1.0, 1.0]
    assert raw["normalization"] == {"VV": [-25.0, 5.0], "VH": [-32.0, -2.0]}
    assert raw["training"]["steps"] == 4 and raw["step"] in (2, 4)


def test_training_twice_with_the_same_seed_gives_identical_weights(workspace, trained):
    again = workspace / "again.pt"
    train(write_benchmark(workspace), again, "--steps", "4")

    first = torch.load(resume_path(trained), weights_only=True)["state_dict"]
    second = torch.load(resume_path(again), weights_only=True)["state_dict"]

    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_resuming_an_interrupted_run_gives_the_uninterrupted_weights(workspace, trained):
    interrupted = workspace / "interrupted.pt"
    config = write_benchmark(workspace)
    train(config, interrupted, "--steps", "2")
    train(config, interrupted, "--steps", "4", "--resume")

    resumed = torch.load(resume_path(interrupted), weights_only=True)["state_dict"]
    straight = torch.load(resume_path(trained), weights_only=True)["state_dict"]

    assert all(torch.equal(resumed[name], straight[name]) for name in straight)


def test_the_benchmark_runs_the_trained_checkpoint_end_to_end(workspace, trained):
    run_dir = workspace / "report"

    assert main(["run", str(write_benchmark(workspace)), "--output", str(run_dir), "--no-progress"]) == 0

    rows = pd.read_csv(run_dir / "results.csv", keep_default_na=False)
    assert len(rows) == 4 and (rows["error"] == "").all()
    assert (rows["bpp"] == 8 * rows["bytes"] / (rows["height"] * rows["width"])).all()
    assert (rows["device"] == "cpu").all() and (rows["precision"] == "fp32").all()


@pytest.mark.parametrize("entropy", ["factorized", "hyperprior"])
def test_an_entropy_coded_model_trains_and_runs_in_the_benchmark_with_its_estimated_rate(workspace, entropy):
    checkpoint = f"{entropy}.pt"
    config = write_benchmark(workspace, checkpoint, codec=f"autoencoder_{entropy}")
    train(config, workspace / checkpoint, "--steps", "3", "--entropy", entropy, "--lmbda", "300")
    run_dir = workspace / f"report-{entropy}"

    assert main(["run", str(config), "--output", str(run_dir), "--no-progress"]) == 0

    rows = pd.read_csv(run_dir / "results.csv", keep_default_na=False)
    assert len(rows) == 4 and (rows["error"] == "").all()
    assert (rows["bpp"] == 8 * rows["bytes"] / (rows["height"] * rows["width"])).all()
    assert (rows["estimated_bpp"].astype(float) > 0).all()
    assert "estimated_bpp_mean" in pd.read_csv(run_dir / "summary.csv").columns


def test_an_entropy_coded_checkpoint_records_the_lagrangian_options_and_holds_its_tables(workspace):
    output = workspace / "recorded.pt"
    train(write_benchmark(workspace), output, "--steps", "2", "--entropy", "hyperprior", "--lmbda", "42")

    raw = torch.load(output, weights_only=True)

    assert raw["model"]["entropy"] == "hyperprior" and raw["training"]["lmbda"] == 42
    assert {"latent.probabilities", "side.probabilities", "scales"} <= set(raw["entropy_tables"])


def test_resuming_with_a_different_lmbda_is_refused(workspace):
    output = workspace / "lagrangian.pt"
    train(write_benchmark(workspace), output, "--steps", "2", "--entropy", "factorized", "--lmbda", "100")
    with pytest.raises(UserError, match="different --lmbda"):
        train(write_benchmark(workspace), output, "--steps", "4", "--entropy", "factorized", "--lmbda", "200",
              "--resume")


def test_a_time_limit_ends_training_early_with_a_checkpoint(workspace):
    output = workspace / "timed.pt"

    train(write_benchmark(workspace), output, "--steps", "500", "--time-limit", "0.001")

    assert torch.load(output, weights_only=True)["step"] == 1


def test_a_benchmark_seeded_in_the_training_namespace_is_refused_as_overlap(workspace):
    config = write_benchmark(workspace, seed=TRAINING_SEED_BASE)

    with pytest.raises(UserError, match="share seed"):
        train(config, workspace / "overlap.pt", "--steps", "1")


def test_a_benchmark_tile_identical_to_a_training_tile_is_refused_as_overlap(workspace):
    context = BenchmarkContext.load(write_benchmark(workspace))
    tiles = context.test_tiles()
    split = TrainingSplit(train_tiles=[], validation_patches=torch.zeros(0), scene_seeds=frozenset(),
                          checksums=frozenset({tile_checksum(tiles[1])}))

    with pytest.raises(UserError, match=f"1 benchmark tile.*{tiles[1].tile_id}"):
        check_no_overlap(split, TestSet.of(context, tiles))


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--patch-size", "100", "multiple of 16"),
    ("--bits", "0", "from 1 to 16"),
    ("--steps", "0", "at least 1"),
    ("--amp", "fp16", "fp16 needs --device cuda"),
    ("--lmbda", "0", "positive number"),
    ("--patch-size", "80", "larger than the 64px windows"),
])
def test_a_bad_option_is_a_one_line_user_error(workspace, option, value, message):
    with pytest.raises(UserError, match=message):
        train(write_benchmark(workspace), workspace / "bad.pt", option, value)


def test_resuming_with_a_different_bit_depth_is_refused(workspace, trained):
    with pytest.raises(UserError, match="different --bits"):
        train(write_benchmark(workspace), trained, "--steps", "6", "--bits", "6", "--resume")


def test_validation_psnr_is_recorded_in_the_checkpoint(trained):
    raw = torch.load(trained, weights_only=True)

    assert math.isfinite(raw["validation_psnr"]) and raw["validation_loss"] >= 0


def test_a_training_scene_named_in_the_test_manifest_is_refused(workspace):
    tiles = BenchmarkContext.load(write_benchmark(workspace)).test_tiles()
    split = TrainingSplit(train_tiles=[], validation_patches=torch.zeros(0), scene_seeds=frozenset(),
                          checksums=frozenset(), scenes=frozenset({tiles[0].scene}))

    with pytest.raises(UserError, match=f"scene {tiles[0].scene} is in the test manifest"):
        check_against_manifest(split, [manifest_entry(tile) for tile in tiles], "tiles.csv")


def test_a_training_tile_listed_in_the_test_manifest_is_refused(workspace):
    tiles = BenchmarkContext.load(write_benchmark(workspace)).test_tiles()
    split = TrainingSplit(train_tiles=[], validation_patches=torch.zeros(0), scene_seeds=frozenset(),
                          checksums=frozenset({tile_checksum(tiles[0])}), scenes=frozenset({"elsewhere"}))

    with pytest.raises(UserError, match=f"1 tile\\(s\\) of the test manifest tiles.csv.*{tiles[0].tile_id}"):
        check_against_manifest(split, [manifest_entry(tile) for tile in tiles], "tiles.csv")


def test_training_accepts_a_disjoint_test_manifest(workspace, trained):
    config = write_benchmark(workspace)
    assert main(["run", str(config), "--output", str(workspace / "manifest_run"), "--no-progress"]) == 0
    train(config, workspace / "with_manifest.pt", "--steps", "1", "--manifest",
          str(workspace / "manifest_run" / "tiles.csv"))
    assert (workspace / "with_manifest.pt").is_file()


def resolved(*flags: str) -> dict:
    """The options training runs with, from these command-line flags (without the --options path itself)."""
    trainer = AutoencoderTrainer()
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    options = vars(resolve_options(parser.parse_args(list(flags)), trainer.defaults))
    del options["options"]
    return options


def test_the_example_options_file_means_the_same_as_the_flags_of_the_shipped_checkpoints():
    flags = ["--preset", "tiny", "--bits", "4", "--steps", "1500", "--threads", "1", "--seed", "0"]

    assert resolved("--options", str(EXAMPLE_OPTIONS)) == resolved(*flags)


@pytest.mark.parametrize("path", sorted(EXAMPLE_OPTIONS.parent.glob("train_*.yaml")), ids=lambda path: path.name)
def test_every_example_training_recipe_names_only_known_options_of_the_right_type(path):
    """The recipes document how the shipped models were trained; the GPU one runs only where a GPU is lent."""
    settings = resolved("--options", str(path))

    assert settings["preset"] and settings["steps"] >= 1


def test_flags_given_explicitly_override_the_options_file_even_when_they_repeat_a_default(tmp_path):
    options = tmp_path / "options.yaml"
    options.write_text("steps: 1500\nbits: 6\nlatent-channels: 32\nattention: true\nlr: 1\n")

    settings = resolved("--options", str(options), "--steps", "3", "--bits", "4")

    assert (settings["steps"], settings["bits"]) == (3, 4)
    assert settings["latent_channels"] == 32 and settings["attention"] is True
    assert settings["lr"] == 1.0 and isinstance(settings["lr"], float)


@pytest.mark.parametrize(("content", "message"), [
    ("step: 10", "options.yaml: unknown option 'step'"),
    ("latent_channels: '32'", "options.yaml: latent_channels: expected an integer, got '32'"),
    ("steps: 1.5", "steps: expected an integer"),
    ("attention: 1", "attention: expected true or false"),
    ("preset: huge", "preset: expected one of"),
    ("[1, 2]", "expected a mapping"),
    ("steps: [", "options.yaml"),
])
def test_a_bad_options_file_is_a_one_line_user_error_naming_the_key_and_the_file(tmp_path, content, message):
    options = tmp_path / "options.yaml"
    options.write_text(content)

    with pytest.raises(UserError, match=message) as error:
        resolved("--options", str(options))
    assert "\n" not in str(error.value)


def test_the_number_of_loader_workers_changes_neither_the_batches_nor_the_weights(workspace, trained):
    with_workers = workspace / "workers.pt"
    train(write_benchmark(workspace), with_workers, "--steps", "4", "--workers", "2")

    loaded = torch.load(resume_path(with_workers), weights_only=True)["state_dict"]
    in_process = torch.load(resume_path(trained), weights_only=True)["state_dict"]

    assert all(torch.equal(loaded[name], in_process[name]) for name in in_process)


def test_resuming_a_run_with_workers_gives_the_uninterrupted_weights(workspace, trained):
    """Workers cut batches ahead of training; the resume state is still the one of the next step."""
    interrupted = workspace / "interrupted_workers.pt"
    config = write_benchmark(workspace)
    train(config, interrupted, "--steps", "2", "--workers", "2", "--checkpoint-every", "1")
    train(config, interrupted, "--steps", "4", "--workers", "2", "--resume")

    resumed = torch.load(resume_path(interrupted), weights_only=True)["state_dict"]
    straight = torch.load(resume_path(trained), weights_only=True)["state_dict"]

    assert all(torch.equal(resumed[name], straight[name]) for name in straight)


@pytest.fixture
def without_tensorboard(monkeypatch):
    """Make ``from torch.utils.tensorboard import SummaryWriter`` fail as if tensorboard were not installed."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def test_without_tensorboard_an_explicit_logdir_says_how_to_install_it(workspace, without_tensorboard):
    with pytest.raises(UserError, match="--logdir .*pip install tensorboard"):
        train(write_benchmark(workspace), workspace / "logged.pt", "--steps", "1", "--logdir",
              str(workspace / "logs"))


def test_without_tensorboard_training_logs_nothing_unless_asked(tmp_path, without_tensorboard):
    assert open_log(None, tmp_path / "model.pt") is None
    assert not any(tmp_path.iterdir())


def test_with_tensorboard_each_validation_logs_scalars_and_reconstructions_beside_the_output(trained):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained.with_name("model.pt.runs"))).Reload()

    assert set(events.Tags()["scalars"]) == {"loss/train", "loss/validation", "psnr/validation", "learning_rate"}
    assert [event.step for event in events.Scalars("psnr/validation")] == [2, 4]
    image = events.Images("reconstructions")[-1]
    assert (image.width, image.height) == (4 * 2 * 64, 64)  # four original | reconstruction pairs in a row
