"""The default benchmark's streams and non-timing results stay what they were: a refactoring that changes one fails
here (``tests/stored_results.py`` says how a deliberate change rewrites the stored copy).

A codec's streams are compared where the libraries that make them have the stored copy's versions (another libavif
may code the same tile into other bytes, and that is not this project's change); the project's own codecs and the
learned codecs always. The results rows are compared exactly where the numerical libraries and the CPU are the
stored copy's, and otherwise to what float32 arithmetic in another order moves (measured between an Intel Xeon and
an AMD EPYC with the same libraries: at most 5e-7 relative in PSNR, SSIM and MS-SSIM, 3e-5 dB in the CFAR peak
change, all from tiles normalized with other log10 kernels).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from tests import stored_results

CODEC_LIBRARIES = {
    "jpeg2000": ("glymur", "openjpeg"), "htj2k": ("imagecodecs",), "avif": ("imagecodecs",),
    "jpegxl": ("imagecodecs",), "sz3": ("imagecodecs",), "sperr": ("imagecodecs",), "zfp": ("imagecodecs",),
    "lerc": ("imagecodecs",), "hevc": ("pillow-heif",), "quantize_zlib": ("numpy",),
}
"""The libraries that make a codec's bytes, beyond numpy, torch and constriction (the learned codecs' fixed-point
networks and range coder give the same bytes on any version, which their own tests hold)."""
NUMERICAL = ("numpy", "scipy", "scikit-image", "torch", "pytorch-msssim", "cpu")
"""What the scores' last bits depend on."""


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    return stored_results.subset_config(tmp_path_factory.mktemp("stored"))


@pytest.fixture(scope="module")
def measured_streams(subset) -> dict[str, list[dict[str, str]]]:
    return by_codec(stored_results.stream_digests(subset))


@pytest.fixture(scope="module")
def versions_differing() -> set[str]:
    stored = json.loads(stored_results.VERSIONS.read_text())
    return {name for name, version in stored_results.made_with().items() if stored.get(name) != version}


def by_codec(records: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    grouped = defaultdict(list)
    for record in records:
        grouped[record["codec"]].append(record)
    return grouped


def test_every_stored_codec_is_still_in_the_default_benchmark(measured_streams):
    stored = by_codec(stored_results.read_records(stored_results.STREAMS))
    assert sorted(measured_streams) == sorted(stored)


def test_default_streams_are_byte_identical_to_the_stored_copy(measured_streams, versions_differing):
    stored = by_codec(stored_results.read_records(stored_results.STREAMS))
    measured = measured_streams
    compared = [codec for codec in stored if not versions_differing & set(CODEC_LIBRARIES.get(codec, ()))]
    assert "autoencoder_checkerboard" in compared and "quantize" in compared
    changed = [f"{new['codec']} {new['point']} {new['tile_id']}: {old['bytes']} -> {new['bytes']} bytes"
               for codec in compared for old, new in zip(stored[codec], measured[codec]) if old != new]
    assert [len(measured[codec]) for codec in compared] == [len(stored[codec]) for codec in compared]
    assert not changed, f"{len(changed)} streams differ from tests/stored (first: {changed[:3]})"


def same_cell(old: str, new: str, exact: bool) -> bool:
    if old == new:
        return True
    try:
        a, b = float(old), float(new)
    except ValueError:
        return False
    return not exact and (math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-4) or (math.isnan(a) and math.isnan(b)))


def test_default_results_match_the_stored_copy_in_every_non_timing_column(subset, tmp_path, versions_differing):
    stored = stored_results.read_records(stored_results.RESULTS)
    measured = stored_results.result_rows(subset, tmp_path / "run")
    exact = not versions_differing & set(NUMERICAL)
    assert len(measured) == len(stored)
    changed = [f"{old['codec']} {old['point']} {old['tile_id']} {column}: {old[column]} -> {new.get(column)}"
               for old, new in zip(stored, measured) for column in old
               if not same_cell(old[column], new.get(column, "<missing>"), exact)]
    assert not changed, f"{len(changed)} cells differ from tests/stored (first: {changed[:3]})"
