"""Trainer plugin ``autoencoder``: ``python -m harness train autoencoder [options]``.

This module turns options (flags, and a YAML file given with ``--options``
whose values the flags given explicitly override) into validated
``FitSettings``, builds the training split (real rasters listed in a
``--data`` file, or synthetic scenes; checked against the benchmark's test
tiles either way) and hands over to ``fit.Fitter``. Every bad option is one
``UserError`` line.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from harness_codecs._autoencoder.runtime.bitstream import MAX_BITS
from harness_codecs._autoencoder.model.block_transform import BLOCK
from harness_codecs._autoencoder.runtime.checkpoint import git_commit, read_checkpoint_file
from harness_codecs._autoencoder.training.data import LARGE_PATCH_FACTOR
from harness_codecs._autoencoder.training.loop import (
    AMP_DTYPES,
    TRAINABLE_PARTS,
    FitSettings,
    Fitter,
    msssim_window,
    resume_path,
)
from harness_codecs._autoencoder.model.autoencoder import (
    entropy_models,
    PRESETS,
    STRIDE,
    ModelSpec,
    spec_for,
)
from harness_codecs._autoencoder.runtime.weights import WEIGHT_FORMATS
from harness_codecs._autoencoder.training.augmentation import Augmentation
from harness_codecs._autoencoder.training.log import open_log
from harness_codecs._autoencoder.training.sources import checked_split, write_training_pack
from harness_codecs._autoencoder.training.starting_weights import (
    coded_latent_tables,
    initial_checkpoint,
    warm_start_weights,
)

from harness import Trainer, UserError

REPOSITORY = Path(__file__).resolve().parents[3]
RESUME_MUST_MATCH = ("preset", "latent_channels", "attention", "entropy", "lmbda", "lmbdas", "refinement", "train_only",
                     "coded_latents",
                     "bits", "patch_size",
                     "large_patch_fraction", "batch_size", "lr", "density_lr_factor", "init", "warm_start",
                     "grad_clip", "msssim_weight", "seed", "config", "data", "scenes", "validation_scenes",
                     "scene_size", "gain_db", "no_data_fraction", "pack")
CHOICES = {"preset": tuple(sorted(PRESETS)), "entropy": entropy_models(), "device": ("auto", "cpu", "cuda"),
           "amp": ("none", *AMP_DTYPES), "weight_format": WEIGHT_FORMATS, "train_only": tuple(TRAINABLE_PARTS)}
# Types of the options whose default is None (the others' type is their default's).
TYPES_OF_UNSET = {"latent_channels": int, "threads": int, "workers": int, "manifest": Path, "logdir": Path,
                  "data": Path, "lmbdas": list, "init": Path, "warm_start": Path, "pack": Path,
                  "write_pack": Path, "time_limit": float, "train_only": str}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path",
              list: "a list of numbers"}
CUDA_WORKERS = 2


class AutoencoderTrainer(Trainer):
    name = "autoencoder"
    description = ("Train the autoencoder codec on Sentinel-1 rasters listed in a --data file (or on synthetic "
                   "scenes) that never overlap the benchmark's test tiles; writes the best checkpoint (by "
                   "validation loss) to --output.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for add in (_add_data_arguments, _add_model_arguments, _add_optimization_arguments, _add_run_arguments):
            add(parser)
        # Every option defaults to None, so that train() can tell a flag given explicitly (which overrides
        # the --options file) from one left out; the real defaults are filled in there.
        self.defaults = vars(parser.parse_args([]))
        parser.set_defaults(**dict.fromkeys(self.defaults))

    def train(self, args: argparse.Namespace) -> None:
        args = resolve_options(args, self.defaults)
        settings = fit_settings(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.write_pack:
            write_training_pack(args)
            return
        source = checked_split(args)
        split = source.split
        settings = dataclasses.replace(settings, normalization=dict(source.normalization),
                                       training_record={**settings.training_record, **source.record})
        large = LARGE_PATCH_FACTOR * args.patch_size
        _require(not args.large_patch_fraction or any(min(tile.shape) >= large for tile in split.train_tiles),
                 f"--large-patch-fraction {args.large_patch_fraction}: no training tile is {large}px wide; raise the "
                 "training windows' tile_size or set it to 0")
        print(f"autoencoder: {len(split.train_tiles)} training tiles from {len(split.scenes)} scenes, "
              f"{len(split.validation_patches)} validation patches", flush=True)
        fitter = Fitter(settings, split, open_log(args.logdir, settings.output))
        if args.resume:
            fitter.restore(_resume_state(settings))
        started = time.perf_counter()
        fitter.run()
        print(f"autoencoder: {fitter.step} steps in {time.perf_counter() - started:.0f} s; best validation loss "
              f"{fitter.best_loss:.5f}; best checkpoint {settings.output}", flush=True)
        for source, (bpp, psnr) in fitter.validation_by_source.items():
            print(f"autoencoder: last validation on {source}: {bpp:.3f} bpp, {psnr:.2f} dB (means over the levels)",
                  flush=True)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--options", type=Path,
                        help="YAML file of options (keys: the long option names, e.g. latent_channels: 32); "
                             "flags given on the command line override it")
    parser.add_argument("--config", default="benchmarks.yaml",
                        help="benchmark YAML whose test tiles are excluded and whose dB ranges are used")
    parser.add_argument("--data", type=Path,
                        help="training-data YAML: train: and validation:, each a list of dataset sections "
                             "(kind: geotiff, safe, ...) as in a benchmark config; default: synthetic scenes")
    parser.add_argument("--pack", type=Path,
                        help="train from a training pack (written with --write-pack) instead of --data: numpy "
                             "alone reads it, for a machine without the raster readers")
    parser.add_argument("--write-pack", type=Path,
                        help="read --data, check it against --config as training would, write it to this file "
                             "and stop (no training)")
    parser.add_argument("--manifest", type=Path,
                        help="tiles.csv of a test set (a run folder's manifest): its scenes and tiles are "
                             "excluded from training too")
    parser.add_argument("--gain-db", type=float, default=0.0,
                        help="shift each training patch by a dB offset drawn from [-G, G] before clipping")
    parser.add_argument("--no-data-fraction", type=float, default=0.0,
                        help="share of the training patches given a no-data region beyond a straight border, "
                             "filled as test tiles are and left out of the distortion")
    parser.add_argument("--scenes", type=int, default=4, help="training scenes to generate")
    parser.add_argument("--validation-scenes", type=int, default=1)
    parser.add_argument("--validation-patches", type=int, default=32)
    parser.add_argument("--scene-size", type=int, default=1024)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", choices=CHOICES["preset"])
    parser.add_argument("--latent-channels", type=int, help="latent width (default: the preset's)")
    parser.add_argument("--attention", action="store_true", help="add CBAM attention blocks")
    parser.add_argument("--entropy", default="none", choices=CHOICES["entropy"],
                        help=f"none: fixed-length codes of --bits each; {', '.join(CHOICES['entropy'][1:])}: "
                             "integer latent range-coded under a learned prior, trained for lmbda * distortion "
                             "+ bpp")
    parser.add_argument("--lmbda", type=float, default=1000.0,
                        help="rate-distortion trade-off of entropy-coded models: larger spends more bits")
    parser.add_argument("--lmbdas", type=_number_list, default=[],
                        help="variable rate: comma-separated trade-offs, one gain level each (e.g. "
                             "64,256,1024,4096); the codec's quality option picks a level, or between two")
    parser.add_argument("--refinement", type=_number_list, default=[],
                        help="widths of a full-resolution network after the synthesis, e.g. 16,16,16 (3x3 "
                             "convolutions; each layer adds 9 x inputs x outputs MAC/px to decoding)")
    parser.add_argument("--weight-format", default="float32", choices=CHOICES["weight_format"],
                        help="how the best checkpoint stores its weights: float16 is half the file, int8 (at most "
                             "8 bits a weight, compressed) about a third of float16's")
    parser.add_argument("--fp16-weights", action="store_true", help="the same as --weight-format float16")
    parser.add_argument("--bits", type=int, default=4,
                        help="quantization bits per latent value (1-16) of fixed-length models")
    parser.add_argument("--init", type=Path,
                        help="start from this checkpoint's weights (same model options; a new optimizer and "
                             "schedule): fine-tuning")
    parser.add_argument("--warm-start", type=Path,
                        help="start from every weight of this checkpoint whose name and shape fit the model being "
                             "trained (e.g. another gdn-dct preset's analysis transform); the rest start fresh")
    parser.add_argument("--train-only", choices=CHOICES["train_only"],
                        help="train this part of the model and keep every other weight as it starts, after "
                             "--init or --warm-start from a trained model: refinement, or synthesis (all that "
                             "decodes after the entropy decoding, so the rates stay as they were)")
    parser.add_argument("--coded-latents", action="store_true",
                        help="with --train-only and --init: train on the latents as the codec codes them (trellis-"
                             "coded at the levels with trellis settings, rounded at the others), one level per batch, "
                             "instead of the noise proxy")


def _add_optimization_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patch-size", type=int, default=128, help="training patch side, a multiple of 16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--large-patch-fraction", type=float, default=0.0,
                        help="share of the steps that train on patches twice as wide (a quarter of the batch), "
                             "so that the model learns the inside of large tiles too")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine decay)")
    parser.add_argument("--density-lr-factor", type=float, default=1.0,
                        help="learning rate of the learned densities, in multiples of --lr (10 lets a side "
                             "latent's density narrow within hundreds of steps)")
    parser.add_argument("--grad-clip", type=float, default=0.0,
                        help="clip the gradient's norm to this (0: no clipping); 1 keeps GDN models stable")
    parser.add_argument("--msssim-weight", type=float, default=0.05, help="loss = MSE + w * (1 - MS-SSIM)")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=CHOICES["device"])
    parser.add_argument("--amp", default="none", choices=CHOICES["amp"],
                        help="mixed precision: bf16 on CUDA or on a CPU with AMX / AVX-512 BF16; fp16 on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice); "
                                                     "1 is fastest on cores shared with other jobs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="checkpoints/autoencoder.pt", help="where the best checkpoint goes")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT's .last checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="validate and checkpoint every N steps")
    parser.add_argument("--time-limit", type=float, help="stop after this many seconds of training, with a "
                                                          "checkpoint (the schedule still spans --steps)")
    parser.add_argument("--workers", type=int, help="data loader processes cutting patches ahead of the "
                                                     f"training step (default: 0 on CPU, {CUDA_WORKERS} on CUDA)")
    parser.add_argument("--logdir", type=Path, help="TensorBoard log folder (default: OUTPUT.runs/ when "
                                                     "tensorboard is installed)")
    parser.add_argument("--no-progress", action="store_true")

def resolve_options(args: argparse.Namespace, defaults: dict[str, Any]) -> argparse.Namespace:
    """Each option's value: the flag if given, else the ``--options`` file's value, else the default."""
    from_file = read_options_file(args.options, defaults) if args.options else {}
    given = {key: value for key, value in vars(args).items() if value is not None}
    return argparse.Namespace(**{**defaults, **from_file, **given})


def read_options_file(path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """The file's options, keyed like ``argparse`` dests (dashes become underscores), checked and typed."""
    try:
        content = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"train autoencoder: --options {path}: {' '.join(str(exc).split())}") from exc
    _require(isinstance(content, dict), f"--options {path}: expected a mapping of option names to values")
    options = {}
    for name, value in content.items():
        key = str(name).replace("-", "_")
        _require(key in defaults and key != "options",
                 f"--options {path}: unknown option {name!r}; the keys are the long option names of --help")
        options[key] = _typed(key, value, TYPES_OF_UNSET.get(key, type(defaults[key])), path)
    return options


def _typed(key: str, value: Any, expected: type, path: Path) -> Any:
    """``value`` as an option of type ``expected`` (ints pass as floats, strings as paths), or a UserError."""
    accepted = {bool: (bool,), int: (int,), float: (int, float), str: (str,), Path: (str,), list: (list,)}[expected]
    valid = isinstance(value, accepted) and (expected is bool or not isinstance(value, bool))
    if expected is list and valid:
        valid = all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value)
    _require(valid, f"--options {path}: {key}: expected {TYPE_NAMES[expected]}, got {value!r}")
    _require(value in CHOICES.get(key, (value,)),
             f"--options {path}: {key}: expected one of {', '.join(CHOICES.get(key, ()))}, got {value!r}")
    return expected(value)


def fit_settings(args: argparse.Namespace) -> FitSettings:
    """Validate the options; the record stored in the checkpoint is the options as given."""
    _check_ranges(args)
    spec = _model_spec(args)
    device = _device(args.device)
    _require(args.amp in ("none", "bf16") or device.type == "cuda",
             f"--amp {args.amp}: fp16 needs --device cuda; on the CPU use bf16")
    init = initial_checkpoint(args.init, spec)
    record = {key: str(value) if isinstance(value, Path) or value is None else value for key, value in vars(args).items()}
    if init is not None:  # what the starting weights went through (stages, gain tilts, trellis settings) stays known
        record["started_from"] = init.training
    return FitSettings(
        spec=spec, bits=args.bits,
        patch_size=args.patch_size, batch_size=args.batch_size, steps=args.steps, lr=args.lr,
        msssim_weight=args.msssim_weight, device=device, amp=args.amp, compile=args.compile, seed=args.seed,
        output=Path(args.output), checkpoint_every=args.checkpoint_every, normalization={},
        training_record=record, git_commit=git_commit(REPOSITORY), progress=not args.no_progress,
        workers=_workers(args.workers, device), lmbda=args.lmbda,
        weight_format="float16" if args.fp16_weights else args.weight_format,
        grad_clip=args.grad_clip, large_patch_fraction=args.large_patch_fraction,
        density_lr_factor=args.density_lr_factor,
        initial_state=(warm_start_weights(args.warm_start, spec) if args.warm_start is not None
                       else None if init is None else init.state_dict),
        augmentation=Augmentation(gain_db=args.gain_db, no_data_fraction=args.no_data_fraction),
        time_limit=args.time_limit, train_only=args.train_only, codec_tables=coded_latent_tables(args, init),
    )


def _check_ranges(args: argparse.Namespace) -> None:
    """Each number within its range, and no two options that exclude each other."""
    _require(args.steps >= 1, f"--steps {args.steps}: expected at least 1")
    _require(args.batch_size >= 1, f"--batch-size {args.batch_size}: expected at least 1")
    _require(args.lr > 0, f"--lr {args.lr}: expected a positive number")
    _require(args.lmbda > 0, f"--lmbda {args.lmbda}: expected a positive number")
    _require(args.msssim_weight >= 0, f"--msssim-weight {args.msssim_weight}: expected 0 or more")
    _require(args.grad_clip >= 0, f"--grad-clip {args.grad_clip}: expected 0 or more")
    _require(args.density_lr_factor > 0, f"--density-lr-factor {args.density_lr_factor}: expected a positive number")
    _require(args.gain_db >= 0, f"--gain-db {args.gain_db}: expected 0 or more")
    _require(0 <= args.no_data_fraction <= 1,
             f"--no-data-fraction {args.no_data_fraction}: expected a number from 0 to 1")
    _require(args.init is None or args.warm_start is None, "--init and --warm-start: give one of them")
    _require(args.pack is None or (args.data is None and args.write_pack is None),
             "--pack: it holds the training data already; leave out --data and --write-pack")
    _require(not args.fp16_weights or args.weight_format in ("float32", "float16"),
             f"--fp16-weights and --weight-format {args.weight_format}: give one of them")
    _require(0 <= args.large_patch_fraction <= 1,
             f"--large-patch-fraction {args.large_patch_fraction}: expected a number from 0 to 1")
    _require(1 <= args.bits <= MAX_BITS, f"--bits {args.bits}: expected an integer from 1 to {MAX_BITS}")
    _require(args.latent_channels is None or 1 <= args.latent_channels <= 65535,
             f"--latent-channels {args.latent_channels}: expected an integer from 1 to 65535")
    _require(args.patch_size >= STRIDE and args.patch_size % STRIDE == 0,
             f"--patch-size {args.patch_size}: expected a positive multiple of {STRIDE}")
    _require(args.threads is None or args.threads >= 1, f"--threads {args.threads}: expected at least 1")
    _require(args.workers is None or args.workers >= 0, f"--workers {args.workers}: expected 0 or more")
    _require(args.checkpoint_every >= 1, f"--checkpoint-every {args.checkpoint_every}: expected at least 1")
    _require(args.time_limit is None or args.time_limit > 0, f"--time-limit {args.time_limit}: expected a positive "
                                                             "number of seconds")
    _require(min(args.scenes, args.validation_scenes, args.validation_patches) >= 1,
             "--scenes, --validation-scenes and --validation-patches: expected at least 1 each")
    _require(args.msssim_weight == 0 or msssim_window(args.patch_size) >= 3,
             f"--patch-size {args.patch_size}: MS-SSIM needs patches of at least 64 px; use --msssim-weight 0")


def _model_spec(args: argparse.Namespace) -> ModelSpec:
    """The spec of the model the options describe, refused where the preset cannot take them."""
    lmbdas = [float(value) for value in args.lmbdas]
    _require(not lmbdas or (len(lmbdas) >= 2 and all(0 < low < high for low, high in zip(lmbdas, lmbdas[1:]))),
             f"--lmbdas {','.join(f'{value:g}' for value in lmbdas)}: expected two or more positive, increasing numbers")
    _require(not lmbdas or args.entropy != "none", "--lmbdas: a variable-rate model needs an --entropy model")
    _require(all(value >= 1 and value == int(value) for value in args.refinement),
             f"--refinement {','.join(f'{value:g}' for value in args.refinement)}: expected positive integer widths")
    spec = spec_for(args.preset, args.latent_channels, args.attention, args.entropy, tuple(lmbdas),
                    tuple(int(value) for value in args.refinement))
    _require(args.train_only != "refinement" or spec.refinement_channels,
             "--train-only refinement: the model has none; give its widths with --refinement")
    if spec.transform == "gdn-dct":
        _require(spec.entropy != "none", f"--preset {args.preset}: its latent is unbounded; choose an --entropy model")
        _require(not spec.attention, f"--preset {args.preset}: --attention is for the tiny and default presets")
        _require(spec.latent_channels <= BLOCK * BLOCK, f"--latent-channels {spec.latent_channels}: the "
                 f"{args.preset} block transform has at most {BLOCK * BLOCK} ({BLOCK}x{BLOCK} DCT coefficients)")
    return spec


def _workers(requested: int | None, device: torch.device) -> int:
    """On CUDA, cutting patches in worker processes keeps the GPU from waiting; on CPU they compete with it."""
    if requested is not None:
        return requested
    return CUDA_WORKERS if device.type == "cuda" else 0


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


def _number_list(text: str) -> list[float]:
    """``64,256,1024`` -> [64.0, 256.0, 1024.0], for ``--lmbdas``."""
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(f"train autoencoder: {message}")


