"""Specification of the `jpeg2000` codec plugin (glymur over OpenJPEG)."""

from __future__ import annotations

import warnings

import glymur
import numpy as np
import pluggy
import pytest
import rasterio
from harness_codecs import jpeg2000
from harness_codecs.jpeg2000 import Jpeg2000

from harness import hookspecs
from harness.api import PROJECT_NAME
from harness.sar import db_to_linear, linear_to_db, normalize_db
from harness.testing import unavailable_without

TARGET_BPPS = [0.25, 0.5, 1.0, 2.0]
LOOKS = 4.4
VV_RANGE_DB = (-25.0, 5.0)
MAX_SAMPLE = 2**16 - 1
START_OF_CODESTREAM = b"\xff\x4f"


def speckled_tile(size: int = 256, seed: int = 0) -> np.ndarray:
    """Piecewise-constant backscatter under 4.4-look speckle, normalized as the harness does."""
    rng = np.random.default_rng(seed)
    region_db = rng.uniform(-22.0, 0.0, size=(8, 8))
    mean_db = np.kron(region_db, np.ones((size // 8, size // 8)))
    intensity = db_to_linear(mean_db) * rng.gamma(LOOKS, 1.0 / LOOKS, size=mean_db.shape)
    return normalize_db(linear_to_db(intensity), VV_RANGE_DB)


@pytest.fixture(scope="module")
def tile() -> np.ndarray:
    return speckled_tile()


@pytest.fixture(scope="module")
def streams(tile) -> dict[float, bytes]:
    return {bpp: Jpeg2000(bpp=bpp).encode(tile) for bpp in TARGET_BPPS}


@pytest.fixture
def scratch_dir(tmp_path, monkeypatch):
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(jpeg2000, "SCRATCH_DIR", folder)
    return folder


def achieved_bpp(stream: bytes, tile: np.ndarray) -> float:
    return 8 * len(stream) / tile.size


def read_with_gdal(stream: bytes, folder) -> np.ndarray:
    """GDAL's JP2OpenJPEG driver links its own OpenJPEG build: a decoder that shares no code path with ours."""
    path = folder / "independent.j2k"
    path.write_bytes(stream)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, driver="JP2OpenJPEG") as dataset:
            return dataset.read(1)


@pytest.mark.parametrize("target_bpp", TARGET_BPPS)
def test_achieved_rate_is_at_most_the_target_and_within_10_percent_of_it(tile, streams, target_bpp):
    assert 0.9 * target_bpp <= achieved_bpp(streams[target_bpp], tile) <= target_bpp


@pytest.mark.parametrize("options", [{"bpp": 0.5}, {"lossless": True}])
def test_an_independent_gdal_decoder_reads_the_same_image(tile, tmp_path, options):
    codec = Jpeg2000(**options)
    stream = codec.encode(tile)

    independent = (read_with_gdal(stream, tmp_path) / MAX_SAMPLE).astype(np.float32)

    assert np.array_equal(independent, codec.decode(stream, tile.shape))


def test_stream_is_a_raw_codestream_without_jp2_boxes(streams):
    assert streams[0.25].startswith(START_OF_CODESTREAM)


def test_stream_carries_no_comment_marker(streams, tmp_path):
    path = tmp_path / "tile.j2k"
    path.write_bytes(streams[0.25])

    markers = [segment.marker_id for segment in glymur.Jp2k(path).get_codestream().segment]

    assert "CME" not in markers
    assert "SIZ" in markers


def test_smallest_supported_tile_round_trips():
    side = Jpeg2000.min_tile_size
    small = speckled_tile(size=side)

    decoded = Jpeg2000(bpp=2.0).decode(Jpeg2000(bpp=2.0).encode(small), small.shape)

    assert decoded.shape == (side, side)


def test_tile_smaller_than_the_minimum_raises_naming_the_minimum():
    side = Jpeg2000.min_tile_size

    with pytest.raises(ValueError, match=f"at least {side}x{side}"):
        Jpeg2000(bpp=1.0).encode(np.zeros((side - 1, 64), dtype=np.float32))


def test_a_header_claiming_a_huge_image_is_refused_before_decoding(streams):
    """Xsiz and Ysiz at bytes 8-15: a damaged header must not make OpenJPEG allocate 30000 x 30000 pixels."""
    bomb = streams[1.0][:8] + (30000).to_bytes(4, "big") * 2 + streams[1.0][16:]
    with pytest.raises(ValueError, match="claims a 30000x30000 image"):
        Jpeg2000(bpp=1.0).decode(bomb, (256, 256))


@pytest.mark.parametrize(
    "garbage",
    [bytes(range(256)) * 4, START_OF_CODESTREAM + bytes(500)],
    ids=["noise", "soc-then-zeros"],
)
def test_garbage_bytes_raise_value_error(garbage):
    with pytest.raises(ValueError):
        Jpeg2000(bpp=1.0).decode(garbage, (256, 256))


def test_jp2_file_format_is_rejected_as_not_a_raw_codestream(tile, tmp_path):
    path = tmp_path / "boxed.jp2"
    glymur.Jp2k(path, data=np.round(tile * MAX_SAMPLE).astype(np.uint16))

    with pytest.raises(ValueError, match="raw JPEG 2000 codestream"):
        Jpeg2000(lossless=True).decode(path.read_bytes(), tile.shape)


def test_encode_and_decode_leave_no_file_in_the_scratch_folder(tile, scratch_dir):
    codec = Jpeg2000(bpp=1.0)

    codec.decode(codec.encode(tile), tile.shape)

    assert list(scratch_dir.iterdir()) == []


def test_failed_decode_leaves_no_file_in_the_scratch_folder(streams, scratch_dir):
    with pytest.raises(ValueError):
        Jpeg2000(bpp=1.0).decode(streams[1.0][:150], (256, 256))

    assert list(scratch_dir.iterdir()) == []


@pytest.mark.parametrize(("options", "named"), [({}, "bpp"), ({"bpp": 1.0, "lossless": True}, "not both")])
def test_a_point_needs_either_a_bpp_or_lossless(options, named):
    with pytest.raises(ValueError, match=named):
        Jpeg2000(**options)


def test_precision_reports_16_bit_samples():
    assert Jpeg2000(bpp=1.0).precision == "uint16"


def test_plugin_registers_the_codec_under_its_name():
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(jpeg2000)

    registered = {codec.name: codec for batch in manager.hook.harness_codecs() for codec in batch}

    assert registered == {"jpeg2000": Jpeg2000}


def test_without_glymur_the_codec_still_registers_with_the_install_command():
    assert unavailable_without("harness_codecs.jpeg2000", "glymur") == {"jpeg2000": jpeg2000.INSTALL_HINT}
