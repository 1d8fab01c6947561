"""Codecs code with a fixed, declared number of library threads, and every row records it."""

from __future__ import annotations

import glymur
import imagecodecs
import numpy as np
import pytest
from harness_codecs.avif import Avif
from harness_codecs.jpeg2000 import Jpeg2000
from harness_codecs.jpegxl import JpegXl

TILE = np.random.default_rng(0).uniform(0.2, 0.8, (64, 64)).astype(np.float32)


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
