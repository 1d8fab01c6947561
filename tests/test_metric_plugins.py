"""A metric plugin describes its columns, and the whole report follows without any change to the core."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from harness.api import MetricColumn, metric
from harness.cli import main
from tests.conftest import MINIMAL_CONFIG

MEAN_ABSOLUTE_ERROR_PLUGIN = '''
import numpy as np
from harness import MetricColumn, hookimpl, metric


@metric(MetricColumn("mae_normalized", "mean absolute error", unit="norm.", decimals=5, higher_is_better=False,
                     rd_plot=True, axis="mean absolute error of the normalized tile", bd_rate=True, headline=True))
def mean_absolute_error(pair):
    return {"mae_normalized": float(np.mean(np.abs(pair.reconstructed - pair.original)[pair.mask]))}


@hookimpl
def harness_metrics():
    return [mean_absolute_error]
'''

FOUR_POINTS_EACH = """\
  - name: quantize
    points: [{bits: 2}, {bits: 3}, {bits: 4}, {bits: 6}]
  - name: lerc
    points: [{max_error: 0.02}, {max_error: 0.01}, {max_error: 0.005}, {max_error: 0.002}]
anchor: quantize
plugins: [mae_metric.py]
"""


@pytest.fixture
def run_with_plugin_metric(tmp_path, dual_pol_geotiff, write_config):
    """A finished run whose config adds a metric plugin written in this test."""
    (tmp_path / "mae_metric.py").write_text(MEAN_ABSOLUTE_ERROR_PLUGIN)
    config = write_config(MINIMAL_CONFIG.split("codecs:")[0] + "codecs:\n" + FOUR_POINTS_EACH)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--output", str(run_dir), "--no-progress"]) == 0
    return run_dir


def test_a_plugin_metric_gets_its_own_rate_distortion_figure(run_with_plugin_metric):
    assert (run_with_plugin_metric / "rd_mae_normalized.png").is_file()


def test_a_plugin_metric_gets_bd_rate_rows_in_its_declared_direction(run_with_plugin_metric):
    table = pd.read_csv(run_with_plugin_metric / "bd_rate.csv")
    rows = table[table["metric"] == "mae_normalized"]
    assert set(rows["codec"]) == {"lerc"}
    assert set(rows["better"]) == {"lower"}
    assert rows["bd_rate_percent"].notna().any()


def test_a_plugin_metric_is_shown_under_its_label_and_unit(run_with_plugin_metric):
    summary = (run_with_plugin_metric / "summary.md").read_text(encoding="utf-8")
    assert "mean absolute error (norm.)" in summary
    page = (run_with_plugin_metric / "report.html").read_text(encoding="utf-8")
    assert "Rate-distortion curves: mean absolute error against rate" in page


def test_a_copied_run_reports_its_plugin_metric_without_the_plugin(run_with_plugin_metric, tmp_path):
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(run_with_plugin_metric, copy)
    (copy / "rd_mae_normalized.png").unlink()
    (tmp_path / "mae_metric.py").unlink()

    assert main(["report", str(copy)]) == 0

    assert (copy / "rd_mae_normalized.png").is_file()
    assert (copy / "summary.md").read_bytes() == (run_with_plugin_metric / "summary.md").read_bytes()
    assert (copy / "bd_rate.csv").read_bytes() == (run_with_plugin_metric / "bd_rate.csv").read_bytes()


@pytest.mark.parametrize(("plugin", "message"), [
    ("def loose(pair):\n    return {'loose': 1.0}\n\n@hookimpl\ndef harness_metrics():\n    return [loose]\n",
     "is not a harness.Metric"),
    ("@metric(MetricColumn('declared', 'declared'))\ndef liar(pair):\n    return {'returned': 1.0}\n\n"
     "@hookimpl\ndef harness_metrics():\n    return [liar]\n",
     "metric 'liar' (config plugin bad_metric.py) returned the columns ['returned'] but declares ['declared']"),
    ("@metric(MetricColumn('psnr', 'my PSNR'))\ndef my_psnr(pair):\n    return {'psnr': 1.0}\n\n"
     "@hookimpl\ndef harness_metrics():\n    return [my_psnr]\n",
     "metric column 'psnr' is declared by metric 'psnr' and by metric 'my_psnr'"),
])
def test_a_metric_plugin_breaking_the_contract_is_one_line(tmp_path, dual_pol_geotiff, write_config, capsys,
                                                            plugin, message):
    (tmp_path / "bad_metric.py").write_text("from harness import MetricColumn, hookimpl, metric\n\n" + plugin)
    config = write_config(MINIMAL_CONFIG + "plugins: [bad_metric.py]\n")

    assert main(["run", str(config), "--output", str(tmp_path / "run"), "--no-progress"]) == 2

    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


def test_a_bd_rate_needs_a_direction():
    with pytest.raises(ValueError, match="needs higher_is_better"):
        MetricColumn("bias", "bias", bd_rate=True)


def test_a_declared_metric_is_called_like_its_function():
    @metric(MetricColumn("one", "one"))
    def constant(pair):
        return {"one": 1.0}

    assert constant.name == "constant"
    assert constant(None) == {"one": 1.0}
