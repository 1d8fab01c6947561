"""One self-contained ``report.html`` per run folder, to share a run as a single file.

The page is built only from files the run folder already holds (``results.csv``,
``summary.csv``, ``bd_rate.csv``, ``config.yaml``, ``environment.json`` and the
PNG figures), so ``harness report`` rebuilds it from a copied folder without
running codecs. Figures are embedded as base64 ``data:`` URIs, the CSS is inline
and there is no JavaScript: the page opens offline, from a mail or an archive,
and a Content-Security-Policy forbids the browser to load anything else. Nothing
time-dependent is written, so rebuilding an unchanged folder gives the same bytes.

The results come first, in the order a reader asks for them: the BD-rate table against each anchor, the RD
figures, the matched-rate table (when the run has ``match_bpp`` points) and the summary; then speed, visual
comparisons, clipping and errors; the configuration and environment close the page as an appendix.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from harness.reporting.formatting import codec_calls_text, format_number
from harness.reporting.matched_rates import EXPLANATION as MATCHED_RATE_EXPLANATION
from harness.reporting.matched_rates import matched_rate_table
from harness.reporting.settings import run_metric_descriptions
from harness.reporting.summaries import GROUP_KEYS, clipping_table
from harness.reporting.table_columns import (
    ANCHOR, BD_QUALITY, BD_RATE_PERCENT, MEAN, MEDIAN, METRIC, RATE_HIGH, RATE_LOW, STD, summary_column,
)
from harness.reporting.tables import BD_RATE_EXPLANATION, CLIPPING_EXPLANATION, column_style
from harness.reporting.tables import display_table  # summary.md's table, the same labels
from harness.results import CODEC, ERROR, POINT, POL, RUN, TILE_ID, MetricDescriptions, RunFolder, load_results

ERROR_COLUMNS = (CODEC, POINT, TILE_ID, ERROR)
STATISTIC_SUFFIXES = tuple(summary_column("", statistic) for statistic in (MEAN, STD, MEDIAN))
BD_DECIMALS = {RATE_LOW: 3, RATE_HIGH: 3, BD_RATE_PERCENT: 2}
BD_MISSING_TEXT = {BD_RATE_PERCENT: "not comparable", BD_QUALITY: "not comparable"}
BD_LEADING_COLUMNS = (CODEC, POL, METRIC, BD_RATE_PERCENT, BD_QUALITY)
"""What a reader looks for first in a BD-rate row, so it shows on a narrow screen; ``bd_rate.csv``'s other columns
(overlap, points, note) follow in their order."""
BD_RATE_SECTION_ID = "bd-rate"
"""The ``id`` of the first BD-rate section (later anchors get ``bd-rate-2``, ...), which the page opens with."""

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f0f0f0; text-align: left; vertical-align: bottom; }
.scroll th { white-space: normal; min-width: 4em; }
td { text-align: right; }
td:first-child, td:nth-child(2) { text-align: left; }
figure { margin: 1.5em 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
"""


def write_html_report(run_dir: Path) -> Path:
    """Write ``report.html`` into ``run_dir`` and return its path."""
    folder = RunFolder(run_dir)
    folder.html.write_bytes(build_html(folder).encode("utf-8"))
    return folder.html


def build_html(folder: RunFolder) -> str:
    """The whole page as text; every section copes with its file missing, so partial folders still report."""
    results = _results(folder)
    metrics = run_metric_descriptions(folder)
    name = _run_name(results, folder.path)
    rd_plots, other_figures = figure_paths(folder, metrics)
    sections = [
        *_bd_rate_sections(folder, metrics),
        _section("Rate-distortion curves", _figures_body(rd_plots, folder, metrics), "rd-curves"),
        *_matched_rate_sections(results, metrics),
        _section("Summary by codec and rate point", _summary_body(folder, metrics), "summary"),
        _section("Speed and visual comparison", _figures_body(other_figures, folder, metrics), "speed-and-visual"),
        _section("Clipping to the dB range", _clipping_body(results, metrics), "clipping"),
        _section("Errors", _errors_body(results, metrics), "errors"),
        _section("Appendix: configuration", _config_body(folder), "configuration"),
        _section("Appendix: environment", _environment_body(folder), "environment"),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        f"<title>{escape(name)}: SAR codec benchmark</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Run {escape(name)}</h1>",
        *sections,
        "</body>",
        "</html>",
        "",
    ])


def _results(folder: RunFolder) -> pd.DataFrame:
    """The run's rows read as ``harness report`` reads them (text stays text); empty when there is no file."""
    return load_results(folder.results) if folder.results.is_file() else pd.DataFrame(columns=[RUN, *ERROR_COLUMNS])


def _run_name(results: pd.DataFrame, run_dir: Path) -> str:
    """The run name recorded in the rows, as in ``summary.md``; the folder name when no row says."""
    names = [name for name in dict.fromkeys(results[RUN]) if name] if RUN in results.columns else []
    return "/".join(names) or run_dir.resolve().name


def _section(title: str, body: str, section_id: str) -> str:
    return f'<section id="{escape(section_id)}">\n<h2>{escape(title)}</h2>\n{body}\n</section>'


def _paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _config_body(folder: RunFolder) -> str:
    """The config exactly as the user wrote it, comments included: it is what they will edit to rerun."""
    path = folder.config
    if not path.is_file():
        return _paragraph(f"No {path.name} in this run folder.")
    return f"<pre>{escape(path.read_text(encoding='utf-8'))}</pre>"


def _environment_body(folder: RunFolder) -> str:
    environment = folder.read_environment()
    if environment is None:
        return _paragraph(f"No readable {folder.environment.name} in this run folder.")
    rows = environment_rows(environment)
    cells = "\n".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in rows)
    return f'<table class="environment">\n{cells}\n</table>'


def environment_rows(environment: dict) -> list[tuple[str, str]]:
    """The facts that decide whether two runs' speeds and bitstreams can be compared, as (label, text)."""
    commit = _text(environment.get("git_commit"))
    if environment.get("git_dirty"):
        commit += " (with uncommitted changes)"
    packages = environment.get("packages") or {}
    return [
        ("timestamp (UTC)", _text(environment.get("timestamp_utc"))),
        ("CPU", _text(environment.get("cpu"))),
        ("logical cores", _text(environment.get("logical_cores"))),
        ("load average (1, 5, 15 min) at start", _text(environment.get("load_average_start"))),
        ("load average at end", _text(environment.get("load_average_end"))),
        ("threads", _text(environment.get("threads"))),
        *(("timing warning", warning) for warning in environment.get("timing_warnings") or []),
        ("memory (GiB)", _text(environment.get("memory_total_gib"))),
        ("GPU", ", ".join(str(gpu) for gpu in environment.get("gpus") or []) or "none"),
        ("device", _text(environment.get("device"))),
        *((("codec calls", calls),) if (calls := codec_calls_text(environment)) else ()),
        ("Python", _text(environment.get("python"))),
        ("platform", _text(environment.get("platform"))),
        *((name, _text(version)) for name, version in packages.items()),
        ("GDAL", _text(environment.get("gdal"))),
        ("OpenJPEG", _text(environment.get("openjpeg"))),
        ("git commit", commit),
        ("config SHA-256", _text(environment.get("config_sha256"))),
    ]


def _text(value: object) -> str:
    """Probes that failed recorded ``None``: say so rather than print the word None."""
    return "unknown" if value is None else str(value)


def _summary_body(folder: RunFolder, metrics: MetricDescriptions) -> str:
    """The table of ``summary.md``: its headers with units, mean ± std in one cell, in a box that scrolls."""
    if not folder.summary.is_file():
        return _paragraph(f"No {folder.summary.name} in this run folder.")
    summary = load_results(folder.summary)
    if summary.empty:
        return _paragraph("No results.")
    table = display_table(summary, GROUP_KEYS, metrics, with_spread=True)
    return (_paragraph("Mean ± standard deviation over the tiles without error; speeds are medians; "
                       "an n column counts the tiles that have a metric some tiles lack.")
            + "\n" + _html_table(table, metrics))


def _clipping_body(results: pd.DataFrame, metrics: MetricDescriptions) -> str:
    table = clipping_table(results)
    if table.empty:
        return _paragraph("Not recorded in these results.")
    return _paragraph(CLIPPING_EXPLANATION) + "\n" + _html_table(table, metrics)


def _matched_rate_sections(results: pd.DataFrame, metrics: MetricDescriptions) -> list[str]:
    """The matched-rate table when the run has ``match_bpp`` points; no section otherwise."""
    table = matched_rate_table(results, metrics.headline())
    if table.empty:
        return []
    body = _paragraph(MATCHED_RATE_EXPLANATION) + "\n" + _html_table(table, metrics)
    return [_section("At matched rates", body, "matched-rates")]


def _bd_rate_sections(folder: RunFolder, metrics: MetricDescriptions) -> list[str]:
    """One section per anchor, the explanation above the first (a table without an anchor column, from an older
    run, is one section); the first has the id ``BD_RATE_SECTION_ID``."""
    path = folder.bd_rate
    if not path.is_file():
        return [_section("BD-rate", _paragraph(f"No {path.name} in this run folder."), BD_RATE_SECTION_ID)]
    table = load_results(path)
    if table.empty:
        return [_section("BD-rate", _paragraph(
            "No BD-rate: the anchor codec has no results in this run, or no other codec to compare."),
            BD_RATE_SECTION_ID)]
    if METRIC in table.columns:
        table = table.assign(**{METRIC: [metrics.of(metric).header for metric in table[METRIC]]})
    by_anchor = list(table.groupby(ANCHOR, sort=False)) if ANCHOR in table.columns else [("", table)]
    sections = []
    for rank, (anchor, rows) in enumerate(by_anchor):
        leading = [column for column in BD_LEADING_COLUMNS if column in rows.columns]
        rows = rows[[*leading, *(column for column in rows.columns if column not in {*leading, ANCHOR})]]
        body = _html_table(rows, metrics, BD_MISSING_TEXT)
        sections.append(_section(f"BD-rate against {anchor}" if anchor else "BD-rate",
                                 (_paragraph(BD_RATE_EXPLANATION) + "\n" if rank == 0 else "") + body,
                                 BD_RATE_SECTION_ID if rank == 0 else f"{BD_RATE_SECTION_ID}-{rank + 1}"))
    return sections


def _html_table(frame: pd.DataFrame, metrics: MetricDescriptions, missing_text: dict[str, str] | None = None) -> str:
    """A table of text cells, wrapped so a wide table scrolls instead of widening the page.

    Cells and headers are escaped with ``html.escape`` like all other text of
    the page (quotes included), so pandas is told not to escape them again.
    """
    cells = _text_cells(frame, metrics, missing_text or {})
    return f'<div class="scroll">\n{cells.to_html(index=False, border=0, escape=False)}\n</div>'


def _text_cells(frame: pd.DataFrame, metrics: MetricDescriptions, missing_text: dict[str, str]) -> pd.DataFrame:
    """Every cell as escaped text, numbers rounded per column: CSV precision (17 digits) buries the signal."""
    return pd.DataFrame({
        escape(column): [escape(_cell(value, _decimals(column, metrics), missing_text.get(column, "")))
                         for value in frame[column]]
        for column in frame.columns
    })


def _decimals(column: str, metrics: MetricDescriptions) -> int:
    """Decimals of the summary (``psnr_mean`` like PSNR) and of the BD-rate columns; 4 when unknown."""
    if column in BD_DECIMALS:
        return BD_DECIMALS[column]
    base = next((column.removesuffix(suffix) for suffix in STATISTIC_SUFFIXES if column.endswith(suffix)), column)
    return column_style(base, metrics).decimals


def _cell(value: object, decimals: int, missing: str) -> str:
    """Text as it is, integers whole, other numbers as every table of the report writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(value)
    return format_number(value, decimals, missing)


def _figures_body(figures: list[Path], folder: RunFolder, metrics: MetricDescriptions) -> str:
    if not figures:
        return _paragraph("No such figures in this run folder.")
    return "\n".join(_figure(path, alt_text(path, folder, metrics)) for path in figures)


def figure_paths(folder: RunFolder, metrics: MetricDescriptions) -> tuple[list[Path], list[Path]]:
    """The RD plots in the order the metrics are declared; then timing and the visual comparisons by tile."""
    order = {folder.rd_plot(metric.name): rank for rank, metric in enumerate(metrics.rd_plots())}
    rd_plots = sorted(folder.rd_plots(), key=lambda path: (order.get(path, len(order)), path.name))
    timing = [folder.timing_plot] if folder.timing_plot.is_file() else []
    return rd_plots, [*timing, *folder.visuals()]


def _figure(path: Path, alt_text: str) -> str:
    alt = escape(alt_text)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure>\n<img src="data:image/png;base64,{data}" alt="{alt}">\n'
            f"<figcaption>{alt} ({escape(path.name)})</figcaption>\n</figure>")


def alt_text(path: Path, folder: RunFolder, metrics: MetricDescriptions) -> str:
    """What the figure shows, for screen readers and for a page whose images are blocked."""
    for metric in metrics.rd_plots():
        if path == folder.rd_plot(metric.name):
            return f"Rate-distortion curves: {metric.label} against rate"
    if path == folder.timing_plot:
        return "Encode and decode speed per codec"
    if path in folder.visuals():
        return f"Matched-rate visual comparison, tile {folder.visual_tile(path)}"
    return f"Rate-distortion curves: {folder.rd_plot_metric(path)} against rate"


def _errors_body(results: pd.DataFrame, metrics: MetricDescriptions) -> str:
    errors = results[results[ERROR] != ""] if ERROR in results.columns else results.iloc[0:0]
    if errors.empty:
        return _paragraph("No errors: every codec ran on every tile.")
    columns = [column for column in ERROR_COLUMNS if column in errors.columns]
    return _html_table(errors[columns], metrics)
