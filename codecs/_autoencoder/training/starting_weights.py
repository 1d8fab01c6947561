"""The weights a training run starts from: all of a checkpoint's (``--init``, fine-tuning the same model) or those
of its tensors that fit (``--warm-start``, another preset's analysis, say). Each refusal is one ``UserError``
line naming the file."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, ModelSpec
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, load_checkpoint

from harness import UserError


def initial_checkpoint(path: Path | None, spec: ModelSpec) -> Checkpoint | None:
    """The checkpoint of ``--init``, refused unless it holds the model being trained."""
    if path is None:
        return None
    try:
        checkpoint = load_checkpoint(path)
    except ValueError as exc:
        raise UserError(f"train autoencoder: --init {exc}") from exc
    _require(checkpoint.spec == spec, f"--init {path}: it holds a {checkpoint.spec.preset} model with other options "
                                      f"({_spec_difference(checkpoint.spec, spec)}); fine-tune with the same --preset, "
                                      "--latent-channels, --entropy and --lmbdas")
    return checkpoint


def warm_start_weights(path: Path, spec: ModelSpec) -> dict:
    """Every tensor of ``path`` whose name and shape fit the model (the others start as a fresh model's do);
    refused when none fits. Printed: how many of the model's tensors (and values) come from the file."""
    try:
        checkpoint = load_checkpoint(path)
    except ValueError as exc:
        raise UserError(f"train autoencoder: --warm-start {exc}") from exc
    with torch.device("meta"):  # names and shapes only
        state = Autoencoder(spec).state_dict()
    fitting = {name: tensor.float() for name, tensor in checkpoint.state_dict.items()
               if name in state and tensor.shape == state[name].shape}
    _require(bool(fitting), f"--warm-start {path}: none of its weights fits a {spec.preset} model "
                            f"(it holds a {checkpoint.spec.preset} model)")
    copied = sum(tensor.numel() for tensor in fitting.values())
    print(f"autoencoder: --warm-start {path}: {len(fitting)} of {len(state)} tensors ({copied:,} of "
          f"{sum(tensor.numel() for tensor in state.values()):,} values) copied", flush=True)
    return fitting


def coded_latent_tables(args: argparse.Namespace, init: Checkpoint | None) -> EntropyTables | None:
    """With ``--coded-latents``, the tables (and trellis settings) under which the codec codes ``--init``'s latents;
    refused unless the latents stay as the codec would code them: the analysis and the prior frozen."""
    if not args.coded_latents:
        return None
    _require(args.train_only is not None, "--coded-latents: the latents must stay as the codec codes them; add "
                                          "--train-only synthesis (or refinement)")
    _require(init is not None, "--coded-latents: give the trained model whose latents are coded with --init")
    _require(bool(init.entropy_tables), f"--coded-latents: --init {args.init} holds a fixed-length model; its latent "
                                        "is not entropy-coded")
    return EntropyTables.from_tensors(init.entropy_tables)


def _spec_difference(stored: ModelSpec, wanted: ModelSpec) -> str:
    changed = [name for name in stored.to_dict() if getattr(stored, name) != getattr(wanted, name)]
    return ", ".join(f"{name} {getattr(stored, name)!r} here, {getattr(wanted, name)!r} asked" for name in changed)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(f"train autoencoder: {message}")
