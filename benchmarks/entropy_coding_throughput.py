"""Entropy-coded autoencoder throughput: networks and range coding timed apart, on the default tiles.

For each checkpoint, four steps are timed separately (median of repeats
after a warm-up, CUDA synchronised around every timed call): the analysis
networks (encoder, and hyper-encoder) on the device; entropy encoding on the
CPU (for the hyperprior this includes its float64 CPU hyper-decoder pass,
which picks the probability tables); entropy decoding (idem); the decoder
network on the device. Trained checkpoints are used, since the coding time
depends on the symbols' statistics. The rate columns give real bpp (bytes
of the streams) beside the prior's estimate.

    .venv/bin/python benchmarks/entropy_coding_throughput.py [--device cpu|cuda] [--config benchmarks.yaml]
        [--batch-size 8] [--repeats 3] [--qualities 0,4,8] [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import torch
from autoencoder_throughput import device_name
from harness_codecs._autoencoder.checkpoint import load_checkpoint
from harness_codecs._autoencoder.model import ModelSpec
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder, FactorizedAutoencoder, HyperpriorAutoencoder

from harness.config import load_config
from harness.runner import load_tiles
from harness.timing import synchronizer_for, time_call

ROOT = Path(__file__).resolve().parents[1]
CODECS = {"factorized": FactorizedAutoencoder, "hyperprior": HyperpriorAutoencoder,
          "checkerboard": CheckerboardAutoencoder}


def measure(path: Path, spec: ModelSpec, tiles: list[np.ndarray], device: str, batch_size: int, repeats: int,
            qualities: list[float]) -> list[str]:
    """One line per quality of a variable-rate checkpoint, one line for a single-rate one."""
    levels = spec.rate_levels
    return [measure_point(path, CODECS[spec.entropy], tiles, device, batch_size, repeats, quality)
            for quality in ([quality for quality in qualities if quality <= levels - 1] if levels else [None])]


def measure_point(path: Path, codec_class: type, tiles: list[np.ndarray], device: str, batch_size: int,
                  repeats: int, quality: float | None) -> str:
    codec = codec_class(checkpoint=str(path), quality=quality, device=device)
    coder = codec.coder
    synchronize = synchronizer_for(device)
    batches = [tiles[start:start + batch_size] for start in range(0, len(tiles), batch_size)]
    shapes = [[tile.shape for tile in batch] for batch in batches]

    analysed = [time_call(lambda batch=batch: coder.analyse(batch), 1, repeats, synchronize) for batch in batches]
    written = [time_call(lambda a=a: [coder.write(one) for one in a.result], 1, repeats) for a in analysed]
    read = [time_call(lambda w=w, s=s: [coder.read(data, shape) for data, shape in zip(w.result, s)], 1, repeats)
            for w, s in zip(written, shapes)]
    synthesized = [time_call(lambda r=r, s=s: coder.synthesize(r.result, s), 1, repeats, synchronize)
                   for r, s in zip(read, shapes)]

    megapixels = sum(tile.size for tile in tiles) / 1e6
    seconds = [sum(timed.seconds for timed in step) for step in (analysed, written, read, synthesized)]
    streams = [data for timed in written for data in timed.result]
    real = np.mean([8 * len(data) / tile.size for data, tile in zip(streams, tiles)])
    estimated = np.mean(codec.estimated_bpp(tiles))
    speeds = " ".join(f"{megapixels / second:10.1f}" for second in seconds)
    name = path.name if quality is None else f"{path.name} q={quality:g}"
    return f"{name:48} {speeds} {real:8.4f} {estimated:8.4f} {real / estimated - 1:+7.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--qualities", default="0,4,8",
                        help="comma-separated qualities at which variable-rate checkpoints are measured")
    args = parser.parse_args()
    # Every shipped entropy-coded checkpoint; resume states and the intermediate training stages (both
    # git-ignored) are not shipped models.
    paths = args.checkpoints or [path for path in sorted((ROOT / "checkpoints").glob("autoencoder-*.pt"))
                                 if not path.name.endswith(".last.pt") and not fnmatch(path.name, "*-stage?.pt")]
    specs = {path: load_checkpoint(path).spec for path in paths}
    checkpoints = {path: spec for path, spec in specs.items() if args.checkpoints or spec.entropy in CODECS}
    config, registry = load_config(args.config)
    tiles = [tile.data for tile in load_tiles(config, registry)]
    print(f"device: {device_name(torch.device(args.device))}; torch {torch.__version__}; "
          f"{len(tiles)} tiles of {args.config.name}; batch {args.batch_size}")
    qualities = [float(value) for value in args.qualities.split(",")]
    print(f"{'checkpoint':48} {'analysis':>10} {'ent. enc':>10} {'ent. dec':>10} {'synthesis':>10} "
          f"{'bpp':>8} {'est. bpp':>8} {'gap':>7}   (MPix/s)")
    for path, spec in checkpoints.items():
        for line in measure(path, spec, tiles, args.device, args.batch_size, args.repeats, qualities):
            print(line, flush=True)


if __name__ == "__main__":
    main()
