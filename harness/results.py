"""What a run leaves behind: the columns of ``results.csv`` and every file of a run folder, declared once.

Each column is declared once, as a ``harness.columns.Column`` (name, type, unit, description, required), and its
name constant, the header, the text and the required columns are derived from the declarations. The run writes
through this module (``harness.results_file`` appends the rows), and the report, the HTML page, ``compare`` and the
visual comparison read through it, so a column or a file name has one owner. ``results.csv`` holds one row per
(codec, rate point, tile): its format version, the identity of the tile and the point, the rate, the metrics'
columns (declared by the metric plugins, described in the run's ``metrics.json``), the timing, and how the codec ran.

A run folder survives its run: it is copied, archived and reported again later (``harness report``), on a
machine without the codecs or the data. So everything a report needs beyond ``results.csv`` is saved beside
it: the config, the environment, the metric descriptions and the reference curves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from harness.columns import Column, Complexity, MetricColumn, column_names
from harness.errors import UserError

RESULTS_FORMAT_VERSION = 1
"""The format of ``results.csv``, in every row (``FORMAT_VERSION``) and in ``environment.json``. Raise it when a
column is renamed, dropped or changes meaning: ``--resume`` refuses to add rows of one format to a file of another."""

# The columns of results.csv, in the file's order; the metrics' columns (declared by the metric plugins, described in
# the run's metrics.json) go between the rate and the timing.
FORMAT_SPEC = (
    Column("format_version", int, description="``RESULTS_FORMAT_VERSION`` of the harness that wrote the row; the "
           "first column, so that a reader meets it first."),
)
(FORMAT_VERSION,) = column_names(FORMAT_SPEC)

TILE_SPEC = (
    Column("run", str, description="The config's name."),
    Column("dataset", str, description="The dataset plugin's kind."),
    Column("scene", str, description="The product or file the tile was cut from."),
    Column("tile_id", str, description="The tile, unique within the run."),
    Column("pol", str, description="Its polarisation.", required=True),
    Column("height", int, "pixel"),
    Column("width", int, "pixel"),
    Column("valid_pixels", int, "pixel", "The pixels that are not no-data."),
    Column("clipped_below", float, description="The share of the valid pixels below the dB range "
           "(``Tile.clipped_fractions``)."),
    Column("clipped_above", float, description="The share of the valid pixels above the dB range."),
)
RUN, DATASET, SCENE, TILE_ID, POL, HEIGHT, WIDTH, VALID_PIXELS, CLIPPED_BELOW, CLIPPED_ABOVE = column_names(TILE_SPEC)
CLIPPED_COLUMNS = (CLIPPED_BELOW, CLIPPED_ABOVE)

POINT_SPEC = (
    Column("codec", str, description="The codec plugin's name.", required=True),
    Column("point", str, description="The point's label, which resume and the report key on.", required=True),
    Column("options", str, description="The point's options as JSON (sorted keys; a ``match_bpp`` row's include "
           "the knob value its tile got)."),
    Column("lossless", bool, description="What the codec declares: exact on its samples."),
    Column("target_bpp", float, "bit/pixel", "The rate a ``match_bpp`` point asked for (empty for the others): the "
           "report tells matched points from native ones by it, never by reading the label."),
    Column("stream_version", int, description="``Codec.stream_version``: the version of the codec's own stream "
           "format; empty where the codec's library owns the format (its version is in ``environment.json``)."),
)
CODEC, POINT, OPTIONS, LOSSLESS, TARGET_BPP, STREAM_VERSION = column_names(POINT_SPEC)

RATE_SPEC = (
    Column("bytes", int, "byte", "The stream's length: all the decoder reads."),
    Column("bpp", float, "bit/pixel", "``8 * bytes / pixels``.", required=True),
    Column("estimated_bpp", float, "bit/pixel", "The codec's own model of its rate, when it has one."),
    Column("compression_ratio", float, description="Against 16-bit samples."),
)
BYTES, BPP, ESTIMATED_BPP, COMPRESSION_RATIO = column_names(RATE_SPEC)

TIMING_SPEC = (
    Column("encode_s", float, "s", "The median of the timed encodes, the tile's share of its batch's."),
    Column("decode_s", float, "s", "The median of the timed decodes, the tile's share of its batch's."),
    Column("encode_mpix_s", float, "MPix/s", required=True),
    Column("decode_mpix_s", float, "MPix/s", required=True),
    Column("encode_spread", float, description="``Timed.spread`` of the encode: (slowest − fastest) / median of "
           "the repeats."),
    Column("decode_spread", float, description="``Timed.spread`` of the decode."),
)
"""The only columns that differ between two runs of the same config."""
ENCODE_S, DECODE_S, ENCODE_MPIX_S, DECODE_MPIX_S, ENCODE_SPREAD, DECODE_SPREAD = column_names(TIMING_SPEC)
SPREAD_COLUMNS = (ENCODE_SPREAD, DECODE_SPREAD)
SPEED_COLUMNS = (ENCODE_MPIX_S, DECODE_MPIX_S)
TIMING_COLUMNS = column_names(TIMING_SPEC)

COMPLEXITY_SPEC = tuple(
    Column(field.name, float, field.metadata["unit"], "What the codec's ``complexity()`` counts; empty for a codec "
           "that counts none. Unlike speed, it does not depend on the machine.")
    for field in fields(Complexity)
)
COMPLEXITY_COLUMNS = column_names(COMPLEXITY_SPEC)
ENCODE_MACS_PER_PIXEL, DECODE_MACS_PER_PIXEL, PARAMETERS = COMPLEXITY_COLUMNS

EXECUTION_SPEC = (
    Column("device", str, description="Where the codec ran (``Codec.device``)."),
    Column("precision", str, description="Its arithmetic, where it chooses one (``Codec.precision``)."),
    Column("threads", int, description="Its library's threads, ``Codec.threads``."),
    Column("batch_size", int, description="The tiles it coded in one call."),
    Column("error", str, description="Empty on a good row, the message on an error row.", required=True),
)
DEVICE, PRECISION, THREADS, BATCH_SIZE, ERROR = column_names(EXECUTION_SPEC)

BEFORE_METRICS = (*FORMAT_SPEC, *TILE_SPEC, *POINT_SPEC, *RATE_SPEC)
AFTER_METRICS = (*TIMING_SPEC, *COMPLEXITY_SPEC, *EXECUTION_SPEC)
RESULTS_SPEC = (*BEFORE_METRICS, *AFTER_METRICS)
"""Every column of ``results.csv`` but the metrics'."""
TEXT_COLUMNS = column_names(column for column in RESULTS_SPEC if column.type is str)
NON_METRIC_COLUMNS = frozenset(column_names(RESULTS_SPEC))
REQUIRED_COLUMNS = column_names(column for column in RESULTS_SPEC if column.required)
NUMERIC_NA_STRINGS = ["", "nan", "NaN", "NA", "null"]
RD_PLOT_PREFIX = "rd_"
VISUAL_PREFIX = "visual_"


def results_columns(metric_columns: Sequence[str]) -> list[str]:
    """The header of ``results.csv`` for a run whose metrics write ``metric_columns``."""
    return [*column_names(BEFORE_METRICS), *metric_columns, *column_names(AFTER_METRICS)]


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
    def bd_rate_by_scene(self) -> Path:
        return self.path / "bd_rate_by_scene.csv"

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
