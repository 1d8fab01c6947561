"""Every codec plugin built on imagecodecs registers, and still registers when imagecodecs is missing."""

from __future__ import annotations

import importlib

import pytest

from harness.plugins import build_registry
from harness.testing import unavailable_without

PLUGINS = [("lerc", "Lerc"), ("sz3", "Sz3"), ("jpegxl", "JpegXl"), ("htj2k", "Htj2k"), ("avif", "Avif"),
           ("zfp", "Zfp"), ("sperr", "Sperr")]


@pytest.mark.parametrize("name, class_name", PLUGINS)
def test_the_registry_lists_the_codec_as_available(name, class_name):
    codec_class = getattr(importlib.import_module(f"harness_codecs.{name}"), class_name)
    if codec_class.unavailable:
        pytest.skip(codec_class.unavailable)

    assert build_registry().codecs[name].obj is codec_class


@pytest.mark.parametrize("name, class_name", PLUGINS)
def test_without_imagecodecs_the_codec_still_registers_with_the_install_command(name, class_name):
    reasons = unavailable_without(f"harness_codecs.{name}", "imagecodecs")

    assert reasons == {name: "imagecodecs is not installed: pip install imagecodecs"}
