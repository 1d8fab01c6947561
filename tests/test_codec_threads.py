"""Codecs code with a fixed, declared number of library threads (torch's for the learned ones), and every row
records it."""

from __future__ import annotations

from pathlib import Path

import glymur
import imagecodecs
import numpy as np
import pytest
import torch
from harness_codecs.autoencoder import AutoencoderCodec
from harness_codecs.autoencoder_entropy import HyperpriorAutoencoder
from harness_codecs.avif import Avif
from harness_codecs.jpeg2000 import Jpeg2000
from harness_codecs.jpegxl import JpegXl

TILE = np.random.default_rng(0).uniform(0.2, 0.8, (64, 64)).astype(np.float32)
CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
LEARNED = [(AutoencoderCodec, "autoencoder-tiny-c32-b4.pt"), (HyperpriorAutoencoder, "autoencoder-tiny-hyperprior-l60.pt")]


@pytest.mark.parametrize(("codec", "functions"), [
    (JpegXl(distance=1.0), ("jpegxl_encode", "jpegxl_decode")),
    (Avif(quality=50), ("avif_encode", "avif_decode")),
], ids=["jpegxl", "avif"])
def test_the_library_codes_with_the_threads_the_codec_declares(monkeypatch, codec, functions):
    asked = []
    for name in functions:
        def recording(*args, _library_function=getattr(imagecodecs, name), **options):
            asked.append(options.get("numthreads"))
            return _library_function(*args, **options)
        monkeypatch.setattr(imagecodecs, name, recording)

    codec.decode(codec.encode(TILE), TILE.shape)

    assert asked == [codec.threads, codec.threads] == [1, 1]


def test_openjpeg_codes_with_the_threads_the_jpeg2000_codec_declares():
    glymur.set_option("lib.num_threads", 2)  # as another plugin in the process might have left it
    try:
        codec = Jpeg2000(bpp=1.0)
        assert glymur.get_option("lib.num_threads") == codec.threads == 1
    finally:
        glymur.set_option("lib.num_threads", 1)


@pytest.mark.parametrize(("codec_class", "checkpoint"), LEARNED, ids=["fixed_length", "hyperprior"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_learned_codec_runs_its_network_on_the_threads_it_declares_and_restores_torchs(
        monkeypatch, codec_class, checkpoint, threads):
    codec = codec_class(checkpoint=str(CHECKPOINTS / checkpoint), threads=threads)
    seen = []
    forward = torch.nn.Conv2d.forward
    monkeypatch.setattr(torch.nn.Conv2d, "forward",
                        lambda layer, x: seen.append(torch.get_num_threads()) or forward(layer, x))
    original, before = torch.get_num_threads(), 3
    torch.set_num_threads(before)
    try:
        codec.decode_batch(codec.encode_batch([TILE]), [TILE.shape])
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(original)

    assert codec.threads == threads
    assert seen and set(seen) == {threads}
    assert after == before


def test_a_learned_codec_codes_on_one_thread_unless_a_point_asks_for_more():
    codec_class, checkpoint = LEARNED[0]
    assert codec_class(checkpoint=str(CHECKPOINTS / checkpoint)).threads == 1
