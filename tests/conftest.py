"""Shared fixtures: small rasters and configs that the tests write themselves."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

# Hermetic tests: an unrelated package's installed entry point must not change what the tests measure.
# (test_plugins.py turns entry points back on where it tests them.)
os.environ["HARNESS_LOAD_ENTRY_POINTS"] = "0"

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHIPPED_DATA = Path(__file__).resolve().parents[1] / "data"
"""The real Sentinel-1 files shipped in the repository (data/README.md)."""
NORMALIZATION = {"VV": (-25.0, 5.0), "VH": (-32.0, -2.0)}


def dataset_settings(tmp_path: Path, **overrides):
    """DatasetSettings for small test rasters; keyword arguments replace the defaults."""
    from harness import DatasetSettings

    values = dict(tile_size=32, max_tiles=3, polarisations=("VV", "VH"), normalization=NORMALIZATION, seed=0,
                  min_valid_fraction=0.5, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    values.update(overrides)
    return DatasetSettings(**values)


def write_geotiff(path: Path, bands: list[np.ndarray], nodata: float | None = None,
                  descriptions: tuple[str, ...] | None = None) -> Path:
    """A small georeferenced GeoTIFF with the given bands (all of one dtype)."""
    # here, not at the top: the GPU machine's check runs the `gpu` tests without rasterio (its 39 MB wheel does not
    # fit beside the repository in what travels there), and the one that needs a GeoTIFF skips
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    height, width = bands[0].shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": len(bands),
               "dtype": bands[0].dtype.name, "crs": "EPSG:32631",
               "transform": from_origin(500_000, 5_000_000, 10, 10), "nodata": nodata}
    with rasterio.open(path, "w", **profile) as raster:
        for index, band in enumerate(bands, start=1):
            raster.write(band, index)
        if descriptions:
            raster.descriptions = descriptions
    return path


def speckled_db(rng: np.random.Generator, shape: tuple[int, int], mean_db: float) -> np.ndarray:
    """Piecewise-constant backscatter with Gamma speckle (4.4 looks), in dB."""
    levels = np.where(np.arange(shape[1]) < shape[1] // 2, mean_db - 5.0, mean_db + 3.0)
    intensity = 10 ** (levels / 10) * rng.gamma(4.4, 1 / 4.4, size=shape)
    return (10 * np.log10(intensity)).astype(np.float32)


@pytest.fixture
def dual_pol_geotiff(tmp_path: Path) -> Path:
    """A 128x128 VV/VH dB GeoTIFF with a NaN no-data strip on the left."""
    rng = np.random.default_rng(7)
    vv = speckled_db(rng, (128, 128), -11.0)
    vh = speckled_db(rng, (128, 128), -18.0)
    for band in (vv, vh):
        band[:, :20] = np.nan
    return write_geotiff(tmp_path / "scene.tif", [vv, vh], nodata=float("nan"), descriptions=("VV", "VH"))


@pytest.fixture
def read_windows(monkeypatch) -> list:
    """Records the ``window`` of every raster read, to prove a reader never loads a whole scene."""
    import rasterio

    windows = []
    original_read = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        windows.append(kwargs.get("window"))
        return original_read(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return windows


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a benchmark YAML into tmp_path; the text is dedented."""

    def write(text: str, name: str = "bench.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


IN_PROCESS = "isolate: false"
"""What a test config's ``timing`` section adds to measure its codecs in the test's own process. A run isolates its
codecs in a worker process by default (``harness.isolation``), and starting one costs some 3 to 5 s on the 2-core VM:
so the tests that run many tiny benchmarks (those built on ``MINIMAL_CONFIG``, test_runner, test_match_bpp,
test_distributed, test_timing_trust) or test what a run reads and reports rather than how it calls the codecs
(test_html_report, test_real_data_runs, the example runs of test_safe_dataset, test_plugins) opt out, as do those
that look inside the codec while it runs (a test plugin's counters in test_streaming and test_runner, a codec writing
into its read-only input). The isolated default is tested in test_isolation, and runs in test_end_to_end's default
run, test_plugin_example, test_packaging and the training tests' benchmark runs."""

MINIMAL_CONFIG = """\
name: unit
dataset:
  kind: geotiff
  paths: [scene.tif]
  tile_size: 32
  max_tiles: 3
  polarisations: [VV, VH]
normalization:
  VV: [-25, 5]
  VH: [-32, -2]
codecs:
  - name: quantize
    points: [{bits: 4}, {bits: 8}]
timing: {warmup: 0, repeats: 1, isolate: false}
"""


def run_rows(config_path: Path, run_dir: Path) -> list[dict[str, str]]:
    """Run a config into ``run_dir`` (no progress bar) and return its results rows as text."""
    import csv

    from harness.config import load_config
    from harness.run import RunOptions, run_benchmark

    config, registry = load_config(config_path)
    run_benchmark(config, registry, RunOptions(run_dir=run_dir, progress=False))
    with (run_dir / "results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))
