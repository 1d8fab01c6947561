"""What a report needs beyond ``results.csv``: anchors, reference curves, plot options and metric descriptions,
rebuilt from a run folder alone so that a copied folder reports the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.curves import ReferenceCurve, read_compressai_json
from harness.errors import UserError
from harness.plugins import build_registry
from harness.results import MetricDescriptions, RunFolder

DEFAULT_ANCHOR = "jpeg2000"


@dataclass(frozen=True)
class ReportSettings:
    """What the report needs beyond ``results.csv``: the BD-rate anchors, reference curves, plot options, and
    the descriptions of the metric columns (None: those of the installed metric plugins)."""

    anchors: tuple[str, ...] = (DEFAULT_ANCHOR,)
    references: tuple[ReferenceCurve, ...] = ()
    log_rate: bool = False
    metrics: MetricDescriptions | None = None


def installed_metric_descriptions() -> MetricDescriptions:
    """The descriptions the installed metric plugins declare: for results from before runs saved theirs."""
    return MetricDescriptions(build_registry().metric_columns())


def run_metric_descriptions(folder: RunFolder) -> MetricDescriptions:
    """The descriptions the run saved, or the installed plugins' for a run from before they were saved."""
    saved = folder.read_metric_columns()
    return MetricDescriptions(saved) if saved is not None else installed_metric_descriptions()


def settings_from_run_dir(run_dir: Path, log_rate: bool = False) -> ReportSettings:
    """Rebuild a run's report settings from the folder alone, so a copied folder reports the same.

    The anchors come from the saved ``config.yaml`` (validated when the run
    started); the reference curves from the copies ``write_report`` saved in
    ``references/``, because the config's own paths may not exist on this machine;
    the metric descriptions from ``metrics.json``.
    """
    folder = RunFolder(run_dir)
    anchors: tuple[str, ...] = (DEFAULT_ANCHOR,)
    if folder.config.is_file():
        try:
            raw = yaml.safe_load(folder.config.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise UserError(f"{folder.config}: not valid YAML: {str(exc).splitlines()[0]}") from None
        value = raw.get("anchor") if isinstance(raw, dict) else None
        if isinstance(value, str):
            anchors = (value,)
        elif isinstance(value, list) and value and all(isinstance(anchor, str) for anchor in value):
            anchors = tuple(dict.fromkeys(value))
    references = tuple(read_compressai_json(path) for path in folder.reference_curves())
    return ReportSettings(anchors=anchors, references=references, log_rate=log_rate,
                          metrics=run_metric_descriptions(folder))
