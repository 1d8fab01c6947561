"""What a training run reports of its validations: each source's means, and optional TensorBoard logs (scalars
and a few reconstructions at each validation).

TensorBoard is not a dependency of the harness: without it, training logs
nothing unless ``--logdir`` asks for logs, which is then a one-line error.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from harness import UserError

IMAGES_LOGGED = 4


def by_source(sources: tuple[str, ...],
              per_patch: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, tuple[float, float]]:
    """Per validation source, (bpp, PSNR) averaged over the levels: ``per_patch`` holds each level's per-patch
    MSE and bpp, and a source's PSNR at a level is that of its patches' mean MSE."""
    result = {}
    for source in dict.fromkeys(sources):
        chosen = torch.tensor([name == source for name in sources])
        levels = [(float(bpp[chosen].mean()), 10.0 * math.log10(1.0 / max(float(mse[chosen].mean()), 1e-12)))
                  for mse, bpp in per_patch]
        result[source] = tuple(sum(values) / len(levels) for values in zip(*levels))
    return result


def default_logdir(output: Path) -> Path:
    """Logs sit beside the checkpoint they describe: ``<output>.runs/``."""
    return output.with_name(output.name + ".runs")


def open_log(logdir: Path | None, output: Path) -> TrainingLog | None:
    """A log in ``logdir`` (default: beside ``output``) when tensorboard is installed; None when it is not
    and no ``logdir`` was asked for."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        if logdir is not None:
            raise UserError(f"train autoencoder: --logdir {logdir}: TensorBoard logs need the tensorboard "
                            "package; pip install tensorboard") from exc
        return None
    return TrainingLog(SummaryWriter(log_dir=str(logdir or default_logdir(output))))


class TrainingLog:
    """Writes what a validation measured; the writer is any ``SummaryWriter``-like object."""

    def __init__(self, writer):
        self.writer = writer

    def validation(self, step: int, train_loss: float, validation_loss: float, validation_psnr: float,
                   learning_rate: float, patches: torch.Tensor, reconstructions: torch.Tensor) -> None:
        self.writer.add_scalar("loss/train", train_loss, step)
        self.writer.add_scalar("loss/validation", validation_loss, step)
        self.writer.add_scalar("psnr/validation", validation_psnr, step)
        self.writer.add_scalar("learning_rate", learning_rate, step)
        self.writer.add_images("reconstructions", side_by_side(patches, reconstructions), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def side_by_side(patches: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """The first few patches, each as original | reconstruction (N x 1 x P x 2P, values in [0, 1])."""
    pairs = torch.cat([patches[:IMAGES_LOGGED], reconstructions[:IMAGES_LOGGED]], dim=-1)
    return pairs.detach().float().clamp(0.0, 1.0).cpu()
