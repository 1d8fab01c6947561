"""Entropy-coded autoencoder throughput: the harness path beside the network alone, and where the time goes.

For each checkpoint, on the tiles of a config cut into batches:

- the **network alone** (the transforms on tensors already on the device:
  encoder and hyper-encoder for encoding, decoder for decoding) beside the
  **harness path** exactly as the harness calls it (the codec's
  ``encode_batch`` / ``decode_batch``: numpy tiles in, bytes out, and back),
  taking turns within each repeat after a warm-up, as slowest/median/fastest
  MPix/s over the repeats, with ``ratio`` = harness median / network median;
- four steps timed apart (medians): the analysis networks on the device
  including the copies to the host; entropy encoding (for the hyperprior and
  checkerboard this includes the fixed-point networks that pick each
  element's mean and table); entropy decoding (idem); the decoder network;
- the range coding alone, with every element's table already known:
  encoding and decoding on one CPU core, the part of the entropy steps that
  a GPU does not speed up (on a GPU it bounds the entropy-coded codecs'
  speed per CPU core); with ``--range-coding-processes N``, also spread over
  N worker processes as the codec then does it;
- with ``--range-coding-processes N`` and/or ``--overlap-sub-batches K``, the
  harness path of the codec so configured beside the others: ``rc×N``
  (range coding in N worker processes), ``ov×K`` (each batch cut into K
  overlapped sub-batches), and both together when both are given.

Trained checkpoints are used, since the coding time depends on the symbols'
statistics. The rate columns give real bpp (bytes of the streams) beside the
prior's estimate. CUDA is synchronised around every timed call.

    .venv/bin/python benchmarks/entropy_coding_throughput.py [--device cpu|cuda] [--config benchmarks.yaml | --tiles T.npy]
        [--batch-size N] [--repeats 3] [--qualities 0,4,8] [--precision fp32|bf16|fp16|auto]
        [--quantizer scalar|trellis] [--range-coding-processes N] [--overlap-sub-batches K] [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import torch
from autoencoder_throughput import interleaved, run_header
from benchmark_tiles import benchmark_tiles
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, load_checkpoint
from harness_codecs._autoencoder.runtime.entropy_coder import Analysis, EntropyLatentCoder
from harness_codecs._autoencoder.runtime.fixed_length_coder import autocast, model_inputs
from harness_codecs._autoencoder.model.autoencoder import ModelSpec
from harness_codecs._autoencoder.runtime.options import NETWORK_THREADS, PREFERRED_BATCH_SIZES
from harness_codecs._autoencoder.entropy_coding.range_coding import PooledRangeCoding, RangeCoding
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs.autoencoder_entropy import (
    CheckerboardAutoencoder,
    EntropyCodedAutoencoder,
    FactorizedAutoencoder,
    HyperpriorAutoencoder,
)

from harness.environment import load_average
from harness.timing import synchronizer_for, time_call, torch_threads

ROOT = Path(__file__).resolve().parents[1]
CODECS = {"factorized": FactorizedAutoencoder, "hyperprior": HyperpriorAutoencoder,
          "checkerboard": CheckerboardAutoencoder}


def _has_trellis_settings(checkpoint: Checkpoint) -> bool:
    return bool(checkpoint.entropy_tables) and EntropyTables.from_tensors(checkpoint.entropy_tables).trellis is not None


def variant_options(processes: int, sub_batches: int) -> dict[str, dict[str, int]]:
    """The configured variants timed beside the plain harness path, by column label: each option given alone,
    and both together."""
    alone = {}
    if processes:
        alone[f"rc×{processes}"] = {"range_coding_processes": processes}
    if sub_batches > 1:
        alone[f"ov×{sub_batches}"] = {"overlap_sub_batches": sub_batches}
    if len(alone) == 2:
        return alone | {" ".join(alone): {key: value for options in alone.values() for key, value in options.items()}}
    return alone


def measure(path: Path, spec: ModelSpec, tiles: list[np.ndarray], device: str, batch_size: int, repeats: int,
            qualities: list[float], variants: dict[str, dict[str, int]], options: dict[str, str]) -> list[str]:
    """One line per quality of a variable-rate checkpoint, one line for a single-rate one; ``options``: the codecs'
    precision, and their quantizer where one is given."""
    levels = spec.rate_levels
    return [measure_point(path, CODECS[spec.entropy], tiles, device, batch_size, repeats, quality, variants,
                          options)
            for quality in ([quality for quality in qualities if quality <= levels - 1] if levels else [None])]


def measure_point(path: Path, codec_class: type, tiles: list[np.ndarray], device: str, batch_size: int,
                  repeats: int, quality: float | None, variants: dict[str, dict[str, int]],
                  options: dict[str, str]) -> str:
    codec = codec_class(checkpoint=str(path), quality=quality, device=device, **options)
    configured = {label: codec_class(checkpoint=str(path), quality=quality, device=device, **options,
                                     **variant)
                  for label, variant in variants.items()}
    coder = codec.coder
    synchronize = synchronizer_for(device)
    batches = [tiles[start:start + batch_size] for start in range(0, len(tiles), batch_size)]
    shapes = [[tile.shape for tile in batch] for batch in batches]

    with torch_threads(codec.threads):  # the steps at the torch threads of the codec's own calls
        analysed = [time_call(lambda batch=batch: coder.analyse(batch), 1, repeats, synchronize)
                    for batch in batches]
        written = [time_call(lambda a=a: coder.write(a.result), 1, repeats, synchronize) for a in analysed]
        read = [time_call(lambda w=w, s=s: coder.read(w.result, s), 1, repeats, synchronize)
                for w, s in zip(written, shapes)]
        synthesized = [time_call(lambda r=r, s=s: coder.synthesize(r.result, s), 1, repeats, synchronize)
                       for r, s in zip(read, shapes)]

    megapixels = sum(tile.size for tile in tiles) / 1e6
    seconds = [sum(timed.seconds for timed in step) for step in (analysed, written, read, synthesized)]
    # The variants with workers share one pool (same checkpoint and process count).
    pools = {id(variant.coder.range_coding): variant.coder.range_coding for variant in configured.values()
             if isinstance(variant.coder.range_coding, PooledRangeCoding)}
    codings = [coder.range_coding, *pools.values()]
    range_coding = range_coding_alone(coder, codings, [timed.result for timed in analysed], megapixels, repeats)
    streams = [data for timed in written for data in timed.result]
    real = np.mean([8 * len(data) / tile.size for data, tile in zip(streams, tiles)])
    estimates = codec.estimated_bpp(tiles)  # None for a trellis-coded point
    estimated = np.nan if estimates is None else np.mean(estimates)
    side_by_side = network_and_harness(codec, configured, batches, [timed.result for timed in written], shapes, megapixels,
                                       repeats, synchronize)
    steps = " ".join(f"{megapixels / second:9.1f}" for second in seconds)
    steps += "".join(f" {speed:9.1f}" for speed in range_coding)
    name = path.name if quality is None else f"{path.name} q={quality:g}"
    return f"{name:48} {side_by_side} | {steps} | {real:7.4f} {estimated:7.4f} {real / estimated - 1:+7.2%}"


def range_coding_alone(coder: EntropyLatentCoder, codings: list[RangeCoding | PooledRangeCoding],
                       analysed: list[list[Analysis]], megapixels: float, repeats: int) -> list[float]:
    """Median MPix/s of range-coding all batches with each of ``codings``, then of range-decoding them, from their
    sections (values and tables, computed once beforehand); the codings take turns within each repeat."""
    batches = [group.sections for analyses in analysed for group in coder.sections(analyses)]
    words = [codings[0].encode(sections) for sections in batches]

    def decode(coding: RangeCoding | PooledRangeCoding) -> None:
        for sections, batch_words in zip(batches, words):
            decoders = coding.decoders(batch_words)
            for section in sections:
                decoders.read(section.coder, section.tables)
            decoders.close()

    calls = {}
    for index, coding in enumerate(codings):
        calls[f"encode {index}"] = lambda coding=coding: [coding.encode(sections) for sections in batches]
        calls[f"decode {index}"] = lambda coding=coding: decode(coding)
    speeds = interleaved(calls, megapixels, repeats, None)
    return [speeds[f"{direction} {index}"].median for index in range(len(codings)) for direction in ("encode", "decode")]


def network_and_harness(codec: EntropyCodedAutoencoder, configured: dict[str, EntropyCodedAutoencoder],
                        batches: list[list[np.ndarray]], streams: list[list[bytes]],
                        shapes: list[list[tuple[int, int]]], megapixels: float, repeats: int, synchronize) -> str:
    """The network alone and the harness path, encode and decode, over all batches, as table cells; and the
    harness path of each ``configured`` variant of the codec (labelled)."""
    coder = codec.coder
    qualities = [torch.tensor([coder.quality] * len(batch), device=coder.device) if coder.variable_rate else None
                 for batch in batches]
    inputs = [model_inputs(batch, coder.device) for batch in batches]
    with torch.inference_mode():
        latents = [analysis_network(coder, batch, quality) for batch, quality in zip(inputs, qualities)]
    latents = [latent.contiguous(memory_format=torch.channels_last) for latent in latents]

    def network_encode() -> object:  # with the torch threads the codec's own calls use
        with torch.inference_mode(), torch_threads(codec.threads):
            return [analysis_network(coder, batch, quality) for batch, quality in zip(inputs, qualities)]

    def network_decode() -> object:
        with torch.inference_mode(), torch_threads(codec.threads), autocast(coder.device, coder.precision):
            return [coder.model.decode(latent, quality) for latent, quality in zip(latents, qualities)]

    paths = {"harness": codec} | configured
    calls = {"network encode": network_encode, "network decode": network_decode}
    for label, variant in paths.items():
        calls |= {f"{label} encode": lambda variant=variant: [variant.encode_batch(batch) for batch in batches],
                  f"{label} decode": lambda variant=variant: harness_decode(variant, streams, shapes)}
    speeds = interleaved(calls, megapixels, repeats, synchronize)
    cells = []
    for direction in ("encode", "decode"):
        network = speeds[f"network {direction}"]
        cells.append(network.cell())
        for path in paths:
            harness = speeds[f"{path} {direction}"]
            cells.append(f"{harness.cell()} | {harness.median / network.median:5.2f}")
    return " | ".join(cells)


def harness_decode(codec: EntropyCodedAutoencoder, streams: list[list[bytes]],
                   shapes: list[list[tuple[int, int]]]) -> list[list[np.ndarray]]:
    return [codec.decode_batch(batch_streams, batch_shapes) for batch_streams, batch_shapes in zip(streams, shapes)]


def analysis_network(coder, inputs: torch.Tensor, quality: torch.Tensor | None) -> torch.Tensor:
    """The encoder, and the hyper-encoder where the prior has one, on a device batch; returns the latent."""
    with autocast(coder.device, coder.precision):
        latent = coder.model.encode(inputs, quality)
        coder.model.prior.side(latent)  # None, at no cost, for a prior without a side latent
    return latent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks.yaml")
    parser.add_argument("--tiles", type=Path, default=None,
                        help="tiles saved by benchmark_tiles.py, instead of reading the config's (GPU machines)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="tiles per encode_batch/decode_batch call (default: what the codecs ask for on the device)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="fp32", help="the codecs' precision option (fp32, bf16, fp16 on CUDA, auto)")
    parser.add_argument("--quantizer", default=None, choices=("scalar", "trellis"),
                        help="the checkerboard codec's quantizer option (default: the codec's own)")
    parser.add_argument("--qualities", default="0,4,8",
                        help="comma-separated qualities at which variable-rate checkpoints are measured")
    parser.add_argument("--range-coding-processes", type=int, default=0,
                        help="also time the codecs with this range_coding_processes option (default 0: not)")
    parser.add_argument("--overlap-sub-batches", type=int, default=1,
                        help="also time the codecs with this overlap_sub_batches option (default 1: not)")
    args = parser.parse_args()
    variants = variant_options(args.range_coding_processes, args.overlap_sub_batches)
    # Every shipped entropy-coded checkpoint; resume states and the intermediate training stages (both
    # git-ignored) are not shipped models.
    paths = args.checkpoints or [path for path in sorted((ROOT / "checkpoints").glob("autoencoder-*.pt"))
                                 if not path.name.endswith(".last.pt") and not fnmatch(path.name, "*-stage?.pt")]
    loaded = {path: load_checkpoint(path) for path in paths}
    # Unnamed checkpoints that the codecs cannot run as asked (no entropy coder, or no trellis settings for
    # ``--quantizer trellis``) are left out rather than refused.
    checkpoints = {path: checkpoint.spec for path, checkpoint in loaded.items()
                   if args.checkpoints or (checkpoint.spec.entropy in CODECS
                                           and (args.quantizer != "trellis"
                                                or _has_trellis_settings(checkpoint)))}
    batch_size = args.batch_size or PREFERRED_BATCH_SIZES[args.device]
    tiles = benchmark_tiles(args.config, args.tiles)
    print(run_header(torch.device(args.device)))
    print(f"{len(tiles)} tiles of {(args.tiles or args.config).name}; batch {batch_size}; {args.repeats} repeats; "
          f"precision {args.precision}; quantizer {args.quantizer or 'default'}; torch threads "
          f"{NETWORK_THREADS} in every timed call (the codecs' default); MPix/s as "
          "slowest median fastest repeat; ratio = harness median / network median; then the median MPix/s of "
          "the analysis, entropy encoding, entropy decoding and synthesis steps, and of the range encoding "
          "and decoding alone (one CPU core"
          + (f"; then over {args.range_coding_processes} processes)" if args.range_coding_processes else ")")
          + "; harness path also with " + (", ".join(f"{label}: {options}" for label, options in variants.items())
                                           or "no other options"))
    qualities = [float(value) for value in args.qualities.split(",")]

    def configured(direction: str) -> str:
        return "".join(f" | {label + ' ' + direction:^23} | {'ratio':>5}" for label in variants)

    print(f"{'checkpoint':48} {'network encode':^23} | {'harness encode':^23} | {'ratio':>5}{configured('encode')} | "
          f"{'network decode':^23} | {'harness decode':^23} | {'ratio':>5}{configured('decode')} | "
          f"{'analysis':>9} {'ent. enc':>9} {'ent. dec':>9} {'synthesis':>9} {'rc enc':>9} {'rc dec':>9} "
          + (f"{'rc×N enc':>9} {'rc×N dec':>9} " if args.range_coding_processes else "") + "| "
          f"{'bpp':>7} {'est. bpp':>7} {'gap':>7}")
    options = {"precision": args.precision} | ({"quantizer": args.quantizer} if args.quantizer else {})
    for path, spec in checkpoints.items():
        for line in measure(path, spec, tiles, args.device, batch_size, args.repeats, qualities, variants,
                            options):
            print(line, flush=True)
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
