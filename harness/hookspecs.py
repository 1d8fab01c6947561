"""The whole extension surface of the harness, in one file.

A plugin is any module or object with functions marked ``@harness.hookimpl``
whose names match the specifications below. Each hook returns a list; the
plugin manager gathers them, records where each came from and rejects
duplicate names.
"""

from __future__ import annotations

import pluggy

from collections.abc import Callable, Iterable
from pathlib import Path

from harness.api import PROJECT_NAME, Codec, Metric, ReportInput, Trainer

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def harness_codecs() -> list[type[Codec]]:
    """Return codec classes (subclasses of ``harness.Codec``).

    Each class needs a unique ``name``: the YAML refers to it and the result
    tables are keyed by it. A class is instantiated once per rate point with
    that point's options as keyword arguments. A class that declares its
    ``rate_knob`` (a ``harness.RateKnob``) also accepts ``match_bpp`` points:
    the harness then builds it at the knob values its per-tile search tries.
    A class that declares its ``options`` (``harness.CodecOption``s) has each
    point's option names, types and ranges checked against them before it is
    built; one that declares none checks its options itself.
    """


@hookspec
def harness_datasets() -> list[type]:
    """Return dataset classes.

    A dataset class has a unique ``name`` (the YAML ``dataset.kind``), is
    constructed as ``cls(settings: harness.DatasetSettings, **options)``
    where ``options`` are the remaining keys of the YAML ``dataset`` section,
    and yields ``harness.Tile`` objects from ``tiles()``, deterministically for
    a given seed. It raises ``harness.UserError`` for bad options or files.
    A tile that also carries ``original_db`` (its dB before clipping) gets
    its clipped shares recorded and its dB metrics scored against it; one
    that carries ``labels`` (ground truth on its pixels) gets the metrics
    against ground truth.
    """


@hookspec
def harness_metrics() -> list[Metric]:
    """Return metrics: functions declared with ``@harness.metric(MetricColumn(...), ...)``.

    A metric is registered under its function's name. It takes a
    ``harness.MetricInput`` and returns a mapping of result-column name to
    value, evaluated on the valid mask only: exactly the columns it declares
    (checked on the first tile of every run), none declared by another metric.
    It returns NaN for a value it cannot compute on that tile (and documents
    when that happens) rather than raising. Each ``harness.MetricColumn`` says
    how people read the column (label, unit, decimals), which way is better,
    and whether the report draws its RD figure, computes its BD-rate rows and
    prints it after a run; the run saves these descriptions in its folder.
    """


@hookspec
def harness_trainers() -> list[type[Trainer]]:
    """Return trainer classes (subclasses of ``harness.Trainer``).

    ``python -m harness train NAME`` dispatches to the trainer whose ``name``
    is NAME; a codec plugin that learns from data ships its trainer this way,
    so training needs no change to the core.
    """


@hookspec
def harness_report_writers() -> list[Callable[[ReportInput], Iterable[Path]]]:
    """Return report writers: functions of a ``harness.ReportInput`` that write files into its run folder.

    A writer is registered under its function's name and returns the paths it
    wrote. Every run's report, and every ``harness report``, calls each writer
    once with the same input (the results, their summaries, the BD-rate table,
    the metric descriptions); the built-in tables, figures, CompressAI curves
    and visual comparisons are writers too. A writer that raises does not stop
    the others; the failure is reported after them. Write only into
    ``ReportInput.folder.path`` and under names no other writer uses.
    """
