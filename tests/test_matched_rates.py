"""The report's table of every codec at the same rates (its ``match_bpp`` points)."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.reporting.matched_rates import matched_rate_markdown, matched_rate_table
from harness.metrics import psnr

PSNR_ONLY = psnr.columns


def results(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """Rows as a run writes them: a point labelled ``match_bpp=X`` has the target X."""
    return pd.DataFrame([{"codec": codec, "point": point, "target_bpp": _target(point), "bpp": bpp, "psnr": psnr,
                          "error": ""} for codec, point, bpp, psnr in rows])


def _target(point: str) -> float:
    return float(point.removeprefix("match_bpp=")) if point.startswith("match_bpp=") else float("nan")


def test_each_codec_and_target_gets_one_row_best_psnr_first():
    table = matched_rate_table(results([
        ("avif", "match_bpp=0.5", 0.49, 28.0), ("avif", "match_bpp=0.5", 0.45, 27.0),
        ("jpeg2000", "match_bpp=0.5", 0.50, 27.9), ("jpeg2000", "match_bpp=0.5", 0.495, 27.9),
        ("avif", "quality=50", 0.86, 31.7),
    ]), PSNR_ONLY)

    assert list(table["codec"]) == ["jpeg2000", "avif"]
    assert list(table["target bpp"]) == [0.5, 0.5]
    assert table["tiles"].tolist() == [2, 2]


def test_the_table_says_how_many_tiles_came_within_two_percent_and_how_many_went_over():
    table = matched_rate_table(results([
        ("jpegxl", "match_bpp=0.25", 0.249, 24.0), ("jpegxl", "match_bpp=0.25", 0.20, 23.0),
        ("jpegxl", "match_bpp=0.25", 0.31, 25.0), ("jpegxl", "match_bpp=0.25", 0.25, 24.1),
    ]), PSNR_ONLY)

    assert table["within 2% (%)"].iloc[0] == pytest.approx(50.0)
    assert table["over (%)"].iloc[0] == pytest.approx(25.0)


def test_a_codec_over_the_target_on_some_tiles_ranks_after_those_within_it_whatever_its_psnr():
    table = matched_rate_table(results([
        ("baq", "match_bpp=0.5", 2.03, 29.1), ("avif", "match_bpp=0.5", 0.49, 28.0),
    ]), PSNR_ONLY)
    assert list(table["codec"]) == ["avif", "baq"]


def test_error_rows_do_not_count():
    rows = results([("sz3", "match_bpp=1.0", 0.99, 30.0), ("sz3", "match_bpp=1.0", float("nan"), float("nan"))])
    rows.loc[1, "error"] = "ValueError: bad tile"
    assert matched_rate_table(rows, PSNR_ONLY)["tiles"].tolist() == [1]


def test_a_run_without_match_bpp_points_has_no_table():
    assert matched_rate_markdown(results([("avif", "quality=50", 0.86, 31.7)]), PSNR_ONLY) is None
