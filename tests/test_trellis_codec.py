"""The checkerboard codec with ``quantizer: trellis``: its streams, their header and their refusals."""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from harness_codecs._autoencoder.entropy_coding.scale_shift import ShiftChooser
from harness_codecs._autoencoder.entropy_coding.tables import (
    SCALE_TABLE,
    EntropyTables,
    gaussian_tables,
    odd_gaussian_tables,
)
from harness_codecs._autoencoder.entropy_coding.trellis import TrellisSettings
from harness_codecs._autoencoder.model.autoencoder import Autoencoder, spec_for
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint, save_checkpoint
from harness_codecs._autoencoder.runtime.entropy_stream import HEADER_BYTES, TRELLIS_OFFSET
from harness_codecs.autoencoder_entropy import codec_class

CheckerboardAutoencoder = codec_class("checkerboard")
TRELLIS_QUALITIES, DOUBLE_STEP_CODES = (1, 2), (77, 115)


def write_checkpoint(path: Path, trellis: bool) -> Path:
    """A tiny variable-rate checkerboard model (untrained, its latent scaled up to several levels), with ``Q1``
    tables and trellis settings at qualities 1 and 2 where ``trellis``; the same weights either way."""
    torch.manual_seed(0)
    spec = spec_for("tiny", 8, entropy="checkerboard", lmbdas=(10.0, 40.0, 160.0))
    model = Autoencoder(spec)
    with torch.no_grad():
        model.encoder[-1].weight.mul_(30.0)
        model.encoder[-1].bias.mul_(30.0)
    tables = model.prior.tables()
    if trellis:
        settings = TrellisSettings(np.array(TRELLIS_QUALITIES), np.array(DOUBLE_STEP_CODES),
                                   np.ones((2, spec.latent_channels)), np.array([0.02, 0.02]))
        tables = dataclasses.replace(tables, odd=odd_gaussian_tables(tables.scales), trellis=settings)
    save_checkpoint(Checkpoint(spec=spec, bits=0, latent_range=(-1.0, 1.0), normalization={"VV": (-25.0, 5.0)},
                               state_dict=model.state_dict(), entropy_tables=tables.to_tensors()), path)
    return path


@pytest.fixture(scope="module")
def trellis_checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("trellis") / "trellis.pt", trellis=True)


@pytest.fixture(scope="module")
def rounding_checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("rounding") / "rounding.pt", trellis=False)


def tile(shape=(64, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 3, shape[0]), np.linspace(0, 3, shape[1]), indexing="ij")
    return np.clip(0.5 + 0.3 * np.sin(rows) * np.cos(cols) + 0.1 * rng.standard_normal(shape), 0, 1).astype(np.float32)


def trellis_codec(checkpoint: Path, quality: float = 2, **options) -> CheckerboardAutoencoder:
    return CheckerboardAutoencoder(checkpoint=str(checkpoint), quality=quality, quantizer="trellis", **options)


def test_a_trellis_coded_stream_decodes_to_the_latent_its_encoder_dequantized(trellis_checkpoint):
    codec, image = trellis_codec(trellis_checkpoint), tile()
    encoded = codec.coder.sections(codec.coder.analyse([image]))[0].dequantized[0]

    read = codec.coder.read([codec.encode(image)], [image.shape])[0].latent

    np.testing.assert_array_equal(read, encoded)


def test_a_trellis_coded_stream_says_so_in_its_version_and_carries_its_double_step(trellis_checkpoint):
    codec = trellis_codec(trellis_checkpoint, quality=2)
    rounded = CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint), quality=2)

    stream = codec.encode(tile())

    assert stream[0] == rounded.encode(tile())[0] + TRELLIS_OFFSET
    assert codec.stream_version == rounded.stream_version + TRELLIS_OFFSET
    assert stream[-4 * (len(stream) // 4):] != rounded.encode(tile())[-4 * (len(stream) // 4):]
    assert DOUBLE_STEP_CODES[1] in stream[HEADER_BYTES:HEADER_BYTES + 8]


def test_the_trellis_changes_the_decoded_latent_from_the_rounded_one(trellis_checkpoint):
    image = tile()
    trellis, rounded = trellis_codec(trellis_checkpoint), CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint),
                                                                                   quality=2)

    trellis_latent = trellis.coder.read([trellis.encode(image)], [image.shape])[0].latent
    rounded_latent = rounded.coder.read([rounded.encode(image)], [image.shape])[0].latent

    assert (trellis_latent != rounded_latent).mean() > 0.1


def test_a_trellis_coded_point_reports_no_rate_estimate_and_a_rounded_one_does(trellis_checkpoint):
    assert trellis_codec(trellis_checkpoint).estimated_bpp([tile()]) is None
    assert trellis_codec(trellis_checkpoint, quality=0).estimated_bpp([tile()])[0] > 0


def test_a_quality_without_trellis_settings_is_rounded(trellis_checkpoint):
    image = tile()
    assert (trellis_codec(trellis_checkpoint, quality=0).encode(image)
            == CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint), quality=0).encode(image))


def test_a_quality_between_levels_takes_its_nearest_levels_settings():
    settings = TrellisSettings(np.array([3, 4]), np.array([77, 115]), np.ones((2, 4)), np.array([1.0, 2.0]))
    assert settings.at(3.6).double_step_code == 115
    assert settings.at(2.4) is None
    assert settings.at(2.5).lmbda == 1.0


def test_trellis_settings_and_q1_tables_survive_the_checkpoint(trellis_checkpoint):
    from harness_codecs._autoencoder.runtime.checkpoint import load_checkpoint

    tables = EntropyTables.from_tensors(load_checkpoint(trellis_checkpoint).entropy_tables)
    assert tables.trellis.qualities.tolist() == list(TRELLIS_QUALITIES)
    assert tables.trellis.at(1).double_step_code == DOUBLE_STEP_CODES[0]
    np.testing.assert_array_equal(tables.odd.probabilities, odd_gaussian_tables(tables.scales).probabilities)


def test_trellis_coded_streams_range_coded_in_worker_processes_are_the_same(trellis_checkpoint):
    images = [tile(seed=seed) for seed in range(3)]
    local, pooled = trellis_codec(trellis_checkpoint), trellis_codec(trellis_checkpoint, range_coding_processes=2)

    streams = pooled.encode_batch(images)

    assert streams == local.encode_batch(images)
    for got, expected in zip(pooled.decode_batch(streams, [image.shape for image in images]),
                             local.decode_batch(streams, [image.shape for image in images])):
        np.testing.assert_array_equal(got, expected)


def test_a_batch_of_trellis_coded_and_rounded_streams_reads_each_as_alone(trellis_checkpoint):
    image = tile()
    streams = [trellis_codec(trellis_checkpoint).encode(image),
               CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint), quality=2).encode(image)]
    decoder = CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint), quality=0)

    together = decoder.coder.read(streams, [image.shape] * 2)

    for stream, reading in zip(streams, together):
        np.testing.assert_array_equal(reading.latent, decoder.coder.read([stream], [image.shape])[0].latent)


def test_quantizer_trellis_needs_a_checkpoint_with_trellis_settings(rounding_checkpoint):
    with pytest.raises(ValueError, match="has no trellis settings; write them with benchmarks/trellis_settings.py"):
        trellis_codec(rounding_checkpoint)


def test_an_unknown_quantizer_is_refused(trellis_checkpoint):
    with pytest.raises(ValueError, match="quantizer='vector'"):
        CheckerboardAutoencoder(checkpoint=str(trellis_checkpoint), quality=2, quantizer="vector")


def test_a_checkpoint_without_q1_tables_refuses_a_trellis_coded_stream_in_one_line(trellis_checkpoint,
                                                                                    rounding_checkpoint):
    stream = trellis_codec(trellis_checkpoint).encode(tile())
    with pytest.raises(ValueError, match=f"format version {stream[0]}; this decoder reads"):
        CheckerboardAutoencoder(checkpoint=str(rounding_checkpoint), quality=2).decode(stream, (64, 48))


def test_a_stream_claiming_a_double_step_below_one_is_refused(trellis_checkpoint):
    codec = trellis_codec(trellis_checkpoint)
    stream = bytearray(codec.encode(tile()))
    body = bytearray(stream[HEADER_BYTES:])
    body[body.index(DOUBLE_STEP_CODES[1], 2)] = 10
    stream[HEADER_BYTES:] = body
    stream[5:9] = zlib.crc32(bytes(body)).to_bytes(4, "big")

    with pytest.raises(ValueError, match="claims a double step of 10/64, below the format's 1"):
        codec.decode(bytes(stream), (64, 48))


def test_the_shift_chooser_moves_q1_tables_within_their_family_by_their_scales_band():
    chooser = ShiftChooser(EntropyTables(gaussian_tables(SCALE_TABLE), odd=odd_gaussian_tables(SCALE_TABLE)).trellis_tables(),
                           SCALE_TABLE, families=2)
    table = int(np.searchsorted(SCALE_TABLE, 2.0))
    values = np.round(np.random.default_rng(0).normal(0, 4.0, 4000)).astype(np.int64)

    too_narrow = chooser.best(values, np.full(values.shape, len(SCALE_TABLE) + table))

    assert (too_narrow > 0).all() and (too_narrow == too_narrow[0]).all()


def test_only_a_codec_whose_latent_codec_can_trellis_code_takes_the_quantizer_option():
    takes = {entropy: "quantizer" in [option.name for option in codec_class(entropy).options]
             for entropy in ("factorized", "hyperprior", "checkerboard")}
    assert takes == {"factorized": False, "hyperprior": False, "checkerboard": True}
