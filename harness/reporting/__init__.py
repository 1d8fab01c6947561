"""A run's report: tables, figures, CompressAI curves, visual comparisons and the HTML page, from the run folder.

The outputs are written by report writers, plugins of the ``harness_report_writers`` hook: the built-in ones
(``tables``, ``figures``, ``compressai``, ``visual``) and any a third party adds. ``build_report`` is the one
chain used by ``run`` (through ``run_benchmark``), ``report`` and library callers; the HTML page comes last, as it
embeds what the writers drew.

Modules: ``summaries`` (pure pandas), ``tables`` and ``formatting`` (text), ``figures``, ``bdrate``,
``matched_rates``, ``compressai``, ``visual``, ``html``, ``settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from harness.api import ReportInput
from harness.errors import UserError
from harness.plugins import Registry
from harness.reporting.bdrate import bd_rate_tables
from harness.reporting.html import write_html_report
from harness.reporting.settings import ReportSettings, installed_metric_descriptions, run_metric_descriptions
from harness.reporting.summaries import normalized_columns, run_name, summarize, summarize_by_pol
from harness.reporting.tables import format_summary_table
from harness.results import RunFolder

ReportWriter = Callable[[ReportInput], Iterable[Path]]


@dataclass(frozen=True)
class BuiltReport:
    """What ``build_report`` wrote, and the short table the command line prints."""

    paths: tuple[Path, ...]
    summary_table: str


def build_report(folder: RunFolder, settings: ReportSettings, registry: Registry) -> BuiltReport:
    """(Re)write every report file of ``folder`` from its ``results.csv`` with the registry's report writers, then
    the HTML page, which embeds what they drew; a writer's failure is raised after both. Metric descriptions not
    given in ``settings`` come from the folder's ``metrics.json`` (or the installed plugins for an older run)."""
    if settings.metrics is None:
        settings = replace(settings, metrics=run_metric_descriptions(folder))
    report = report_input(folder.read_results(), folder, settings)
    paths, failures = run_writers(report, registry.report_writer_functions())
    page = write_html_report(folder.path)
    _raise_failures(failures)
    return BuiltReport((*paths, page), format_summary_table(report.summary, report.metrics))


def write_report(results: pd.DataFrame, run_dir: Path, settings: ReportSettings,
                 writers: Sequence[ReportWriter]) -> list[Path]:
    """Summarize ``results`` once and hand the same ``ReportInput`` to every writer in turn; returns what they
    wrote. A writer that fails does not stop the others; the failures are reported together at the end."""
    paths, failures = run_writers(report_input(results, RunFolder(run_dir), settings), writers)
    _raise_failures(failures)
    return paths


def run_writers(report: ReportInput, writers: Sequence[ReportWriter]) -> tuple[list[Path], list[str]]:
    """Every writer in turn on the same input: the paths they wrote, and a line per writer that failed."""
    written, failures = [], []
    for writer in writers:
        try:
            written.extend(writer(report))
        except Exception as exc:  # a third-party writer must not cost the user the other outputs
            failures.append(f"report writer {getattr(writer, '__name__', writer)!r} failed: {type(exc).__name__}: {exc}")
    return written, failures


def _raise_failures(failures: list[str]) -> None:
    if failures:
        raise UserError("; ".join(failures) + "; the other outputs were written")


def report_input(results: pd.DataFrame, folder: RunFolder, settings: ReportSettings) -> ReportInput:
    """The summaries every output draws on, computed once."""
    folder.path.mkdir(parents=True, exist_ok=True)
    metrics = settings.metrics if settings.metrics is not None else installed_metric_descriptions()
    results = normalized_columns(results)
    summary, summary_by_pol = summarize(results), summarize_by_pol(results)
    references = tuple(sorted(settings.references, key=lambda reference: reference.name))
    bd_rate = bd_rate_tables(summary, summary_by_pol, settings.anchors, metrics.bd_rate(), references)
    return ReportInput(folder=folder, run_name=run_name(results, folder.path), results=results, summary=summary,
                       summary_by_pol=summary_by_pol, bd_rate=bd_rate, metrics=metrics, anchors=settings.anchors,
                       references=references, log_rate=settings.log_rate)
