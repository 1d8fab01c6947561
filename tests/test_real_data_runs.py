"""Benchmarks over the real Sentinel-1 material shipped in data/, end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from tests.conftest import SHIPPED_DATA

SAFE_PRODUCT = next(iter(sorted((SHIPPED_DATA / "train" / "s1_grd_safe").glob("*.SAFE"))))
FLOOD_CHIPS = SHIPPED_DATA / "test" / "sen1floods11"

REAL_CONFIG = """\
name: real
dataset:
  {dataset}
  tile_size: 256
  max_tiles: 3
  polarisations: {polarisations}
  min_valid_fraction: 0.9
normalization: {{VV: [-25, 5], VH: [-32, -2]}}
codecs:
  - name: jpeg2000
    points: [{{bpp: 1.0}}]
  - name: quantize
    points: [{{bits: 6}}]
timing: {{warmup: 0, repeats: 1, isolate: false}}  # tests.conftest.IN_PROCESS: these test the data, not the codec calls
"""


def run_real(tmp_path: Path, dataset: str, polarisations: str) -> pd.DataFrame:
    config = tmp_path / "real.yaml"
    config.write_text(REAL_CONFIG.format(dataset=dataset, polarisations=polarisations))
    assert main(["run", str(config), "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    return pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)


def test_a_benchmark_runs_on_the_real_calibrated_safe_product(tmp_path):
    with pytest.warns(UserWarning, match="reading it as a crop"):
        results = run_real(tmp_path, f"kind: safe\n  paths: [{SAFE_PRODUCT}]\n  calibration: sigma0", "[VH]")
    assert len(results) == 2 * 3 and (results["error"] == "").all()


def test_a_benchmark_runs_on_the_real_db_geotiff_chips(tmp_path):
    results = run_real(tmp_path, f"kind: geotiff\n  paths: [{FLOOD_CHIPS}]\n  units: db", "[VV, VH]")
    assert len(results) == 2 * 3 * 2 and (results["error"] == "").all()
    assert results["scene"].nunique() == 3
