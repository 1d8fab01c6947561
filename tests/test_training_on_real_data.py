"""Specification of training on real rasters through the dataset plugins (`train autoencoder --data`),
of variable-rate training, of large patches and of compact checkpoints."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint
from harness_codecs._autoencoder.training.data import CropPlan, PatchCutter, TrainingTile

from harness import UserError
from harness.cli import main

from tests.training_helpers import DATA, FAST, REAL_BENCHMARK, TRAINING_DATA, train, train_beside, write

@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """A variable-rate model trained for 2 steps on real BigEarthNet patches, next to a benchmark of the
    real test chips that uses it."""
    folder = tmp_path_factory.mktemp("real")
    data = write(folder, "training.yaml", TRAINING_DATA)
    config = write(folder, "bench.yaml", REAL_BENCHMARK)
    train("--config", str(config), "--data", str(data), "--output", str(folder / "model.pt"), "--steps", "2",
          "--fp16-weights", *FAST)
    return folder


def test_a_variable_rate_model_trained_on_real_patches_codes_the_real_test_chips(real_run):
    assert main(["run", str(real_run / "bench.yaml"), "--output", str(real_run / "report"), "--no-progress"]) == 0

    rows = pd.read_csv(real_run / "report" / "results.csv", keep_default_na=False)
    assert len(rows) == 8 and (rows["error"] == "").all()
    assert (rows["bpp"] == 8 * rows["bytes"] / (rows["height"] * rows["width"])).all()
    assert (rows["estimated_bpp"].astype(float) > 0).all()


def test_the_checkpoint_records_its_training_data_and_each_levels_validation(real_run):
    checkpoint = load_checkpoint(real_run / "model.pt")

    assert checkpoint.training["data"] == str(real_run / "training.yaml")
    assert checkpoint.spec.lmbdas == (50.0, 800.0)
    assert len(checkpoint.validation_levels) == 2
    assert all(bpp > 0 and psnr > 0 for bpp, psnr in checkpoint.validation_levels)


def test_fp16_weights_are_stored_as_float16_and_the_tables_fit_exactly_those_weights(real_run):
    stored = torch.load(real_run / "model.pt", weights_only=True)
    checkpoint = load_checkpoint(real_run / "model.pt")
    floating = [tensor for tensor in stored["state_dict"].values() if tensor.is_floating_point()]
    rebuilt = build_model(checkpoint, real_run / "model.pt").prior.tables().to_tensors()

    assert stored["weight_format"] == "float16" and all(tensor.dtype == torch.float16 for tensor in floating)
    assert all(torch.equal(rebuilt[name], checkpoint.entropy_tables[name]) for name in rebuilt)


def test_a_training_scene_that_the_benchmark_tests_on_is_refused(tmp_path, real_run):
    data = write(tmp_path, "leaky.yaml", TRAINING_DATA.replace(f"{DATA}/train/s1_patches/bigearthnet",
                                                                f"{DATA}/test/sen1floods11")
                 .replace("per_polarisation: true", "bands: {VV: 1, VH: 2}"))

    with pytest.raises(UserError, match="scene India_900498_S1Hand is a test scene of .*bench.yaml; remove it"):
        train("--config", str(real_run / "bench.yaml"), "--data", str(data), "--output", str(tmp_path / "m.pt"),
              "--steps", "1", *FAST)


@pytest.mark.parametrize(("content", "message"), [
    ("train: []\nvalidation: []\n", "train: expected a non-empty list of dataset sections"),
    ("train:\n  - kind: nowhere\nvalidation:\n  - kind: geotiff\n", r"train\[0\]\.kind: unknown dataset 'nowhere'"),
    ("train:\n  - kind: geotiff\n    bogus: 1\nvalidation:\n  - kind: geotiff\n", r"train\[0\]\.bogus: unknown option"),
    ("tests: []\n", "expected a mapping with the keys train and validation"),
])
def test_a_bad_training_data_file_is_a_one_line_error_naming_the_file_and_key(tmp_path, real_run, content, message):
    data = write(tmp_path, "data.yaml", content)

    with pytest.raises(UserError, match=message) as error:
        train("--config", str(real_run / "bench.yaml"), "--data", str(data), "--output", str(tmp_path / "m.pt"),
              *FAST)
    assert "data.yaml" in str(error.value) and "\n" not in str(error.value)


def test_a_missing_training_data_file_is_named_even_when_the_default_config_is_missing_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no benchmarks.yaml here, the default of --config
    with pytest.raises(UserError, match=r"^train autoencoder: --data missing\.yaml: no such file; give a "
                                        r"training-data YAML"):
        train("--data", "missing.yaml", "--output", str(tmp_path / "m.pt"), *FAST)


@pytest.mark.parametrize(("lmbdas", "extra", "message"), [
    ("100", [], "expected two or more positive, increasing numbers"),
    ("400,100", [], "expected two or more positive, increasing numbers"),
    ("100,400", ["--entropy", "none"], "a variable-rate model needs an --entropy model"),
    ("100,400", ["--preset", "gdn-dct-small", "--latent-channels", "300"], "at most 256"),
    ("100,400", ["--preset", "gdn-dct-small", "--attention"], "--attention is for the tiny and default"),
])
def test_bad_variable_rate_trade_offs_are_refused(tmp_path, real_run, lmbdas, extra, message):
    with pytest.raises(UserError, match=message):
        train_beside(real_run, tmp_path / "m.pt", "--lmbdas", lmbdas, *extra)


def test_a_share_of_the_steps_draws_patches_twice_as_wide_from_the_tiles_wide_enough():
    plan = CropPlan([(64, 64), (256, 256)], 64, 8, torch.Generator().manual_seed(0), 0, 400, large_fraction=0.25)

    batches = list(plan)
    large = [batch for batch in batches if batch[0][5] == 128]

    assert 70 < len(large) < 130
    assert all(len(batch) == 2 and all(crop[0] == 1 for crop in batch) for batch in large)
    small = [batch for batch in batches if batch not in large]
    assert all(len(batch) == 8 and all(crop[5] == 64 for crop in batch) for batch in small)
    cutter = PatchCutter([TrainingTile(np.zeros((64, 64), np.float32), (-25.0, 5.0)),
                          TrainingTile(np.zeros((256, 256), np.float32), (-25.0, 5.0))])
    assert cutter[large[0]].shape == (2, 2, 128, 128) and cutter[small[0]].shape == (8, 2, 64, 64)


def test_large_patches_without_a_tile_wide_enough_are_refused(tmp_path, real_run):
    with pytest.raises(UserError, match="--large-patch-fraction 0.5: no training tile is 128px wide"):
        train_beside(real_run, tmp_path / "m.pt", "--large-patch-fraction", "0.5")


def test_fine_tuning_starts_from_the_init_checkpoints_weights(tmp_path, real_run):
    output = tmp_path / "tuned.pt"
    train_beside(real_run, output, "--init", str(real_run / "model.pt"), "--steps", "1", "--lr", "1e-30",
                 "--density-lr-factor", "10")

    start = load_checkpoint(real_run / "model.pt").state_dict
    tuned = torch.load(output.with_name("tuned.last.pt"), weights_only=True)["state_dict"]
    assert all(torch.equal(tuned[name].half(), start[name]) for name in start if start[name].is_floating_point())


def test_fine_tuning_a_checkpoint_of_another_model_is_refused(tmp_path, real_run):
    with pytest.raises(UserError, match=r"--init .*model.pt: it holds a tiny model with other options \(lmbdas"):
        train_beside(real_run, tmp_path / "m.pt", "--init", str(real_run / "model.pt"), "--lmbdas", "50,900")


def test_warm_start_copies_the_weights_whose_name_and_shape_fit_and_starts_the_rest_fresh(tmp_path, real_run, capsys):
    output = tmp_path / "warm.pt"
    train_beside(real_run, output, "--warm-start", str(real_run / "model.pt"), "--steps", "1", "--lr", "1e-30",
                 "--latent-channels", "16")

    start = load_checkpoint(real_run / "model.pt").state_dict
    warm = torch.load(output.with_name("warm.last.pt"), weights_only=True)["state_dict"]
    same = [name for name in warm if name in start and warm[name].shape == start[name].shape]
    assert "encoder.0.weight" in same and "encoder.6.weight" not in same  # the last layer maps to 16 channels
    assert all(torch.equal(warm[name].half(), start[name]) for name in same if start[name].is_floating_point())
    assert f"{len(same)} of {len(warm)} tensors" in capsys.readouterr().out


def test_warm_start_from_a_checkpoint_of_which_nothing_fits_is_refused(tmp_path, real_run):
    with pytest.raises(UserError, match=r"--warm-start .*model.pt: none of its weights fits a gdn-dct-light model"):
        train_beside(real_run, tmp_path / "m.pt", "--warm-start", str(real_run / "model.pt"),
                     "--preset", "gdn-dct-light")


def test_validation_is_reported_per_held_out_source(tmp_path, capsys):
    data = write(tmp_path, "training.yaml", TRAINING_DATA + textwrap.indent(textwrap.dedent(f"""\
        - kind: geotiff
          paths: [{DATA}/train/s1_patches/bigearthnet]
          per_polarisation: true
          polarisations: [VH]
          tile_size: 112
        """), "  "))
    config = write(tmp_path, "bench.yaml", REAL_BENCHMARK)
    train("--config", str(config), "--data", str(data), "--output", str(tmp_path / "m.pt"), "--steps", "1", *FAST,
          "--validation-patches", "64")

    printed = capsys.readouterr().out
    assert "last validation on geotiff:pyrosar:" in printed and "last validation on geotiff:bigearthnet:" in printed


@pytest.mark.parametrize(("flags", "message"), [
    (["--gain-db", "-1"], "--gain-db -1.0: expected 0 or more"),
    (["--no-data-fraction", "1.5"], "--no-data-fraction 1.5: expected a number from 0 to 1"),
    (["--init", "a.pt", "--warm-start", "b.pt"], "--init and --warm-start: give one of them"),
    (["--fp16-weights", "--weight-format", "int8"], "--fp16-weights and --weight-format int8: give one of them"),
])
def test_bad_augmentation_and_warm_start_options_are_refused(tmp_path, real_run, flags, message):
    with pytest.raises(UserError, match=message):
        train_beside(real_run, tmp_path / "m.pt", *flags)


def test_the_trainer_writes_the_best_checkpoint_in_the_weight_format_asked_for(tmp_path, real_run):
    output = tmp_path / "int8.pt"
    train_beside(real_run, output, "--steps", "2", "--weight-format", "int8")

    raw = torch.load(output, weights_only=True)
    resume = torch.load(output.with_name("int8.last.pt"), weights_only=True)
    assert raw["weight_format"] == "int8" and resume["weight_format"] == "float32"
    assert output.stat().st_size < (real_run / "model.pt").stat().st_size  # the float16 one of the fixture
    checkpoint = load_checkpoint(output)
    rebuilt = build_model(checkpoint, output).prior.tables().to_tensors()
    assert all(torch.equal(rebuilt[name], checkpoint.entropy_tables[name]) for name in rebuilt)
