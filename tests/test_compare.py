"""`harness compare`: B - A per codec and rate point, and points found in one run only."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.cli import main
from harness.compare import compare_runs
from harness.reporting.settings import installed_metric_descriptions
from tests.test_report import make_results

HEADLINE = installed_metric_descriptions().headline()


def _row(comparison, codec: str, point: str) -> pd.Series:
    return comparison.table.set_index(["codec", "point"]).loc[(codec, point)]


def test_a_run_compared_with_itself_differs_by_zero_everywhere():
    results = make_results()
    table = compare_runs(results, results, HEADLINE).table
    assert set(table["present"]) == {"both"}
    assert (table.filter(like="Δ") == 0).all().all()


def test_differences_are_b_minus_a():
    before = make_results()
    after = before.assign(psnr=before["psnr"] + 1.5)
    assert _row(compare_runs(before, after, HEADLINE), "quantize", "bits=8")["Δ PSNR (dB)"] == pytest.approx(1.5)


def test_points_in_one_run_only_are_listed_as_such_without_differences():
    before = make_results()
    after = before[before["point"] != "bits=2"]
    row = _row(compare_runs(before, after, HEADLINE), "quantize", "bits=2")
    assert row["present"] == "only in A"
    assert pd.isna(row["Δ bpp"])


def test_compare_prints_the_table_and_writes_csv_with_output(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        make_results().to_csv(tmp_path / name / "results.csv", index=False)
    output = tmp_path / "diff.csv"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(output)]) == 0
    assert "Δ PSNR (dB)" in capsys.readouterr().out
    assert len(pd.read_csv(output)) == 6


def test_compare_with_a_folder_without_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def _manifest(folder, tiles: dict[str, str]) -> None:
    rows = [f"{tile},scene,VV,0,0,32,32,{sha}" for tile, sha in tiles.items()]
    (folder / "tiles.csv").write_text("tile_id,scene,pol,row,col,height,width,sha256\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("tiles_b, warned", [
    ({"t1": "aa", "t2": "bb"}, False),
    ({"t1": "aa", "t2": "cc"}, True),
    ({"t1": "aa", "t3": "bb"}, True),
])
def test_compare_warns_when_the_runs_coded_different_tiles(tmp_path, capsys, tiles_b, warned):
    for name, tiles in (("a", {"t1": "aa", "t2": "bb"}), ("b", tiles_b)):
        (tmp_path / name).mkdir()
        make_results().to_csv(tmp_path / name / "results.csv", index=False)
        _manifest(tmp_path / name, tiles)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert ("warning: the runs coded different tiles" in capsys.readouterr().out) == warned
