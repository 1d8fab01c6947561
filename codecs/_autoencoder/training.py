"""Trainer plugin ``autoencoder``: ``python -m harness train autoencoder [options]``.

This module turns command-line options into validated ``FitSettings``,
builds the training split (checked against the benchmark's test tiles) and
hands over to ``fit.Fitter``. Every bad option is one ``UserError`` line.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from harness_codecs._autoencoder.bitstream import MAX_BITS
from harness_codecs._autoencoder.checkpoint import git_commit, read_checkpoint_file
from harness_codecs._autoencoder.data import build_split, check_against_manifest, check_no_overlap
from harness_codecs._autoencoder.fit import (
    AMP_DTYPES,
    FitSettings,
    Fitter,
    msssim_window,
    resume_path,
)
from harness_codecs._autoencoder.model import PRESETS, STRIDE, spec_for

from harness import Trainer, UserError
from harness.config import load_config
from harness.manifest import read_manifest
from harness.runner import load_tiles

REPOSITORY = Path(__file__).resolve().parents[2]
RESUME_MUST_MATCH = ("preset", "latent_channels", "attention", "bits", "patch_size", "batch_size", "lr",
                     "msssim_weight", "seed", "config", "scenes", "validation_scenes", "scene_size")


class AutoencoderTrainer(Trainer):
    name = "autoencoder"
    description = ("Train the autoencoder codec on synthetic Sentinel-1 scenes that never overlap the "
                   "benchmark's test tiles; writes the best checkpoint (by validation loss) to --output.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", default="benchmarks.yaml",
                            help="benchmark YAML whose test tiles are excluded and whose dB ranges are used")
        parser.add_argument("--manifest", type=Path,
                            help="tiles.csv of a test set (a run folder's manifest): its scenes and tiles are "
                                 "excluded from training too")
        parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
        parser.add_argument("--latent-channels", type=int, help="latent width (default: the preset's)")
        parser.add_argument("--attention", action="store_true", help="add CBAM attention blocks")
        parser.add_argument("--bits", type=int, default=4, help="quantization bits per latent value (1-16)")
        parser.add_argument("--patch-size", type=int, default=128, help="training patch side, a multiple of 16")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--steps", type=int, default=2000)
        parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine decay)")
        parser.add_argument("--msssim-weight", type=float, default=0.05, help="loss = MSE + w * (1 - MS-SSIM)")
        parser.add_argument("--scenes", type=int, default=4, help="training scenes to generate")
        parser.add_argument("--validation-scenes", type=int, default=1)
        parser.add_argument("--validation-patches", type=int, default=32)
        parser.add_argument("--scene-size", type=int, default=1024)
        parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
        parser.add_argument("--amp", default="none", choices=("none", *AMP_DTYPES), help="mixed precision (CUDA only)")
        parser.add_argument("--compile", action="store_true", help="torch.compile the model")
        parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice); "
                                                         "1 is fastest on cores shared with other jobs")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--output", default="checkpoints/autoencoder.pt", help="where the best checkpoint goes")
        parser.add_argument("--resume", action="store_true", help="continue from OUTPUT's .last checkpoint")
        parser.add_argument("--checkpoint-every", type=int, default=100, help="validate and checkpoint every N steps")
        parser.add_argument("--no-progress", action="store_true")

    def train(self, args: argparse.Namespace) -> None:
        settings = fit_settings(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        config, registry = load_config(args.config)
        settings = _with_normalization(settings, config.normalization)
        _require(args.patch_size <= config.dataset.tile_size,
                 f"--patch-size {args.patch_size}: larger than the {config.dataset.tile_size}px windows "
                 f"of {args.config} that patches are cut from")
        print(f"autoencoder: building the training split ({args.scenes} + {args.validation_scenes} scenes "
              f"of {args.scene_size}px) and checking it against {args.config}", flush=True)
        split = build_split(config, args.seed, args.scenes, args.validation_scenes, args.scene_size,
                            args.patch_size, args.validation_patches)
        check_no_overlap(split, config, load_tiles(config, registry))
        if args.manifest:
            check_against_manifest(split, read_manifest(args.manifest), str(args.manifest))
        fitter = Fitter(settings, split)
        if args.resume:
            fitter.restore(_resume_state(settings))
        started = time.perf_counter()
        fitter.run()
        print(f"autoencoder: {fitter.step} steps in {time.perf_counter() - started:.0f} s; best validation loss "
              f"{fitter.best_loss:.5f}; best checkpoint {settings.output}", flush=True)


def fit_settings(args: argparse.Namespace) -> FitSettings:
    """Validate the options; the record stored in the checkpoint is the options as given."""
    _require(args.steps >= 1, f"--steps {args.steps}: expected at least 1")
    _require(args.batch_size >= 1, f"--batch-size {args.batch_size}: expected at least 1")
    _require(args.lr > 0, f"--lr {args.lr}: expected a positive number")
    _require(args.msssim_weight >= 0, f"--msssim-weight {args.msssim_weight}: expected 0 or more")
    _require(1 <= args.bits <= MAX_BITS, f"--bits {args.bits}: expected an integer from 1 to {MAX_BITS}")
    _require(args.latent_channels is None or 1 <= args.latent_channels <= 65535,
             f"--latent-channels {args.latent_channels}: expected an integer from 1 to 65535")
    _require(args.patch_size >= STRIDE and args.patch_size % STRIDE == 0,
             f"--patch-size {args.patch_size}: expected a positive multiple of {STRIDE}")
    _require(args.threads is None or args.threads >= 1, f"--threads {args.threads}: expected at least 1")
    _require(args.checkpoint_every >= 1, f"--checkpoint-every {args.checkpoint_every}: expected at least 1")
    _require(min(args.scenes, args.validation_scenes, args.validation_patches) >= 1,
             "--scenes, --validation-scenes and --validation-patches: expected at least 1 each")
    _require(args.msssim_weight == 0 or msssim_window(args.patch_size) >= 3,
             f"--patch-size {args.patch_size}: MS-SSIM needs patches of at least 64 px; use --msssim-weight 0")
    device = _device(args.device)
    _require(args.amp == "none" or device.type == "cuda", f"--amp {args.amp}: mixed precision needs --device cuda")
    record = {key: str(value) if isinstance(value, Path) or value is None else value for key, value in vars(args).items()}
    return FitSettings(
        spec=spec_for(args.preset, args.latent_channels, args.attention), bits=args.bits,
        patch_size=args.patch_size, batch_size=args.batch_size, steps=args.steps, lr=args.lr,
        msssim_weight=args.msssim_weight, device=device, amp=args.amp, compile=args.compile, seed=args.seed,
        output=Path(args.output), checkpoint_every=args.checkpoint_every, normalization={},
        training_record=record, git_commit=git_commit(REPOSITORY), progress=not args.no_progress,
    )


def _with_normalization(settings: FitSettings, normalization: dict[str, tuple[float, float]]) -> FitSettings:
    return dataclasses.replace(settings, normalization=dict(normalization))


def _device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA device; use --device cpu or auto")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _resume_state(settings: FitSettings) -> dict:
    path = resume_path(settings.output)
    try:
        state = read_checkpoint_file(path)
    except ValueError as exc:
        raise UserError(f"--resume: {exc}") from exc
    stored = state.get("training", {})
    changed = [key for key in RESUME_MUST_MATCH if stored.get(key) != settings.training_record.get(key)]
    if changed:
        raise UserError(f"--resume: {path} was trained with different {', '.join('--' + k.replace('_', '-') for k in changed)}; "
                        "resume with the same options or start a new --output")
    return state


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(f"train autoencoder: {message}")


