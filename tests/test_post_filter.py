"""Each tile's post-filter: a 7x7 diamond Wiener filter that the encoder fits to the decoded tile, writes in 16
bytes where it pays for them at the model's trade-off, and the decoder applies to its network's output."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.runtime import entropy_coder
from harness_codecs._autoencoder.runtime.complexity import counting_macs
from harness_codecs._autoencoder.runtime.entropy_stream import INTEGER_PRIOR_FLAG
from harness_codecs._autoencoder.runtime.post_filter import (
    FILTER_BYTES,
    PostFilter,
    PostFilters,
    fitted,
    worth_its_bytes,
)
from harness_codecs.autoencoder_entropy import CheckerboardAutoencoder
from scipy import ndimage

from tests.test_autoencoder_entropy import make_entropy_checkpoint, speckle_tile

DIAMOND = np.add.outer(np.abs(np.arange(-3, 4)), np.abs(np.arange(-3, 4))) <= 3


def blurred(tile: np.ndarray) -> np.ndarray:
    """What a decoder that smooths a little too much, darkens a little and leaves coding noise (about 40 dB) would
    give."""
    kernel = np.array([[0, 0.03, 0], [0.03, 0.88, 0.03], [0, 0.03, 0]])
    noise = np.random.default_rng(1).normal(0.0, 0.01, tile.shape)
    return (ndimage.correlate(tile.astype(np.float64), kernel, mode="nearest") - 0.01 + noise).astype(np.float32)


def filtered(decoded: np.ndarray, post_filter: PostFilter | None) -> np.ndarray:
    with torch.inference_mode():
        return PostFilters()(torch.from_numpy(decoded)[None, None], [post_filter])[0, 0].numpy()


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture(scope="module")
def filtering_checkpoint(tmp_path_factory):
    """An untrained single-rate checkerboard model whose trade-off weighs distortion so much that a tile's filter
    pays for its bytes."""
    return make_entropy_checkpoint(tmp_path_factory.mktemp("post-filter") / "checkerboard.pt", "checkerboard",
                                   training={"lmbda": 1e6})


def test_the_fitted_filter_takes_out_more_than_half_the_error_of_a_blur_and_an_offset():
    tile = speckle_tile((64, 64))
    decoded = blurred(tile)

    assert mse(filtered(decoded, fitted(tile, decoded)), tile) < 0.5 * mse(decoded, tile)


def test_the_stored_filter_is_the_least_squares_diamond_filter_within_its_rounding():
    tile, decoded = speckle_tile((64, 64)), blurred(speckle_tile((64, 64)))
    padded = np.pad(decoded.astype(np.float64), 3, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7))[..., DIAMOND].reshape(-1, DIAMOND.sum())
    design = np.column_stack([windows, np.ones(len(windows))])  # 25 free taps and a bias, no symmetry imposed
    best = design @ np.linalg.lstsq(design, tile.ravel().astype(np.float64), rcond=None)[0]

    assert mse(filtered(decoded, fitted(tile, decoded)), tile) < 1.01 * mse(best, tile.ravel())


def test_the_filter_is_a_correlation_with_its_kernel_plus_its_bias():
    decoded = speckle_tile((40, 56))
    post_filter = PostFilter(exponent=9, coefficients=(-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7), bias=-300)
    kernel = post_filter.kernel().double().numpy()
    expected = ndimage.correlate(decoded.astype(np.float64), kernel, mode="nearest") + post_filter.bias * 2.0**-16

    np.testing.assert_allclose(filtered(decoded, post_filter), expected, atol=2e-6)
    assert (kernel != 0).sum() == DIAMOND.sum() and np.array_equal(kernel, kernel[::-1, ::-1])


def test_a_filter_is_16_bytes_and_reads_back_as_written():
    post_filter = PostFilter(exponent=12, coefficients=(127, -127, *range(11)), bias=-32768)

    assert len(post_filter.to_bytes()) == FILTER_BYTES == 16
    assert PostFilter.from_bytes(post_filter.to_bytes()) == post_filter


def test_any_16_bytes_give_a_finite_output():
    rng = np.random.default_rng(0)
    for _ in range(50):
        post_filter = PostFilter.from_bytes(rng.integers(0, 256, FILTER_BYTES, dtype=np.uint8).tobytes())
        assert np.isfinite(filtered(speckle_tile((16, 16)), post_filter)).all()


def test_a_filter_is_kept_only_where_it_pays_for_its_bytes_at_the_trade_off():
    tile = speckle_tile((64, 64))
    decoded = blurred(tile)
    candidate = fitted(tile, decoded)
    output = torch.from_numpy(decoded)[None, None]

    assert worth_its_bytes(tile, output, candidate, lmbda=1e4, apply=PostFilters())
    assert not worth_its_bytes(tile, output, candidate, lmbda=1e-2, apply=PostFilters())


def test_filtering_costs_a_7x7_convolution_per_pixel_of_each_filtered_tile():
    decoded = torch.zeros(3, 1, 32, 32)
    with counting_macs() as macs, torch.inference_mode():
        PostFilters()(decoded, [None, PostFilter(10, (1,) * 13, 0), PostFilter(10, (2,) * 13, 0)])

    assert macs[0] == 49 * 2 * 32 * 32


def test_a_stream_with_a_filter_decodes_to_the_network_output_filtered_then_clipped(filtering_checkpoint):
    codec = CheckerboardAutoencoder(checkpoint=str(filtering_checkpoint))
    unfiltered = copy.copy(codec)
    unfiltered.coder = codec.coder.without_post_filter()
    tile = speckle_tile((48, 64))
    stream, plain = codec.encode(tile), unfiltered.encode(tile)
    post_filter = codec.coder.unpacked(stream)[1].post_filter
    reading, = codec.coder.read([stream], [tile.shape])
    network_output = codec.coder.network_output(reading.latent[None], [reading.quality])[0, 0, :48, :64].numpy()

    assert post_filter is not None and len(stream) == len(plain) + FILTER_BYTES
    np.testing.assert_allclose(codec.decode(stream, tile.shape), np.clip(filtered(network_output, post_filter), 0, 1),
                               atol=1e-6)
    assert mse(codec.decode(stream, tile.shape), tile) < mse(unfiltered.decode(plain, tile.shape), tile)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 2)])
def test_tiles_smaller_than_the_filter_get_one_too(filtering_checkpoint, shape, monkeypatch):
    monkeypatch.setattr(entropy_coder, "worth_its_bytes", lambda *args: True)
    codec = CheckerboardAutoencoder(checkpoint=str(filtering_checkpoint))
    tile = speckle_tile(shape)
    stream = codec.encode(tile)

    assert codec.coder.unpacked(stream)[1].post_filter is not None
    assert codec.decode(stream, shape).shape == shape and np.isfinite(codec.decode(stream, shape)).all()


def test_the_encoder_fits_no_filter_where_the_trade_off_is_unknown(tmp_path):
    codec = CheckerboardAutoencoder(checkpoint=str(make_entropy_checkpoint(tmp_path / "model.pt", "checkerboard")))

    assert codec.coder.unpacked(codec.encode(speckle_tile((64, 64))))[1].post_filter is None


def test_streams_written_before_the_integer_prior_are_refused_in_one_line(filtering_checkpoint):
    codec = CheckerboardAutoencoder(checkpoint=str(filtering_checkpoint))
    tile = speckle_tile((32, 48))
    current = codec.encode(tile)
    old = bytearray(current)  # the same bytes as the version before the flag: its tables would be picked otherwise
    old[0] = current[0] & ~INTEGER_PRIOR_FLAG

    assert current[0] & INTEGER_PRIOR_FLAG
    with pytest.raises(ValueError, match=rf"format version {old[0]}, written before this decoder's integer prior "
                                         r"networks, whose tables it cannot reproduce: encode the tile again$"):
        codec.decode(bytes(old), tile.shape)