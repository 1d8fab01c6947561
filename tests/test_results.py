"""The results module is the one owner of the results schema and of the run folder's file names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import harness
from harness.api import MetricColumn
from harness.errors import UserError
from harness.results import (
    NON_METRIC_COLUMNS,
    TEXT_COLUMNS,
    TIMING_COLUMNS,
    MetricDescriptions,
    RunFolder,
    results_columns,
)

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


OTHER_MEANINGS = {
    "harness/config.py": ({"dataset", "device", "batch_size"}, "keys of the config file"),
    "harness/environment.py": ({"device", "threads"}, "keys of environment.json"),
    "harness/reporting/html.py": ({"device", "threads"}, "keys of environment.json, shown on the page"),
    "harness/plugins.py": ({"codec", "dataset"}, "the kinds of plugin"),
    "harness/cli.py": ({"run", "options"}, "a subcommand and an argument"),
    "harness/distributed.py": ({"options"}, "a key of Dask's worker and scheduler specs"),
    "harness/isolation.py": ({"bpp", "error"}, "message kinds of the isolated codec's pipe"),
    "harness/reporting/bdrate.py": ({"codec"}, "a BD row's source: a codec of the run, not a reference curve"),
    "codecs/_autoencoder/training/trainer.py": ({"batch_size", "device", "threads", "options"}, "training config keys"),
    "codecs/jpeg2000.py": ({"bpp"}, "the codec's rate option"),
    "datasets/synthetic.py": ({"height", "width"}, "the synthetic scene's options"),
    "datasets/_safe_product.py": ({"pol"}, "a group of a file-name pattern"),
}
"""Modules where a word that is also a results column means something else, and what."""
ROW_BUILDERS = frozenset({"dict", "update", "assign"})
"""Calls whose keyword names become column names (``row.update(bpp=...)``)."""


def literal_column_names(path: Path) -> set[str]:
    """The results columns that ``path`` names as a string or as a keyword of a row-building call."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            named.add(node.value)
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ROW_BUILDERS:
                named |= {keyword.arg for keyword in node.keywords if keyword.arg}
    return named & NON_METRIC_COLUMNS


def source_modules() -> list[Path]:
    return [path for folder in SOURCE_FOLDERS for path in sorted((PROJECT / folder).rglob("*.py"))
            if path.name != "results.py"]


@pytest.mark.parametrize("path", source_modules(), ids=lambda path: str(path.relative_to(PROJECT)))
def test_no_other_module_names_a_results_column(path):
    allowed, _meaning = OTHER_MEANINGS.get(str(path.relative_to(PROJECT)), (set(), ""))
    assert literal_column_names(path) - allowed == set(), "use the column constants of harness/results.py"


def test_a_row_built_with_keywords_counts_as_naming_its_columns(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("row = {}\nrow.update(encode_s=1.0, anything=2)\n", encoding="utf-8")
    assert literal_column_names(module) == {"encode_s"}


def test_every_other_meaning_is_still_there():
    """An exception nobody needs any more would let a column name back in unnoticed."""
    stale = {module: sorted(words - literal_column_names(PROJECT / module))
             for module, (words, _meaning) in OTHER_MEANINGS.items()}
    assert {module: words for module, words in stale.items() if words} == {}


def test_results_columns_put_the_metrics_between_the_rate_and_the_timing():
    columns = results_columns(["psnr", "my_metric"])
    assert columns.index("compression_ratio") < columns.index("psnr") < columns.index("my_metric")
    assert columns.index("my_metric") < columns.index(TIMING_COLUMNS[0])
    assert columns[-1] == "error"


def test_no_declared_column_can_be_mistaken_for_a_metric():
    assert not set(results_columns([])) - NON_METRIC_COLUMNS


def test_text_columns_are_declared_columns():
    assert set(TEXT_COLUMNS) <= set(results_columns([]))


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
