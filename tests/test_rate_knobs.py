"""Every built-in codec that declares a rate knob honours its contract, so ``match_bpp`` can search it:
the knob's ends are valid values, and the end that promises more bits spends more."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugins import build_registry
from harness.rate_matching import knob_value
from tests.codec_helpers import speckled_tile

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "autoencoder-gdn-dct-small-checkerboard.pt"
OTHER_OPTIONS = {"autoencoder_checkerboard": {"checkpoint": str(CHECKPOINT)}}
WITHOUT_A_SHIPPED_VARIABLE_RATE_CHECKPOINT = {"autoencoder_factorized", "autoencoder_hyperprior"}
REGISTRY = build_registry()
KNOBBED = sorted(name for name, entry in REGISTRY.codecs.items()
                 if entry.obj.rate_knob is not None and entry.origin.startswith("codecs/")
                 and name not in WITHOUT_A_SHIPPED_VARIABLE_RATE_CHECKPOINT)


def codec_at(name: str, position: float):
    codec_class = REGISTRY.codec(name)
    options = OTHER_OPTIONS.get(name, {})
    knob = codec_class(**options, **{codec_class.rate_knob.option: codec_class.rate_knob.low}).rate_knob
    return codec_class(**options, **{knob.option: knob_value(knob, position)})


def test_every_codec_with_a_single_rate_option_declares_it():
    assert set(KNOBBED) >= {"jpeg2000", "htj2k", "avif", "jpegxl", "sz3", "lerc", "baq", "quantize", "quantize_zlib",
                            "autoencoder_checkerboard"}


@pytest.mark.parametrize("name", KNOBBED)
def test_the_end_of_the_knob_promising_more_bits_spends_more(name):
    if REGISTRY.codec(name).unavailable:
        pytest.skip(REGISTRY.codec(name).unavailable)
    tile = speckled_tile(64)

    fewest, most = (len(codec_at(name, position).encode(tile)) for position in (0.0, 1.0))

    assert fewest < most
