"""Every codec plugin built on imagecodecs registers, and still registers when imagecodecs is missing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from harness.plugins import build_registry

PLUGINS = [("lerc", "Lerc"), ("sz3", "Sz3"), ("jpegxl", "JpegXl"), ("htj2k", "Htj2k"), ("avif", "Avif")]


def unavailable_reason_without_imagecodecs(module: str, class_name: str) -> str:
    """Import the plugin in a fresh interpreter where ``import imagecodecs`` fails, as on a machine without it."""
    script = (
        "import sys; sys.modules['imagecodecs'] = None\n"
        f"import {module} as plugin\n"
        f"codec = plugin.{class_name}\n"
        "assert codec in plugin.harness_codecs()\n"
        "print(codec.unavailable)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.mark.parametrize("name, class_name", PLUGINS)
def test_the_registry_lists_the_codec_as_available(name, class_name):
    codec_class = getattr(importlib.import_module(f"harness_codecs.{name}"), class_name)
    if codec_class.unavailable:
        pytest.skip(codec_class.unavailable)

    assert build_registry().codecs[name].obj is codec_class


@pytest.mark.parametrize("name, class_name", PLUGINS)
def test_without_imagecodecs_the_codec_still_registers_with_the_install_command(name, class_name):
    reason = unavailable_reason_without_imagecodecs(f"harness_codecs.{name}", class_name)

    assert reason == "imagecodecs is not installed: pip install imagecodecs"
