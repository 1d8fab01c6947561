"""CompressAI-compatible JSON: our curves written in its layout, published curves read as references."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness import UserError
from harness.curves import ReferenceCurve, read_compressai_json, write_compressai_json
from harness.reporting.compressai import curves_from_summary
from harness.config import load_config
from tests.conftest import MINIMAL_CONFIG

VALID = {"name": "bmshj2018", "description": "published", "results": {"bpp": [0.2, 0.4], "psnr": [28.0, 31.0]}}


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "codec": ["j2k", "j2k", "j2k"],
        "point": ["bpp=1.0", "lossless=True", "bpp=0.5"],
        "lossless": [False, True, False],
        "bpp_mean": [1.0, 14.0, 0.5],
        "psnr_mean": [30.0, np.inf, 27.0],
        "ms_ssim_mean": [0.98, 1.0, np.nan],
    })


def test_an_exported_curve_is_sorted_by_bpp_and_uses_compressai_keys(tmp_path):
    path = tmp_path / "j2k.json"
    write_compressai_json(curves_from_summary(_summary(), "unit")[0], path)
    document = json.loads(path.read_text())
    assert document["name"] == "j2k"
    assert document["results"]["bpp"] == [0.5, 1.0]
    assert document["results"]["psnr"] == [27.0, 30.0]
    assert document["results"]["ms-ssim"] == [None, 0.98]


def test_lossless_points_are_left_out_of_the_export_and_named_in_the_description():
    curve = curves_from_summary(_summary(), "unit")[0]
    assert 14.0 not in curve.results["bpp"]
    assert "lossless point(s) excluded: lossless=True" in curve.description


def test_match_bpp_points_are_left_out_of_the_export():
    summary = pd.concat([_summary(), pd.DataFrame({"codec": ["j2k"], "point": ["match_bpp=0.75"], "target_bpp": [0.75], "bpp_mean": [0.74],
                                                   "psnr_mean": [28.5], "ms_ssim_mean": [0.97]})])
    assert curves_from_summary(summary, "unit")[0].results["bpp"] == (0.5, 1.0)


def test_a_written_curve_reads_back_the_same(tmp_path):
    curve = ReferenceCurve("mine", "d", {"bpp": (0.5, 1.0), "psnr": (27.0, 30.0), "ms_ssim": (math.nan, 0.98)})
    write_compressai_json(curve, tmp_path / "c.json")
    read = read_compressai_json(tmp_path / "c.json")
    assert (read.name, read.description, read.results["psnr"]) == ("mine", "d", (27.0, 30.0))
    assert math.isnan(read.results["ms_ssim"][0])


def test_compressai_rgb_keys_are_read_as_our_metric_names(tmp_path):
    path = tmp_path / "rgb.json"
    path.write_text(json.dumps({"name": "x", "results": {"bpp": [1.0], "psnr-rgb": [30.0], "ms-ssim-rgb": [0.9]}}))
    assert set(read_compressai_json(path).results) == {"bpp", "psnr", "ms_ssim"}


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not valid JSON at line 1, column 2"),
    ("[1, 2]", "expected a JSON object with name and results, got list"),
    (json.dumps({"results": VALID["results"]}), "name: expected a non-empty string"),
    (json.dumps({"name": "x", "results": {"psnr": [1.0]}}), "results.bpp: missing"),
    (json.dumps({"name": "x", "results": {"bpp": [1.0, 2.0], "psnr": [1.0]}}), "results.psnr: has 1 values but results.bpp has 2"),
    (json.dumps({"name": "x", "results": {"bpp": [1.0], "psnr": ["high"]}}), "results.psnr[0]: expected a number, got 'high'"),
])
def test_a_malformed_reference_is_one_line_naming_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UserError) as raised:
        read_compressai_json(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_config_references_are_resolved_relative_to_the_config(write_config, tmp_path):
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "published.json").write_text(json.dumps(VALID))
    config, _ = load_config(write_config(MINIMAL_CONFIG + "references: [refs/published.json]\n"))
    assert config.references == (str((tmp_path / "refs" / "published.json").resolve()),)


def test_a_missing_reference_file_is_an_error_naming_the_key(write_config):
    path = write_config(MINIMAL_CONFIG + "references: [nowhere.json]\n")
    with pytest.raises(UserError, match=rf"{path}: references\[0\]: reference file .*nowhere.json' not found"):
        load_config(path)


def test_a_malformed_reference_file_fails_when_the_config_loads(write_config, tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match=r"bad.json: not valid JSON"):
        load_config(write_config(MINIMAL_CONFIG + "references: [bad.json]\n"))


def test_a_point_its_codec_declares_lossless_is_left_out_even_with_a_finite_psnr():
    """JPEG XL at distance 0 is exact on 16-bit samples: 107 dB, not inf, and no label says lossless."""
    summary = pd.DataFrame({"codec": ["jxl"] * 3, "point": ["distance=1", "distance=0", "distance=2"],
                            "bpp_mean": [2.3, 13.0, 1.4], "psnr_mean": [38.2, 107.2, 33.1],
                            "lossless": [False, True, False]})
    assert curves_from_summary(summary, "unit")[0].results["bpp"] == (1.4, 2.3)
