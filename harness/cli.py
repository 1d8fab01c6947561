"""Command line: ``run`` a benchmark, ``train`` a learned codec, ``list`` the plugins, ``report`` and ``compare`` runs.

User mistakes (``UserError``) print one line and exit with status 2; a
traceback is shown only with ``--debug``, because a traceback for a typo in a
YAML file hides the one line the user needs to read.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from harness.codec_options import declaration_lines
from harness.compare import compare_runs
from harness.config import load_config
from harness.errors import UserError
from harness.manifest import manifest_differences
from harness.plugins import Registry, build_registry, not_loaded_message
from harness.reporting import build_report
from harness.reporting.settings import run_metric_descriptions, settings_from_run_dir
from harness.results import RunFolder
from harness.run import RunOptions, run_benchmark

USER_ERROR_EXIT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_command(commands)
    _add_train_command(commands)
    _add_other_commands(commands)
    return parser


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a benchmark config and write its report",
                              description="Run every codec rate point on every tile of the config's dataset, "
                                          "append one row per tile to results.csv, then write tables and plots.")
    run.add_argument("config", type=Path, help="benchmark YAML file, e.g. benchmarks.yaml")
    run.add_argument("--output", type=Path, help="run folder (default: reports/<config name>)")
    run.add_argument("--manifest", type=Path, help="tiles.csv of an earlier run: use exactly its tiles, "
                                                   "failing if any is missing or its pixels changed")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run, skipping finished rows")
    run.add_argument("--overwrite", action="store_true", help="discard an earlier run's results in the folder")
    run.add_argument("--codecs", help="comma-separated subset of the configured codecs to run")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the config's device")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    cluster = run.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=_positive_integer, metavar="N",
                         help="measure on a local Dask cluster of N single-threaded worker processes")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="measure on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (shared files needed)")
    run.add_argument("--visual-tiles", type=_non_negative_integer, default=2, metavar="N",
                     help="keep the reconstructions of the first N tiles for the visual comparison (default 2)")



def _add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a learned codec with its plugin's trainer",
                                description="Dispatch to the trainer plugin named NAME; "
                                            "`python -m harness train NAME --help` lists its options.",
                                add_help=False)
    train.add_argument("-h", "--help", action="help", help="show this help (NAME --help: the trainer's options)")
    train.add_argument("trainer", metavar="NAME", help="trainer name (see `python -m harness list`)")
    trainer_options = train.add_argument("options", nargs=argparse.REMAINDER, metavar="...",
                                         help="the trainer's own options")
    trainer_options.required = False  # argparse counts a REMAINDER as required; a trainer may need no option


def _add_other_commands(commands: argparse._SubParsersAction) -> None:
    """``list``, ``report`` and ``compare``: commands that read plugins or run folders and run no codec."""

    plugins = commands.add_parser("list", help="list registered codecs, datasets, metrics and trainers with their origin",
                                  description="List every registered plugin and where it came from.")
    plugins.add_argument("--config", type=Path, help="also load the plugins: entries of this config")
    plugins.add_argument("-v", "--verbose", action="store_true",
                         help="also each codec's declared options and example point")

    report = commands.add_parser("report", help="rebuild a run's tables and figures from its results.csv",
                                 description="Rebuild summary tables, BD-rate table, CompressAI JSON files and "
                                             "figures of RUN_DIR from its results.csv, without running codecs.")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder, e.g. reports/default")
    report.add_argument("--log-rate", action="store_true", help="log-scale rate axis in the RD plots")

    compare = commands.add_parser("compare", help="differences (B - A) between two runs per codec and rate point",
                                  description="Per codec and rate point present in both runs, B - A of mean bpp, "
                                              "PSNR, MS-SSIM, ENL ratio and median encode/decode MPix/s.")
    compare.add_argument("run_a", type=Path, metavar="RUN_A", help="the run to compare against (before)")
    compare.add_argument("run_b", type=Path, metavar="RUN_B", help="the run compared (after)")
    compare.add_argument("--output", type=Path, metavar="FILE", help="also write the differences as CSV")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        for problem in str(exc).splitlines():  # a config with several mistakes gives one line for each
            print(f"error: {problem}", file=sys.stderr)
        return USER_ERROR_EXIT
    except OSError as exc:  # the machine, not the code: an unwritable or full output folder, a vanished file
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def _positive_integer(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers of at least 1, got {text!r}")
    return int(text)


def _non_negative_integer(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of tiles, 0 or more, got {text!r}")
    return int(text)


def run_command(args: argparse.Namespace) -> int:
    config, registry = load_config(args.config)
    codec_names = tuple(name.strip() for name in args.codecs.split(",") if name.strip()) if args.codecs else None
    run_dir = args.output or Path("reports") / config.name
    options = RunOptions(
        run_dir=run_dir,
        manifest=args.manifest,
        resume=args.resume,
        overwrite=args.overwrite,
        codec_names=codec_names,
        device=args.device,
        progress=not args.no_progress,
        visual_tiles=args.visual_tiles,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    outcome = run_benchmark(config, registry, options)
    print(outcome.report.summary_table)
    print(f"\n{outcome.rows_written} rows measured, {outcome.rows_skipped} resumed, {outcome.error_rows} errors")
    for warning in outcome.timing_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"report: {outcome.run_dir.resolve()}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    folder = RunFolder(args.run_dir)
    folder.read_results()  # a folder without readable results is one line, before any settings are read
    built = build_report(folder, settings_from_run_dir(folder.path, log_rate=args.log_rate), build_registry())
    print(built.summary_table)
    print(f"\nrebuilt {len(built.paths)} files in {folder.path.resolve()}")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    run_a, run_b = RunFolder(args.run_a), RunFolder(args.run_b)
    comparison = compare_runs(run_a.read_results(), run_b.read_results(), run_metric_descriptions(run_a).headline())
    print(f"B - A with A = {args.run_a}, B = {args.run_b}\n")
    different_tiles = manifest_differences(run_a.manifest, run_b.manifest)
    if different_tiles:
        print(f"warning: {different_tiles}\n")
    print(comparison.to_text())
    if args.output:
        comparison.table.to_csv(args.output, index=False)
        print(f"\nwritten: {args.output}")
    return 0


def train_command(args: argparse.Namespace) -> int:
    registry = build_registry()
    if args.trainer not in registry.trainers:
        raise UserError(f"train: {registry.unknown('trainer', args.trainer)}")
    trainer = registry.trainers[args.trainer].obj()
    parser = argparse.ArgumentParser(prog=f"python -m harness train {trainer.name}", description=trainer.description)
    trainer.add_arguments(parser)
    trainer.train(parser.parse_args(args.options))
    return 0


def list_command(args: argparse.Namespace) -> int:
    if args.config:
        _, registry = load_config(args.config)
    else:
        registry = build_registry()
    if registry.skipped:
        print(f"warning: built-in plugins {not_loaded_message(registry.skipped)}", file=sys.stderr)
    print(format_registry(registry, verbose=args.verbose))
    return 0


def format_registry(registry: Registry, verbose: bool = False) -> str:
    """Every plugin with its origin; ``verbose``: with each codec's declared options and example point too."""
    sections = (("codecs", registry.codecs), ("datasets", registry.datasets), ("metrics", registry.metrics),
                ("trainers", registry.trainers), ("report writers", registry.report_writers))
    lines = []
    for title, entries in sections:
        lines.append(f"{title}:")
        width = max((len(name) for name in entries), default=0)
        for name, entry in sorted(entries.items()):
            lines.append(f"  {name:<{width}}  {entry.origin}{_availability(entry.obj)}")
            if verbose and title == "codecs":
                lines.extend(f"      {line}" for line in declaration_lines(entry.obj))
    return "\n".join(lines)


def _availability(plugin: object) -> str:
    reason = getattr(plugin, "unavailable", None)
    return f"  [unavailable: {reason}]" if reason else ""


COMMANDS = {"run": run_command, "train": train_command, "list": list_command, "report": report_command,
            "compare": compare_command}
