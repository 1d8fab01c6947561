"""Every built-in codec with a single rate option declares it as its rate knob, so ``match_bpp`` can search it.
That each knob honours its contract (its ends are valid values and the end promising more bits spends more) is
checked for every codec by the conformance suite (``harness.testing.CodecConformance``)."""

from __future__ import annotations

from harness.plugins import build_registry


def test_every_codec_with_a_single_rate_option_declares_it():
    registry = build_registry()
    knobbed = {name for name, entry in registry.codecs.items()
               if entry.obj.rate_knob is not None and entry.origin.startswith("codecs/")}
    assert knobbed >= {"jpeg2000", "htj2k", "avif", "jpegxl", "sz3", "lerc", "baq", "quantize", "quantize_zlib",
                       "autoencoder_checkerboard"}
