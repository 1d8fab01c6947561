"""BD-rate and BD-quality against the anchor: known answers, and "not comparable" instead of a guess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import UserError
from harness.reporting.bdrate import RDCurve, bd_compare, bd_rate_table
from harness.curves import ReferenceCurve
from harness.reporting.settings import installed_metric_descriptions
from harness.config import load_config
from tests.conftest import MINIMAL_CONFIG

ANCHOR_RATES = (0.25, 0.5, 1.0, 2.0, 4.0)
ANCHOR_PSNR = (24.0, 27.0, 30.5, 36.0, 44.0)
ANCHOR = RDCurve(ANCHOR_RATES, ANCHOR_PSNR)

BD_METRICS = installed_metric_descriptions().bd_rate()


def test_a_curve_needing_80_percent_of_the_anchor_rate_has_bd_rate_minus_20_percent():
    test = RDCurve(tuple(0.8 * rate for rate in ANCHOR_RATES), ANCHOR_PSNR)
    assert bd_compare(ANCHOR, test, higher_is_better=True).bd_rate_percent == pytest.approx(-20.0, abs=0.1)


def test_a_curve_one_db_better_at_the_same_rates_has_bd_psnr_plus_one():
    test = RDCurve(ANCHOR_RATES, tuple(psnr + 1.0 for psnr in ANCHOR_PSNR))
    assert bd_compare(ANCHOR, test, higher_is_better=True).bd_quality == pytest.approx(1.0, abs=1e-9)


def test_for_a_lower_is_better_metric_a_lower_curve_has_negative_bd_rate_and_negative_bd_quality():
    anchor = RDCurve(ANCHOR_RATES, (2.0, 1.5, 1.0, 0.6, 0.3))
    test = RDCurve(ANCHOR_RATES, (1.8, 1.3, 0.8, 0.4, 0.1))
    result = bd_compare(anchor, test, higher_is_better=False)
    assert result.bd_quality == pytest.approx(-0.2, abs=1e-9)
    assert result.bd_rate_percent < 0


def test_the_rate_and_quality_overlaps_are_reported():
    test = RDCurve((0.5, 1.0, 2.0, 4.0, 8.0), (26.0, 30.0, 35.0, 42.0, 50.0))
    result = bd_compare(ANCHOR, test, higher_is_better=True)
    assert result.rate_overlap == (0.5, 4.0)
    assert result.quality_overlap == (26.0, 44.0)


def test_fewer_than_four_lossy_points_is_not_comparable():
    test = RDCurve((0.5, 1.0, 2.0), (27.0, 31.0, 36.0))
    result = bd_compare(ANCHOR, test, higher_is_better=True)
    assert (result.bd_rate_percent, result.bd_quality) == (None, None)
    assert "test has 3 lossy point(s), 4 needed" in result.note


def test_infinite_lossless_points_do_not_count_as_points():
    test = RDCurve((0.5, 1.0, 2.0, 14.0), (27.0, 31.0, 36.0, np.inf))
    assert "test has 3 lossy point(s)" in bd_compare(ANCHOR, test, higher_is_better=True).note


def test_curves_whose_rates_do_not_overlap_have_no_bd_quality():
    test = RDCurve((5.0, 6.0, 7.0, 8.0), (30.0, 33.0, 36.0, 40.0))
    result = bd_compare(ANCHOR, test, higher_is_better=True)
    assert result.bd_quality is None and result.rate_overlap is None
    assert "BD-quality not comparable: rate ranges do not overlap" in result.note


def test_curves_whose_qualities_do_not_overlap_have_no_bd_rate():
    test = RDCurve(ANCHOR_RATES, (50.0, 52.0, 54.0, 56.0, 58.0))
    result = bd_compare(ANCHOR, test, higher_is_better=True)
    assert result.bd_rate_percent is None and result.quality_overlap is None
    assert "BD-rate not comparable: quality ranges do not overlap" in result.note


def test_a_quality_that_falls_with_rate_gives_no_bd_rate():
    test = RDCurve(ANCHOR_RATES, (24.0, 30.0, 28.0, 36.0, 44.0))
    result = bd_compare(ANCHOR, test, higher_is_better=True)
    assert result.bd_rate_percent is None
    assert "quality does not improve strictly with rate" in result.note


def _summary(curves: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]) -> pd.DataFrame:
    rows = [{"codec": codec, "point": f"p{index}", "bpp_mean": rate, "psnr_mean": psnr}
            for codec, (rates, psnrs) in curves.items() for index, (rate, psnr) in enumerate(zip(rates, psnrs))]
    return pd.DataFrame(rows)


def test_the_table_compares_every_other_codec_and_every_reference_with_the_anchor():
    summary = _summary({"anchor": (ANCHOR_RATES, ANCHOR_PSNR),
                        "better": (tuple(0.8 * rate for rate in ANCHOR_RATES), ANCHOR_PSNR)})
    reference = ReferenceCurve("published", "", {"bpp": ANCHOR_RATES, "psnr": tuple(p + 1 for p in ANCHOR_PSNR)})
    table = bd_rate_table(summary, pd.DataFrame(), "anchor", BD_METRICS, [reference])
    assert list(zip(table["codec"], table["source"], table["pol"])) == [
        ("better", "codec", "all"), ("published", "reference", "all")]
    assert table["bd_rate_percent"].iloc[0] == pytest.approx(-20.0, abs=0.1)
    assert table["bd_quality"].iloc[1] == pytest.approx(1.0)


def test_a_point_the_codec_declares_lossless_is_left_out_even_with_a_finite_psnr():
    rates, psnrs = ANCHOR_RATES + (14.0,), ANCHOR_PSNR + (107.0,)
    summary = _summary({"anchor": (rates, psnrs), "same": (rates, psnrs)})
    summary["lossless"] = summary["bpp_mean"] == 14.0
    table = bd_rate_table(summary, pd.DataFrame(), "anchor", BD_METRICS)
    assert table["rate_high"].iloc[0] == 4.0
    assert table["anchor_points"].iloc[0] == 5


def test_a_match_bpp_point_on_the_rate_of_a_native_point_stays_out_of_the_curve():
    """A 2-bit quantizer matched to 2 bpp is its bits=2 point again: two points at one rate break PCHIP."""
    summary = _summary({"anchor": (ANCHOR_RATES, ANCHOR_PSNR), "same": (ANCHOR_RATES, ANCHOR_PSNR)})
    duplicate = summary[summary["codec"] == "same"].iloc[[1]].assign(point="match_bpp=0.5", target_bpp=0.5)
    table = bd_rate_table(pd.concat([summary, duplicate], ignore_index=True), pd.DataFrame(), "anchor", BD_METRICS)
    assert table["test_points"].iloc[0] == 5 and table["bd_rate_percent"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_the_table_is_empty_when_the_anchor_has_no_results():
    summary = _summary({"other": (ANCHOR_RATES, ANCHOR_PSNR)})
    assert bd_rate_table(summary, pd.DataFrame(), "jpeg2000", BD_METRICS).empty


def test_the_anchor_defaults_to_jpeg2000(write_config):
    config, _ = load_config(write_config(MINIMAL_CONFIG))
    assert config.anchors == ("jpeg2000",)


def test_an_anchor_that_is_not_a_configured_codec_is_a_one_line_error_naming_key_and_file(write_config):
    path = write_config(MINIMAL_CONFIG + "anchor: jpeg3000\n")
    with pytest.raises(UserError, match=rf"{path}: anchor: 'jpeg3000' is not a configured codec"):
        load_config(path)


def test_a_list_of_anchors_is_read_in_order(write_config):
    config, _ = load_config(write_config(MINIMAL_CONFIG.replace("points: [{bits: 4}, {bits: 8}]",
                                                                "points: [{bits: 4}, {bits: 8}]\n"
                                                                "  - name: quantize_zlib\n"
                                                                "    points: [{bits: 4}]")
                                         + "anchor: [quantize_zlib, quantize]\n"))
    assert config.anchors == ("quantize_zlib", "quantize")


def test_an_unconfigured_codec_in_an_anchor_list_is_a_one_line_error(write_config):
    path = write_config(MINIMAL_CONFIG + "anchor: [quantize, avif]\n")
    with pytest.raises(UserError, match=rf"{path}: anchor: 'avif' is not a configured codec"):
        load_config(path)
