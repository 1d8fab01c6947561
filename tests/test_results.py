"""What a run writes is what is declared: the columns of results.csv (``harness.results``) and of the report's
tables (``harness.reporting.table_columns``), each declared once with its type; and the results module is the one
owner of the run folder's file names."""

from __future__ import annotations

import csv
import re
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.api import MetricColumn
from harness.errors import UserError
from harness.columns import Complexity, column_names
from harness.reporting.bdrate import bd_rate_table
from harness.reporting.table_columns import (
    BD_COLUMNS, BD_SPEC, MEAN, NOTE, STATISTICS, SUMMARY_COUNTS_SPEC, summary_column,
)
from harness.results import (
    BPP,
    CODEC,
    COMPLEXITY_COLUMNS,
    DECODE_MPIX_S,
    ENCODE_MPIX_S,
    ERROR,
    NON_METRIC_COLUMNS,
    POINT,
    POL,
    REQUIRED_COLUMNS,
    RESULTS_SPEC,
    TEXT_COLUMNS,
    TIMING_COLUMNS,
    MetricDescriptions,
    RunFolder,
    results_columns,
)
from tests.conftest import MINIMAL_CONFIG, run_rows

PROJECT = Path(harness.__file__).resolve().parent.parent
SOURCE_FOLDERS = ("harness", "codecs", "datasets")


def run_folder_file_names() -> list[str]:
    """Every file name a ``RunFolder`` gives out, found by asking one for all its paths."""
    folder = RunFolder(Path("run"))
    paths = [getattr(folder, name) for name in dir(RunFolder)
             if isinstance(getattr(RunFolder, name), property)]
    return sorted(path.name for path in paths if isinstance(path, Path) and "." in path.name)


def test_the_run_folder_knows_every_file_a_run_writes():
    assert {"results.csv", "config.yaml", "environment.json", "tiles.csv", "metrics.json", "summary.csv",
            "bd_rate.csv", "report.html"} <= set(run_folder_file_names())


@pytest.mark.parametrize("file_name", run_folder_file_names())
def test_no_other_module_names_a_run_folder_file(file_name):
    quoted = re.compile(rf"""["']{re.escape(file_name)}["']""")
    offenders = [str(path.relative_to(PROJECT)) for folder in SOURCE_FOLDERS
                 for path in sorted((PROJECT / folder).rglob("*.py"))
                 if path.name != "results.py" and quoted.search(path.read_text(encoding="utf-8"))]
    assert offenders == [], f"{file_name!r} is named outside harness/results.py: use RunFolder"


def test_the_text_columns_are_the_declared_text_columns():
    assert set(TEXT_COLUMNS) == {column.name for column in RESULTS_SPEC if column.type is str}


def test_a_report_requires_only_the_codec_point_pol_rate_speeds_and_error():
    assert set(REQUIRED_COLUMNS) == {CODEC, POINT, POL, BPP, ENCODE_MPIX_S, DECODE_MPIX_S, ERROR}


def test_every_declared_column_has_one_name_and_a_type_a_csv_cell_holds():
    for spec in (RESULTS_SPEC, BD_SPEC, SUMMARY_COUNTS_SPEC):
        assert len(column_names(spec)) == len(set(column_names(spec)))
        assert {column.type for column in spec} <= {str, int, float, bool}


def test_the_complexity_columns_are_the_fields_of_harness_complexity():
    assert COMPLEXITY_COLUMNS == tuple(field.name for field in fields(Complexity))


CELL_READERS = {str: str, int: int, float: float, bool: {"True": True, "False": False}.__getitem__}
"""How a cell of each declared type reads, raising on any other text; an empty cell is a missing value, allowed in
every column."""


@pytest.fixture
def run_folder(tmp_path, dual_pol_geotiff, write_config) -> RunFolder:
    """A finished run of the minimal config, report included."""
    run_rows(write_config(MINIMAL_CONFIG), tmp_path / "run")
    return RunFolder(tmp_path / "run")


def test_a_runs_header_is_the_declared_columns_with_the_metrics_between_the_rate_and_the_timing(run_folder):
    header = list(pd.read_csv(run_folder.results, nrows=0).columns)
    metrics = [column.name for column in run_folder.read_metric_columns()]
    assert header == results_columns(metrics)


def test_every_cell_of_a_run_reads_as_its_columns_declared_type(run_folder):
    rows = run_rows_as_written(run_folder.results)
    for column in RESULTS_SPEC:
        read = CELL_READERS[column.type]
        for row in rows:
            if row[column.name]:
                read(row[column.name])  # raises on a cell of another type


def run_rows_as_written(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_summary_column_is_a_key_a_count_a_results_column_or_a_statistic_of_a_summarized_value(run_folder):
    values = {*NON_METRIC_COLUMNS, *(column.name for column in run_folder.read_metric_columns())}
    described = {*values, *column_names(SUMMARY_COUNTS_SPEC),
                 *(summary_column(value, statistic) for value in values for statistic in STATISTICS)}
    for path in (run_folder.summary, run_folder.summary_by_pol, run_folder.summary_by_scene):
        assert set(pd.read_csv(path, nrows=0).columns) <= described, path.name


def test_a_bd_table_has_the_declared_columns_each_filled_on_a_comparable_row():
    rates = [0.5, 1.0, 2.0, 4.0]
    summary = pd.DataFrame({CODEC: ["a"] * 4 + ["b"] * 4, POINT: [f"p{rate}" for rate in rates * 2],
                            summary_column(BPP, MEAN): rates * 2,
                            summary_column("psnr", MEAN): [20.0, 25, 30, 35, 21, 26, 31, 36]})
    psnr = MetricColumn("psnr", "PSNR", unit="dB", higher_is_better=True, bd_rate=True)

    table = bd_rate_table(summary, summary.iloc[0:0], "a", [psnr])

    assert tuple(table.columns) == BD_COLUMNS
    assert table.drop(columns=[NOTE]).notna().all(axis=None)


def test_results_columns_put_the_metrics_between_the_rate_and_the_timing():
    columns = results_columns(["psnr", "my_metric"])
    assert columns.index("compression_ratio") < columns.index("psnr") < columns.index("my_metric")
    assert columns.index("my_metric") < columns.index(TIMING_COLUMNS[0])
    assert columns[-1] == "error"


def test_metric_descriptions_round_trip_through_the_run_folder(tmp_path):
    folder = RunFolder(tmp_path)
    columns = (MetricColumn("psnr", "PSNR", unit="dB", decimals=2, higher_is_better=True, rd_plot=True,
                            bd_rate=True),
               MetricColumn("bias_db", "bias", unit="dB", decimals=3))
    folder.write_metric_columns(columns)
    assert folder.read_metric_columns() == columns


def test_a_run_from_before_metric_descriptions_has_none(tmp_path):
    assert RunFolder(tmp_path).read_metric_columns() is None


def test_a_damaged_metrics_file_is_one_line_saying_what_to_do(tmp_path):
    folder = RunFolder(tmp_path)
    folder.metrics.write_text('[{"name": "psnr"}]', encoding="utf-8")
    with pytest.raises(UserError, match="delete it"):
        folder.read_metric_columns()


def test_an_undescribed_column_is_shown_under_its_name_and_never_plotted():
    column = MetricDescriptions().of("mystery")
    assert (column.header, column.rd_plot, column.bd_rate) == ("mystery", False, False)


def test_a_run_folder_without_results_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no results.csv"):
        RunFolder(tmp_path).read_results()


def test_a_second_run_into_a_locked_folder_is_refused(tmp_path):
    folder = RunFolder(tmp_path)
    with folder.locked(), pytest.raises(UserError, match="another run is writing"):
        with RunFolder(tmp_path).locked():
            pass
