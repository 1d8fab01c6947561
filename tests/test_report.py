"""The report turns results.csv into faithful summaries and readable figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.metrics import psnr
from harness.plugins import build_registry
from harness.reporting import write_report
from harness.reporting.bdrate import bd_rate_by_scene, bd_rate_tables
from harness.curves import ReferenceCurve
from harness.reporting.figures import codec_colors, rd_figure
from harness.reporting.settings import ReportSettings, installed_metric_descriptions
from harness.reporting.summaries import metric_columns, summarize, summarize_by_pol, summarize_by_scene
from harness.reporting.tables import format_summary_table
from harness.results import RunFolder, load_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Deliberately neither alphabetical nor sorted by rate, as a config may list them.
CODEC_POINTS = {
    "quantize": ["bits=8", "bits=2", "bits=4"],
    "jpeg2000": ["bpp=1.0", "bpp=0.25", "lossless"],
}
TILES = ["t0", "t1", "t2", "t3"]
POLS = ["VV", "VH"]
ERROR_MESSAGE = "ValueError: tile too small for 5 levels"
CLIPPED_BELOW = {("t0", "VH"): 0.125, ("t2", "VH"): 0.025}
METRICS = ["psnr", "ssim", "ms_ssim", "rmse_db", "bias_db", "enl_ratio", "epi"]
(PSNR,) = psnr.columns


@dataclass(frozen=True)
class Written:
    """A report written by the built-in writers: its folder, and the paths the writers returned."""

    folder: RunFolder
    paths: list[Path]


def written_report(results: pd.DataFrame, run_dir: Path, settings: ReportSettings = ReportSettings()) -> Written:
    return Written(RunFolder(run_dir), write_report(results, run_dir, settings,
                                                    build_registry().report_writer_functions()))


def _good_row(rng: np.random.Generator, codec: str, point: str, tile: str, pol: str) -> dict:
    bpp = {"bits=8": 8.0, "bits=2": 2.0, "bits=4": 4.0, "bpp=1.0": 1.0, "bpp=0.25": 0.25, "lossless": 6.0}[point]
    psnr = np.inf if point == "lossless" else 20.0 + 3.0 * bpp + rng.normal()
    return {
        "run": "unit",
        "dataset": "synthetic",
        "scene": "s0",
        "tile_id": tile,
        "pol": pol,
        "height": 64,
        "width": 64,
        "valid_pixels": 4096,
        "clipped_below": CLIPPED_BELOW.get((tile, pol), 0.0),
        "clipped_above": 0.0,
        "codec": codec,
        "point": point,
        "options": json.dumps({"point": point}),
        "bytes": int(bpp * 4096 / 8),
        "bpp": bpp + rng.uniform(-0.01, 0.01),
        "compression_ratio": 16.0 / bpp,
        "psnr": psnr,
        "ssim": rng.uniform(0.5, 1.0),
        "ms_ssim": rng.uniform(0.5, 1.0),
        "rmse_db": rng.uniform(0.1, 3.0),
        "bias_db": rng.normal(0, 0.1),
        "enl_ratio": rng.uniform(0.8, 1.5),
        "epi": rng.uniform(0.5, 1.0),
        "encode_s": 0.01,
        "decode_s": 0.005,
        "encode_mpix_s": rng.uniform(1, 50),
        "decode_mpix_s": rng.uniform(1, 200),
        "device": "cpu",
        "precision": "",
        "error": "",
    }


def _as_error_row(row: dict) -> dict:
    """An error row keeps its identity but has every measured value empty, as a run writes it."""
    identity = {"run", "dataset", "scene", "tile_id", "pol", "height", "width", "valid_pixels", "clipped_below",
                "clipped_above"}
    identity |= {"codec", "point", "options", "device", "precision"}
    return {key: (value if key in identity else np.nan) for key, value in row.items()} | {"error": ERROR_MESSAGE}


def make_results() -> pd.DataFrame:
    """2 codecs × 3 points × 4 tiles × 2 pols, written tile by tile so codecs interleave.

    One error row (quantize bits=2, t1 VH), one NaN ms_ssim (jpeg2000 bpp=0.25,
    t0 VV) and a lossless jpeg2000 point whose PSNR is +inf on every tile.
    """
    rng = np.random.default_rng(0)
    rows = []
    for tile in TILES:
        for pol in POLS:
            for codec, points in CODEC_POINTS.items():
                for point in points:
                    row = _good_row(rng, codec, point, tile, pol)
                    if (codec, point, tile, pol) == ("quantize", "bits=2", "t1", "VH"):
                        row = _as_error_row(row)
                    if (codec, point, tile, pol) == ("jpeg2000", "bpp=0.25", "t0", "VV"):
                        row["ms_ssim"] = np.nan
                    rows.append(row)
    return pd.DataFrame(rows)


def error_only_results() -> pd.DataFrame:
    return pd.DataFrame([_as_error_row(row) for row in make_results().to_dict("records")])


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return make_results()


@pytest.fixture(scope="module")
def report(tmp_path_factory, results) -> Written:
    return written_report(results, tmp_path_factory.mktemp("run"))


def _row(summary: pd.DataFrame, codec: str, point: str) -> pd.Series:
    return summary.set_index(["codec", "point"]).loc[(codec, point)]


def test_summary_has_one_row_per_codec_and_point_in_first_appearance_order(results):
    summary = summarize(results)
    expected = [(codec, point) for codec, points in CODEC_POINTS.items() for point in points]
    assert list(zip(summary["codec"], summary["point"])) == expected


def test_summary_means_equal_pandas_means_over_good_rows(results):
    good = results[results["error"] == ""]
    with np.errstate(invalid="ignore"):
        expected = good.groupby(["codec", "point"])[["bpp", *METRICS]].mean()
    summary = summarize(results).set_index(["codec", "point"])
    for column in ["bpp", *METRICS]:
        np.testing.assert_allclose(summary[f"{column}_mean"], expected.loc[summary.index, column], err_msg=column)


def test_summary_stds_equal_pandas_stds_over_good_rows(results):
    good = results[(results["error"] == "") & (results["point"] != "lossless")]
    expected = good.groupby(["codec", "point"])[["bpp", "ssim", "enl_ratio"]].std()
    summary = summarize(results).set_index(["codec", "point"]).loc[expected.index]
    for column in expected.columns:
        np.testing.assert_allclose(summary[f"{column}_std"], expected[column], err_msg=column)


def test_error_rows_are_counted_and_excluded_from_means(results):
    row = _row(summarize(results), "quantize", "bits=2")
    good = results[(results["point"] == "bits=2") & (results["error"] == "")]
    assert (row["tiles"], row["errors"]) == (8, 1)
    assert row["psnr_count"] == 7
    assert row["psnr_mean"] == pytest.approx(good["psnr"].mean())


def test_nan_metric_is_skipped_and_counted(results):
    row = _row(summarize(results), "jpeg2000", "bpp=0.25")
    assert row["ms_ssim_count"] == 7
    assert np.isfinite(row["ms_ssim_mean"])


def test_lossless_point_keeps_infinite_psnr_mean(results):
    row = _row(summarize(results), "jpeg2000", "lossless")
    assert row["psnr_mean"] == np.inf
    assert np.isnan(row["psnr_std"])


def test_speed_is_the_median_over_good_rows(results):
    good = results[(results["codec"] == "quantize") & (results["point"] == "bits=8")]
    row = _row(summarize(results), "quantize", "bits=8")
    assert row["encode_mpix_s_median"] == pytest.approx(good["encode_mpix_s"].median())
    assert row["device"] == "cpu"


def test_speed_comes_with_its_p10_to_p90_band_over_the_tiles(results):
    good = results[(results["codec"] == "quantize") & (results["point"] == "bits=8")]
    row = _row(summarize(results), "quantize", "bits=8")
    assert row["decode_mpix_s_p10"] == pytest.approx(good["decode_mpix_s"].quantile(0.1))
    assert row["decode_mpix_s_p90"] == pytest.approx(good["decode_mpix_s"].quantile(0.9))


def test_repeat_spreads_are_not_taken_for_metrics(results):
    results = results.assign(encode_spread=0.1, decode_spread=0.2)
    assert not {"encode_spread", "decode_spread"} & set(metric_columns(results))


def test_extra_numeric_column_is_summarized_as_a_metric(results):
    summary = summarize(results.assign(ship_f1=0.5))
    assert (summary["ship_f1_mean"] == 0.5).all()


def test_a_rate_estimate_is_summarized_beside_bpp_and_not_as_a_metric(results):
    estimates = np.where(results["codec"] == "quantize", results["bpp"] * 0.9, np.nan)

    summary = summarize(results.assign(estimated_bpp=estimates))

    row = _row(summary, "quantize", "bits=8")
    good = results[(results["codec"] == "quantize") & (results["point"] == "bits=8")]
    assert row["estimated_bpp_mean"] == pytest.approx(0.9 * good["bpp"].mean())
    assert np.isnan(_row(summary, "jpeg2000", "bpp=1.0")["estimated_bpp_mean"])
    assert "estimated_bpp_count" not in summary.columns


def test_runs_without_any_rate_estimate_have_no_estimate_column(results):
    summary = summarize(results.assign(estimated_bpp=np.nan))
    assert "estimated_bpp_mean" not in summary.columns


def test_summary_by_scene_has_one_row_per_codec_point_and_scene(results):
    two_scenes = results.assign(scene=np.where(results["pol"] == results["pol"].iloc[0], "s0", "s1"))
    by_scene = summarize_by_scene(two_scenes)
    assert len(by_scene) == 2 * 3 * 2 and set(by_scene["scene"]) == {"s0", "s1"}
    assert by_scene["tiles"].sum() == len(results)


def test_bd_rate_by_scene_gives_each_scene_the_bd_rate_of_its_own_tiles():
    results = _bd_ready_results()
    results["scene"] = results["tile_id"].map({"t0": "s0", "t1": "s0", "t2": "s1", "t3": "s1"})
    metrics = installed_metric_descriptions().bd_rate()

    by_scene = bd_rate_by_scene(summarize_by_scene(results), ["jpeg2000"], metrics)

    for scene in ("s0", "s1"):
        alone = summarize(results[results["scene"] == scene])
        expected = bd_rate_tables(alone, alone.iloc[0:0], ["jpeg2000"], metrics)
        rows = by_scene[by_scene["scene"] == scene].drop(columns="scene").reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, expected)
        assert rows["bd_rate_percent"].notna().any()


def test_summary_by_pol_has_one_row_per_codec_point_and_pol(results):
    by_pol = summarize_by_pol(results)
    assert len(by_pol) == 2 * 3 * 2
    assert list(by_pol["pol"][:2]) == POLS
    assert by_pol["tiles"].eq(4).all()


def test_load_results_keeps_text_as_text_and_inf_as_inf(tmp_path, results):
    path = tmp_path / "results.csv"
    results.assign(tile_id="0007").to_csv(path, index=False)
    loaded = load_results(path)
    assert set(loaded["error"]) == {"", ERROR_MESSAGE}
    assert loaded["tile_id"].eq("0007").all()
    assert json.loads(loaded["options"][0]) == {"point": "bits=8"}
    assert np.isposinf(loaded["psnr"]).sum() == 8


def test_write_report_writes_every_listed_file(report):
    names = {path.name for path in report.paths}
    assert names == {
        "summary.csv",
        "summary_by_pol.csv",
        "summary_by_scene.csv",
        "summary.md",
        "rd_psnr.png",
        "rd_ms_ssim.png",
        "rd_enl_ratio.png",
        "rd_rmse_db.png",
        "rd_water_iou.png",
        "rd_water_iou_truth.png",
        "rd_water_iou_truth_change.png",
        "rd_cfar_f1.png",
        "timing.png",
        "bd_rate.csv",
        "bd_rate_by_scene.csv",
        "quantize.json",
        "jpeg2000.json",
    }
    assert all(path.is_file() and path.stat().st_size > 0 for path in report.paths)


def test_every_figure_is_a_small_valid_png(report):
    for path in (*report.folder.rd_plots(), report.folder.timing_plot):
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), path.name
        assert 5_000 < len(data) < 200_000, path.name


def test_summary_csv_round_trips_the_summary(report, results):
    written = pd.read_csv(report.folder.summary)
    assert list(written["point"]) == list(summarize(results)["point"])


def test_summary_md_lists_the_error_message(report):
    text = report.folder.summary_markdown.read_text()
    assert "## Errors" in text
    assert ERROR_MESSAGE in text


def test_summary_md_names_the_run_and_counts_tiles_and_errors(report):
    text = report.folder.summary_markdown.read_text()
    assert "# Run `unit`" in text
    assert "- tiles: 8" in text
    assert "- error rows: 1" in text


def test_summary_md_tells_per_polarisation_how_many_tiles_were_clipped_and_by_how_much(report):
    text = report.folder.summary_markdown.read_text()
    vh_row = next(line for line in text.split("## Clipping to the dB range")[1].splitlines() if line.startswith("| VH"))
    assert [cell.strip() for cell in vh_row.strip("|").split("|")] == ["VH", "4", "2", "3.75", "12.50", "0.00", "0.00"]


def test_results_written_before_clipping_was_recorded_say_so_instead_of_a_table(tmp_path):
    files = written_report(make_results().drop(columns=["clipped_below", "clipped_above"]), tmp_path)
    assert "## Clipping to the dB range\n\nNot recorded in these results." in files.folder.summary_markdown.read_text()


def test_summary_md_gives_the_counted_complexity_of_the_points_that_have_one(tmp_path):
    results = make_results()
    learned = results["codec"] == "quantize"
    results["encode_macs_per_pixel"] = np.where(learned, 864.0, np.nan)
    results["decode_macs_per_pixel"] = np.where(learned, 810.0, np.nan)
    results["parameters"] = np.where(learned, 77313.0, np.nan)

    text = written_report(results, tmp_path).folder.summary_markdown.read_text()

    section = text.split("## Complexity")[1].split("##")[0]
    assert "| quantize | bits=8  |             864 |             810 |       77,313 |" in section
    assert "jpeg2000" not in section


def test_summary_md_has_no_complexity_section_when_no_codec_counts_it(report):
    assert "## Complexity" not in report.folder.summary_markdown.read_text()


def test_summary_md_renders_lossless_psnr_as_inf(report):
    lossless_row = next(line for line in report.folder.summary_markdown.read_text().splitlines() if "| lossless" in line)
    cells = [cell.strip() for cell in lossless_row.split("|")]
    assert "inf" in cells


def test_results_with_only_error_rows_still_write_the_summaries(tmp_path):
    files = written_report(error_only_results(), tmp_path)
    summary = pd.read_csv(files.folder.summary)
    assert summary["errors"].eq(summary["tiles"]).all()
    assert summary["psnr_mean"].isna().all()
    assert all(path.is_file() for path in files.paths)


def test_empty_results_still_write_the_summaries(tmp_path):
    files = written_report(make_results().iloc[0:0], tmp_path / "empty")
    assert "No results." in files.folder.summary_markdown.read_text()
    assert all(path.is_file() for path in files.paths)


def test_codec_colors_do_not_depend_on_order_or_repetition():
    assert codec_colors(["b", "a", "c"]) == codec_colors(["c", "a", "b", "a"])


def test_codec_colors_are_distinct_for_up_to_ten_codecs():
    colors = codec_colors(f"codec{index}" for index in range(10))
    assert len(set(colors.values())) == 10


def test_format_summary_table_shows_every_codec_point_and_headline_metric(results):
    table = format_summary_table(summarize(results), installed_metric_descriptions())
    assert all(point in table for points in CODEC_POINTS.values() for point in points)
    assert "PSNR (dB)" in table and "ENL ratio" in table
    assert "SSIM" not in table.replace("MS-SSIM", "")


REBUILT_TABLES = ("summary.csv", "summary_by_pol.csv", "summary_by_scene.csv", "bd_rate.csv", "bd_rate_by_scene.csv",
                  "summary.md")
REFERENCE = ReferenceCurve("published-codec", "from a paper", {"bpp": (0.5, 1.0, 2.0, 4.0), "psnr": (26.0, 29.0, 33.0, 40.0)})


def _bd_ready_results() -> pd.DataFrame:
    """Four lossy points for both codecs, so the BD-rate table has numbers to reproduce."""
    rng = np.random.default_rng(1)
    rows = []
    for codec, points in {"jpeg2000": ["bpp=0.25", "bpp=1.0", "bits=2", "bits=4"],
                          "quantize": ["bits=2", "bits=4", "bits=8", "bpp=1.0"]}.items():
        for point in points:
            for tile in TILES:
                for pol in POLS:
                    rows.append(_good_row(rng, codec, point, tile, pol))
    return pd.DataFrame(rows)


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as `harness run` leaves it: results, the saved config naming the anchor, a reference curve."""
    folder = tmp_path / "run"
    folder.mkdir()
    results = _bd_ready_results()
    results.to_csv(folder / "results.csv", index=False)
    (folder / "config.yaml").write_text("name: unit\nanchor: quantize\n")
    written_report(load_results(folder / "results.csv"), folder, ReportSettings(anchors=("quantize",), references=(REFERENCE,)))
    return folder


def test_report_on_a_copied_run_folder_rebuilds_the_tables_byte_for_byte(run_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.csv", "config.yaml"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    (copy / "references").mkdir()
    (copy / "references" / "published-codec.json").write_bytes((run_dir / "references" / "published-codec.json").read_bytes())
    assert main(["report", str(copy)]) == 0
    for name in REBUILT_TABLES:
        assert (copy / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_report_takes_the_anchor_from_the_saved_config_and_references_from_the_folder(run_dir):
    assert main(["report", str(run_dir)]) == 0
    table = pd.read_csv(run_dir / "bd_rate.csv", keep_default_na=False)
    assert set(table["anchor"]) == {"quantize"}
    assert set(zip(table["codec"], table["source"])) == {("jpeg2000", "codec"), ("published-codec", "reference")}


def test_summary_md_has_a_bd_rate_section_that_says_negative_is_better(run_dir):
    text = (run_dir / "summary.md").read_text()
    assert "## BD-rate against `quantize`" in text
    assert "negative = fewer bits than the anchor, better" in text


def test_report_on_a_folder_without_results_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: no results.csv; pass a run folder written by `python -m harness run`"


def test_report_on_results_missing_a_required_column_names_the_column(tmp_path, capsys):
    _bd_ready_results().drop(columns="bpp").to_csv(tmp_path / "results.csv", index=False)
    assert main(["report", str(tmp_path)]) == 2
    assert "missing required column 'bpp'" in capsys.readouterr().err


def test_log_rate_puts_the_rate_axis_on_a_log_scale(results):
    summary = summarize(results)
    figure = rd_figure(summary, PSNR, codec_colors(summary["codec"]), "unit", log_rate=True)
    assert figure.axes[0].get_xscale() == "log"


def test_a_run_spanning_high_rates_gets_a_second_panel_zoomed_on_the_low_rates(results):
    summary = summarize(results)
    figure = rd_figure(summary, PSNR, codec_colors(summary["codec"]), "unit")

    full, zoomed = figure.axes
    low = summary[summary["bpp_mean"] <= 1.0]
    assert full.get_xlim()[1] > 6.0 and zoomed.get_xlim()[1] == pytest.approx(1.03)
    assert zoomed.get_ylim()[0] <= (low["psnr_mean"] - low["psnr_std"]).min()
    assert zoomed.get_ylim()[1] >= (low["psnr_mean"] + low["psnr_std"]).max()


def test_a_run_with_only_low_rates_gets_one_panel(results):
    summary = summarize(results)
    low = summary[summary["bpp_mean"] <= 1.0]
    assert len(rd_figure(low, PSNR, codec_colors(low["codec"]), "unit").axes) == 1


def test_reference_curves_are_drawn_dashed_and_labelled_with_their_name(results):
    summary = summarize(results)
    figure = rd_figure(summary, PSNR, codec_colors(summary["codec"]), "unit", references=(REFERENCE,))
    dashed = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in dashed] == ["published-codec (reference)"]


def test_the_batch_size_column_is_not_summarized_as_a_metric():
    frame = pd.DataFrame({"codec": ["a"], "point": ["p"], "bpp": [1.0], "psnr": [30.0], "batch_size": [4],
                          "error": [""]})
    assert metric_columns(frame) == ["psnr"]


def test_a_list_of_anchors_gives_every_codec_a_bd_rate_against_each(run_dir):
    (run_dir / "config.yaml").write_text("name: unit\nanchor: [quantize, jpeg2000]\n")

    assert main(["report", str(run_dir)]) == 0

    table = pd.read_csv(run_dir / "bd_rate.csv", keep_default_na=False)
    codecs = table[table["source"] == "codec"]
    assert set(zip(codecs["anchor"], codecs["codec"])) == {("quantize", "jpeg2000"), ("jpeg2000", "quantize")}
    text = (run_dir / "summary.md").read_text()
    assert text.index("## BD-rate against `quantize`") < text.index("## BD-rate against `jpeg2000`")


def test_a_metric_that_no_tile_has_is_named_in_the_notes_instead_of_a_blank_column(tmp_path):
    files = written_report(make_results().assign(border_bias_db=np.nan), tmp_path)
    text = files.folder.summary_markdown.read_text()
    assert "| border bias (dB)" not in text
    assert "- Not shown, as no tile of this run has a value: border bias (dB)." in text
