"""Each level's gains tilted along the way the levels change them: measured on tiles, then written into a checkpoint.

A variable-rate model scales its latent by one gain per channel and level (``Autoencoder.gains``), learned with
the noise proxy for the rate. Coded for real (rounded, under the prior), the levels in the middle are better served
by a slightly different shape of the same gains: tilted along ``direction`` (the difference between the gains of
the level below and above, its mean removed, scaled to a largest element of 1), the encoder multiplying each
channel's gain by ``exp(tilt * direction)`` and the decoder dividing by it. Nothing in the stream changes: the
tilted gains are the model's.

On a config's tiles, for each level and tilt, this measures the rate change at equal PSNR (ideal code lengths of
``y`` and ``z``, PSNR through the real decoder) against the model's own curve of fractional qualities around the
level, and names the best tilt per level; ``--apply`` writes a copy of the checkpoint with the given tilts, in
the same weight format, the tilts recorded in its ``training`` record. Choose the tilts on training data.

    python benchmarks/gain_tilt.py CHECKPOINT --config A.yaml [--config B.yaml] [--qualities 0,1,...]
    python benchmarks/gain_tilt.py CHECKPOINT --apply 0,0,-0.3,... --output OUT.pt

The shipped light model's tilts (stage 8, docs/learned-codec.md) were chosen on ``examples/gain_tilt_spain.yaml``
and ``examples/gain_tilt_ssl4eo.yaml`` (training chips), quality 1 to 8.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.densities import estimated_bits
from harness_codecs._autoencoder.model.autoencoder import Autoencoder
from harness_codecs._autoencoder.runtime.checkpoint import build_model, load_checkpoint, save_checkpoint

from benchmark_tiles import benchmark_tiles
from headroom_inputs import code_length, psnr, rate_at_psnr

TILTS = (-0.45, -0.3, -0.15, 0.15, 0.3)
CURVE_OFFSETS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
MINIMUM_SAVING = 0.5
"""A level keeps its gains unless its best tilt saves at least this per cent of the rate on average: smaller
changes are within what the ideal code lengths and the real streams (with their scale shifts) differ by."""


def tilt_directions(log_gains: torch.Tensor) -> torch.Tensor:
    """Per level, the difference of its neighbours' log gains (itself at the ends), mean removed, largest 1."""
    last = len(log_gains) - 1
    directions = torch.stack([log_gains[min(level + 1, last)] - log_gains[max(level - 1, 0)]
                              for level in range(len(log_gains))])
    directions = directions - directions.mean(dim=1, keepdim=True)
    return directions / directions.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)


def coded(model: Autoencoder, tiles: torch.Tensor, quality: float, factors: torch.Tensor) -> tuple[float, float]:
    """Mean bpp (ideal code lengths of ``y`` and ``z``) and mean PSNR with each channel's gain times ``factors``."""
    qualities = torch.full((len(tiles),), quality)
    scale = factors[None, :, None, None]
    latent, prior = model.encode(tiles, qualities) * scale, model.prior
    side = torch.round(prior.hyper_encoder(latent))
    means, scales = prior.element_parameters(latent, side, torch.round)
    integers = torch.round(latent - means)
    bits = code_length(integers, scales).sum() + estimated_bits([prior.side_density.likelihood(side)]).sum()
    return float(bits) / tiles.numel(), psnr(model.decode((integers + means) / scale, qualities), tiles)


def rate_changes(model: Autoencoder, tiles: torch.Tensor, level: int) -> dict[float, float | None]:
    """Per tilt, the per cent rate change at equal PSNR against the fractional-quality curve (None: outside it)."""
    top = model.spec.rate_levels - 1.0
    ones = torch.ones(model.spec.latent_channels)
    curve = np.array([coded(model, tiles, value, ones)
                      for value in sorted({min(max(level + offset, 0.0), top) for offset in CURVE_OFFSETS})])
    direction = tilt_directions(model.log_gains.detach())[level]
    changes = {}
    for tilt in TILTS:
        bpp, psnr_db = coded(model, tiles, float(level), torch.exp(tilt * direction))
        reference = rate_at_psnr(curve, psnr_db)
        changes[tilt] = None if reference is None else 100 * (bpp / reference - 1)
    return changes


def measure(checkpoint: Path, configs: list[Path], levels: list[int]) -> None:
    """Print each level's rate change per tilt and config, and the tilt with the lowest mean change (rounded to
    0.01 %; a tie goes to the smaller tilt), or 0 where it saves less than ``MINIMUM_SAVING``."""
    torch.set_num_threads(1)
    model = build_model(load_checkpoint(checkpoint), checkpoint)
    tile_sets = [torch.from_numpy(np.stack(benchmark_tiles(config))[:, None]).float() for config in configs]
    print("| level | config | " + " | ".join(f"{tilt:+.2f}" for tilt in TILTS) + " |")
    print("|---:|---|" + "---:|" * len(TILTS))
    chosen = []
    with torch.inference_mode():
        for level in levels:
            per_config = [rate_changes(model, tiles, level) for tiles in tile_sets]
            for config, changes in zip(configs, per_config):
                cells = " | ".join("outside" if change is None else f"{change:+.2f} %" for change in changes.values())
                print(f"| {level} | {config.name} | {cells} |")
            means = {tilt: np.mean([changes[tilt] for changes in per_config]) for tilt in TILTS
                     if all(changes[tilt] is not None for changes in per_config)}
            best = min(means, key=lambda tilt: (round(means[tilt], 2), abs(tilt)), default=0.0)
            chosen.append(best if means.get(best, 0.0) <= -MINIMUM_SAVING else 0.0)
    print("chosen tilts (levels " + ",".join(map(str, levels)) + "): " + ",".join(f"{tilt:g}" for tilt in chosen))


def apply(checkpoint: Path, tilts: list[float], output: Path) -> None:
    """Write ``checkpoint`` with each level's gains tilted, its format kept, the tilts in its training record."""
    loaded = load_checkpoint(checkpoint)
    state = dict(loaded.state_dict)
    if len(tilts) != len(state["log_gains"]):
        raise SystemExit(f"--apply: {len(tilts)} tilts for a model of {len(state['log_gains'])} levels")
    shift = torch.tensor(tilts)[:, None] * tilt_directions(state["log_gains"])
    state["log_gains"], state["log_inverse_gains"] = state["log_gains"] + shift, state["log_inverse_gains"] - shift
    training = {**loaded.training, "gain_tilts": {"tilts": list(tilts), "from": checkpoint.name}}
    save_checkpoint(dataclasses.replace(loaded, state_dict=state, training=training), output)
    print(f"{output}: gains tilted by {','.join(f'{tilt:g}' for tilt in tilts)} ({loaded.weight_format})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--config", type=Path, action="append", default=[])
    parser.add_argument("--qualities", help="the levels to measure (default: all)")
    parser.add_argument("--apply", help="comma-separated tilts, one per level, to write into --output")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.apply:
        if args.output is None:
            parser.error("--apply needs --output")
        apply(args.checkpoint, [float(value) for value in args.apply.split(",")], args.output)
        return
    if not args.config:
        parser.error("give --config (tiles to measure on) or --apply")
    levels = ([int(value) for value in args.qualities.split(",")] if args.qualities
              else list(range(build_model(load_checkpoint(args.checkpoint), args.checkpoint).spec.rate_levels)))
    measure(args.checkpoint, args.config, levels)


if __name__ == "__main__":
    main()
