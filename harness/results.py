"""What a run leaves behind: the columns of ``results.csv`` and every file of a run folder, declared once.

The run writes through this module, and the report, the HTML page, ``compare`` and the visual comparison
read through it, so a column or a file name has one owner. ``results.csv`` holds one row per (codec, rate
point, tile): the identity of the tile and the point, the rate, the metrics' columns (declared by the metric
plugins, described in the run's ``metrics.json``), the timing, and how the codec ran.

A run folder survives its run: it is copied, archived and reported again later (``harness report``), on a
machine without the codecs or the data. So everything a report needs beyond ``results.csv`` is saved beside
it: the config, the environment, the metric descriptions and the reference curves.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from harness.columns import Complexity, MetricColumn
from harness.errors import UserError

# Which tile a row is about
RUN = "run"
"""The config's name."""
DATASET = "dataset"
SCENE = "scene"
TILE_ID = "tile_id"
POL = "pol"
HEIGHT = "height"
WIDTH = "width"
VALID_PIXELS = "valid_pixels"
CLIPPED_BELOW = "clipped_below"
CLIPPED_ABOVE = "clipped_above"
CLIPPED_COLUMNS = (CLIPPED_BELOW, CLIPPED_ABOVE)
"""The fractions of the tile's valid pixels clipped at each end of the dB range: ``Tile.clipped_fractions``."""
TILE_COLUMNS = (RUN, DATASET, SCENE, TILE_ID, POL, HEIGHT, WIDTH, VALID_PIXELS, *CLIPPED_COLUMNS)

# Which rate point coded it
CODEC = "codec"
POINT = "point"
"""The point's label, which resume and the report key on."""
OPTIONS = "options"
"""The point's options as JSON (sorted keys; a ``match_bpp`` row's include the knob value its tile got)."""
LOSSLESS = "lossless"
"""What the codec declares."""
TARGET_BPP = "target_bpp"
"""The rate a ``match_bpp`` point asked for (empty for the others): the report tells matched points from native
ones by it, never by reading the label."""
POINT_COLUMNS = (CODEC, POINT, OPTIONS, LOSSLESS, TARGET_BPP)

# The rate
BYTES = "bytes"
BPP = "bpp"
"""``8 * bytes / pixels``."""
ESTIMATED_BPP = "estimated_bpp"
"""The codec's own model of its rate, when it has one."""
COMPRESSION_RATIO = "compression_ratio"
RATE_COLUMNS = (BYTES, BPP, ESTIMATED_BPP, COMPRESSION_RATIO)

# The timing: the only columns that differ between two runs of the same config
ENCODE_S = "encode_s"
DECODE_S = "decode_s"
ENCODE_MPIX_S = "encode_mpix_s"
DECODE_MPIX_S = "decode_mpix_s"
ENCODE_SPREAD = "encode_spread"
DECODE_SPREAD = "decode_spread"
SPREAD_COLUMNS = (ENCODE_SPREAD, DECODE_SPREAD)
"""``Timed.spread`` of the encode and of the decode: (slowest − fastest) / median of the repeats."""
SPEED_COLUMNS = (ENCODE_MPIX_S, DECODE_MPIX_S)
TIMING_COLUMNS = (ENCODE_S, DECODE_S, *SPEED_COLUMNS, *SPREAD_COLUMNS)

COMPLEXITY_COLUMNS = tuple(field.name for field in fields(Complexity))
"""What the codec's ``complexity()`` counts; empty for a codec that counts none. Unlike speed, it does not depend
on the machine."""
ENCODE_MACS_PER_PIXEL, DECODE_MACS_PER_PIXEL, PARAMETERS = COMPLEXITY_COLUMNS

# How the codec ran
DEVICE = "device"
PRECISION = "precision"
THREADS = "threads"
"""Its library's threads, ``Codec.threads``."""
BATCH_SIZE = "batch_size"
ERROR = "error"
"""Empty on a good row, the message on an error row."""
EXECUTION_COLUMNS = (DEVICE, PRECISION, THREADS, BATCH_SIZE, ERROR)

TEXT_COLUMNS = (RUN, DATASET, SCENE, TILE_ID, POL, CODEC, POINT, OPTIONS, DEVICE, PRECISION, ERROR)
"""Read as text whatever they hold: a tile id ``"001"`` or an error message must never become a number."""
NON_METRIC_COLUMNS = frozenset((*TILE_COLUMNS, *POINT_COLUMNS, *RATE_COLUMNS, *TIMING_COLUMNS, *COMPLEXITY_COLUMNS,
                                *EXECUTION_COLUMNS))
REQUIRED_COLUMNS = (CODEC, POINT, POL, BPP, *SPEED_COLUMNS, ERROR)
"""What a report cannot do without; results from older versions may lack the others."""
NUMERIC_NA_STRINGS = ["", "nan", "NaN", "NA", "null"]
RD_PLOT_PREFIX = "rd_"
VISUAL_PREFIX = "visual_"


def results_columns(metric_columns: Sequence[str]) -> list[str]:
    """The header of ``results.csv`` for a run whose metrics write ``metric_columns``."""
    return [*TILE_COLUMNS, *POINT_COLUMNS, *RATE_COLUMNS, *metric_columns, *TIMING_COLUMNS, *COMPLEXITY_COLUMNS,
            *EXECUTION_COLUMNS]


@dataclass(frozen=True)
class RunFolder:
    """A run folder and the name of every file in it: the one place that knows them."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # written by the run
    @property
    def results(self) -> Path:
        return self.path / "results.csv"

    @property
    def previous_results(self) -> Path:
        """Where ``--overwrite`` moves the old results until the new run has finished."""
        return self.path / "results.previous.csv"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    @property
    def config(self) -> Path:
        """The config exactly as the user wrote it: resume compares against it, the report shows it."""
        return self.path / "config.yaml"

    @property
    def resolved_config(self) -> Path:
        return self.path / "config.resolved.yaml"

    @property
    def environment(self) -> Path:
        return self.path / "environment.json"

    @property
    def manifest(self) -> Path:
        return self.path / "tiles.csv"

    @property
    def metrics(self) -> Path:
        """The metric plugins' descriptions of their columns, so a copied folder reports without them."""
        return self.path / "metrics.json"

    @property
    def reconstructions(self) -> Path:
        return self.path / "reconstructions"

    # written by the report
    @property
    def summary(self) -> Path:
        return self.path / "summary.csv"

    @property
    def summary_by_pol(self) -> Path:
        return self.path / "summary_by_pol.csv"

    @property
    def summary_by_scene(self) -> Path:
        return self.path / "summary_by_scene.csv"

    @property
    def summary_markdown(self) -> Path:
        return self.path / "summary.md"

    @property
    def bd_rate(self) -> Path:
        return self.path / "bd_rate.csv"

    def rd_plot(self, metric: str) -> Path:
        return self.path / f"{RD_PLOT_PREFIX}{metric}.png"

    def rd_plots(self) -> list[Path]:
        return sorted(self.path.glob(f"{RD_PLOT_PREFIX}*.png"))

    @staticmethod
    def rd_plot_metric(path: Path) -> str:
        """The metric column an RD figure plots, from its file name."""
        return path.stem.removeprefix(RD_PLOT_PREFIX)

    @property
    def timing_plot(self) -> Path:
        return self.path / "timing.png"

    def visual(self, tile_slug: str) -> Path:
        return self.path / f"{VISUAL_PREFIX}{tile_slug}.png"

    def visuals(self) -> list[Path]:
        return sorted(self.path.glob(f"{VISUAL_PREFIX}*.png"))

    @staticmethod
    def visual_tile(path: Path) -> str:
        """The (file-name-safe) tile id a visual comparison shows, from its file name."""
        return path.stem.removeprefix(VISUAL_PREFIX)

    @property
    def compressai(self) -> Path:
        """One CompressAI-format JSON curve per codec."""
        return self.path / "compressai"

    @property
    def references(self) -> Path:
        """Copies of the reference curves the config named, so the report rebuilds where their paths do not exist."""
        return self.path / "references"

    def reference_curves(self) -> list[Path]:
        return sorted(self.references.glob("*.json"))

    @property
    def html(self) -> Path:
        return self.path / "report.html"

    # readers and writers
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Only one run at a time may write into a folder: two would interleave rows and delete each other's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"{self.path}: another run is writing into this folder; wait for it to finish, "
                                "or pass --output for another folder") from None
            yield

    def read_results(self) -> pd.DataFrame:
        """The results, checked for the columns a report needs; problems are one line."""
        if not self.results.is_file():
            raise UserError(f"{self.path}: no {self.results.name}; pass a run folder written by `python -m harness run`")
        try:
            results = load_results(self.results)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.results}: not a readable CSV file: {str(exc).splitlines()[0]}") from None
        missing = [column for column in REQUIRED_COLUMNS if column not in results.columns]
        if missing:
            raise UserError(f"{self.results}: missing required column {missing[0]!r} "
                            f"(needs {', '.join(REQUIRED_COLUMNS)})")
        return results

    def write_environment(self, environment: dict[str, Any]) -> None:
        self.environment.write_text(json.dumps(environment, indent=2), encoding="utf-8")

    def read_environment(self) -> dict[str, Any] | None:
        """The recorded environment; None when the folder has none or it is not JSON (a report still builds)."""
        try:
            return json.loads(self.environment.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_metric_columns(self, columns: Sequence[MetricColumn]) -> None:
        self.metrics.write_text(json.dumps([asdict(column) for column in columns], indent=1), encoding="utf-8")

    def read_metric_columns(self) -> tuple[MetricColumn, ...] | None:
        """The run's metric descriptions; None for a run from before they were saved."""
        if not self.metrics.is_file():
            return None
        try:
            return tuple(MetricColumn(**entry) for entry in json.loads(self.metrics.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise UserError(f"{self.metrics}: not a list of metric column descriptions ({exc}); "
                            "delete it to describe the columns from the installed metric plugins") from None


def load_results(path: Path) -> pd.DataFrame:
    """Read a results-like CSV so that text stays text and numbers stay numbers.

    Only numeric columns treat ``nan``/empty as missing: an empty ``error``
    means a good row and must read as ``""``, and an error message or tile id
    must never be turned into NaN or a number.
    """
    header = pd.read_csv(path, nrows=0).columns
    text_columns = [column for column in header if column in TEXT_COLUMNS]
    na_values = {column: NUMERIC_NA_STRINGS for column in header if column not in TEXT_COLUMNS}
    return pd.read_csv(path, dtype={column: str for column in text_columns}, keep_default_na=False,
                       na_values=na_values)


class ResultsWriter:
    """Appends rows and flushes each one, so the file on disk is always complete up to the last row."""

    def __init__(self, path: Path, columns: list[str]):
        existing = _existing_header(path)
        if existing is not None and existing != columns:
            raise UserError(f"{path}: its columns differ from this run's ({', '.join(sorted(set(existing) ^ set(columns)))}); "
                            "resume with the same plugins, or --overwrite")
        self.path, self.columns, self.rows = path, columns, 0
        self.handle = path.open("a", newline="", encoding="utf-8")
        if existing is None:
            csv.DictWriter(self.handle, fieldnames=columns).writeheader()
            self.handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        self.rows += 1
        try:
            line = io.StringIO()
            csv.DictWriter(line, fieldnames=self.columns).writerow(row)
            text = line.getvalue()
            if _at_kill_point(f"row:{self.rows}"):
                _die_after(self.handle, text[: len(text) // 2])  # killed in the middle of the row
            self.handle.write(text)
            self.handle.flush()
        except OSError as exc:  # a full disk: the rows written so far stay, and resume drops the one cut short
            raise UserError(f"{self.path}: cannot write a result row ({exc.strerror or exc}); make room, then "
                            "rerun with --resume") from exc

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.handle.close()


def drop_error_rows(results_path: Path) -> set[tuple[str, str, str]]:
    """Keep the good rows of an earlier run and forget its error rows, so resuming retries them.

    A row cut short (the process killed, or the disk full, in the middle of writing it) is dropped too,
    and measured again: only lines that end in a newline and hold every column count as finished. A
    header cut short leaves no row at all. The kept rows go to a temporary file that then replaces the
    results in one step: rewriting the file in place lost most finished rows when the process was
    killed during the rewrite. Returns the finished (codec, point, tile id) keys.
    """
    text = results_path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1], newline=""))
    fieldnames = reader.fieldnames or []
    if not fieldnames:
        results_path.unlink()
        return set()
    good = [row for row in reader if not row.get(ERROR) and None not in row and None not in row.values()]
    rewritten = results_path.with_name(results_path.name + ".tmp")
    with rewritten.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        if _at_kill_point("rewrite"):
            writer.writerows(good[: len(good) // 2])
            _die_after(handle, "")
        writer.writerows(good)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(rewritten, results_path)
    return {(row[CODEC], row[POINT], row[TILE_ID]) for row in good}


KILL_POINT_VARIABLE = "HARNESS_TEST_KILL_AT"
"""For the crash tests only: ``row:N`` kills the process (SIGKILL) halfway through writing result row N,
``rewrite`` halfway through the rewrite that drops error rows on resume; so that "no finished row is ever
lost" is tested with real kills at the worst moments, not argued."""


def _at_kill_point(name: str) -> bool:
    return os.environ.get(KILL_POINT_VARIABLE) == name


def _die_after(handle: Any, partial: str) -> None:
    handle.write(partial)
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _existing_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), None)


@dataclass(frozen=True)
class MetricDescriptions:
    """The descriptions of a run's metric columns, with a plain one for a column nobody described (a results
    file from elsewhere, or a plugin from before descriptions): shown under its own name, never plotted."""

    columns: tuple[MetricColumn, ...] = ()

    def of(self, name: str) -> MetricColumn:
        return next((column for column in self.columns if column.name == name), MetricColumn(name, name))

    def rd_plots(self) -> list[MetricColumn]:
        return [column for column in self.columns if column.rd_plot]

    def bd_rate(self) -> list[MetricColumn]:
        return [column for column in self.columns if column.bd_rate]

    def headline(self) -> list[MetricColumn]:
        return [column for column in self.columns if column.headline]
