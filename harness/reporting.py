"""Every output of a run folder from its saved files: tables, figures, CompressAI curves, visual comparisons and
the HTML page. One function, used by ``run`` (through ``run_benchmark``), by ``report`` and by library callers, so
the chain cannot differ between them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness.html_report import write_html_report
from harness.report import ReportSettings, format_summary_table, run_metric_descriptions, summarize, write_report
from harness.results import RunFolder
from harness.visual import write_visual_comparisons


@dataclass(frozen=True)
class BuiltReport:
    """What ``build_report`` wrote, and the short table the command line prints."""

    paths: tuple[Path, ...]
    summary_table: str


def build_report(folder: RunFolder, settings: ReportSettings) -> BuiltReport:
    """(Re)write every report file of ``folder`` from its ``results.csv``; metric descriptions not given in
    ``settings`` come from the folder's ``metrics.json`` (or the installed plugins for an older run)."""
    if settings.metrics is None:
        settings = replace(settings, metrics=run_metric_descriptions(folder))
    results = folder.read_results()
    files = write_report(results, folder.path, settings)
    visuals = write_visual_comparisons(folder.path, results, settings.metrics.headline()[0]) \
        if settings.metrics.headline() else []
    page = write_html_report(folder.path)
    return BuiltReport((*files.paths(), *visuals, page), format_summary_table(summarize(results), settings.metrics))
