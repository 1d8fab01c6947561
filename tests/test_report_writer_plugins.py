"""A report writer from a plugin adds an output to every report, run or rebuilt, without any change to the core."""

from __future__ import annotations

from harness.cli import main
from tests.conftest import MINIMAL_CONFIG

LATEX_TABLE_PLUGIN = '''
from harness import hookimpl


def latex_table(report):
    """One LaTeX row per rate point: codec, point, mean bpp and mean PSNR."""
    rows = [f"{row.codec} & {row.point} & {row.bpp_mean:.3f} & {row.psnr_mean:.2f} \\\\\\\\"
            for row in report.summary.itertuples()]
    path = report.folder.path / "summary.tex"
    path.write_text("\\n".join(rows) + "\\n", encoding="utf-8")
    return [path]


@hookimpl
def harness_report_writers():
    return [latex_table]
'''

FAILING_WRITER_PLUGIN = '''
from harness import hookimpl


def broken_output(report):
    raise RuntimeError("no space left for my output")


@hookimpl
def harness_report_writers():
    return [broken_output]
'''


def run_with_plugin(tmp_path, write_config, plugin_source: str) -> tuple[int, object]:
    (tmp_path / "writer.py").write_text(plugin_source)
    config = write_config(MINIMAL_CONFIG + "plugins: [writer.py]\n")
    run_dir = tmp_path / "run"
    return main(["run", str(config), "--output", str(run_dir), "--no-progress"]), run_dir


def test_a_plugin_report_writer_adds_its_output_to_the_run(tmp_path, dual_pol_geotiff, write_config):
    status, run_dir = run_with_plugin(tmp_path, write_config, LATEX_TABLE_PLUGIN)
    assert status == 0
    lines = (run_dir / "summary.tex").read_text(encoding="utf-8").splitlines()
    assert [line.split(" & ")[:2] for line in lines] == [["quantize", "bits=4"], ["quantize", "bits=8"]]


def test_a_failing_report_writer_is_one_line_and_the_other_outputs_are_written(tmp_path, dual_pol_geotiff,
                                                                              write_config, capsys):
    status, run_dir = run_with_plugin(tmp_path, write_config, FAILING_WRITER_PLUGIN)

    assert status == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "report writer 'broken_output' failed: RuntimeError: no space left for my output" in line
    assert all((run_dir / name).is_file() for name in ("summary.md", "rd_psnr.png", "report.html"))


def test_list_shows_the_built_in_report_writers(capsys):
    assert main(["list"]) == 0
    writers = capsys.readouterr().out.split("report writers:")[1]
    for name in ("write_tables", "write_figures", "write_curves", "write_visuals"):
        assert name in writers
