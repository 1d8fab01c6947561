"""The README's table of where each codec stands is the example report's BD-rates, so a regenerated report that the
README was not updated for fails here rather than leaving stale figures in front of every reader."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BD_RATES = ROOT / "reports" / "example" / "bd_rate.csv"
HEADER = "| codec | vs JPEG 2000 | vs AVIF | vs HEVC intra |"
ANCHORS = ("jpeg2000", "avif", "hevc")
CODECS = {"learned": "autoencoder_checkerboard", "HEVC intra": "hevc", "AVIF": "avif", "JPEG 2000": "jpeg2000",
          "HTJ2K": "htj2k", "SPERR": "sperr", "JPEG XL": "jpegxl", "SZ3": "sz3", "quantize + zlib": "quantize_zlib",
          "block-adaptive quantization": "baq", "LERC": "lerc", "bit-packed quantization": "quantize", "ZFP": "zfp"}
"""The README's name of each codec (its row label up to the first bracket) and the codec it is."""


def readme_table() -> dict[str, list[str]]:
    """Each row's codec and its three cells, as written."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        label, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[CODECS[re.split(r" \(", label)[0]]] = cells
    return rows


def bd_rate(bd_rates: pd.DataFrame, codec: str, anchor: str, pol: str = "all", metric: str = "psnr") -> str:
    """The report's BD-rate as the README writes it: one decimal, a sign, a real minus sign."""
    row = bd_rates[(bd_rates["codec"] == codec) & (bd_rates["anchor"] == anchor) & (bd_rates["pol"] == pol)
                   & (bd_rates["metric"] == metric)]
    return f"{float(row['bd_rate_percent'].iloc[0]):+.1f}".replace("-", "−")


def report_cell(bd_rates: pd.DataFrame, codec: str, anchor: str) -> str:
    """A cell of the README's table: the BD-rate by PSNR over all tiles, or a dash against itself."""
    return "–" if codec == anchor else f"{bd_rate(bd_rates, codec, anchor)} %"


@pytest.fixture(scope="module")
def bd_rates() -> pd.DataFrame:
    return pd.read_csv(BD_RATES)


def test_the_readme_lists_every_codec_of_the_example_report(bd_rates):
    assert set(readme_table()) == set(bd_rates["codec"]) | set(ANCHORS)


def test_every_bd_rate_in_the_readme_table_is_the_example_reports(bd_rates):
    for codec, cells in readme_table().items():
        assert cells == [report_cell(bd_rates, codec, anchor) for anchor in ANCHORS], codec


def test_the_learned_codecs_row_for_the_test_chips_is_the_example_reports(bd_rates):
    """The row of the leave-one-source-out table for the test chips: by PSNR, by RMSE in brackets, then VV / VH."""
    def cell(anchor: str, pol: str, metric: str) -> str:
        return bd_rate(bd_rates, CODECS["learned"], anchor, pol, metric)

    expected = " | ".join(f"{cell(anchor, 'all', 'psnr')} % ({cell(anchor, 'all', 'rmse_db')} %); "
                          f"{cell(anchor, 'VV', 'psnr')} / {cell(anchor, 'VH', 'psnr')} %" for anchor in ANCHORS[:2])
    row = next(line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| the test chips"))

    assert row.endswith(f"| {expected} |")
