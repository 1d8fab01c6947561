"""Import ``imagecodecs`` once for the codec plugins that wrap it, without ever failing.

A plugin module must import on a machine that lacks the library, so that its
class still registers and ``harness list`` can say why it is unavailable and
how to install it. ``imagecodecs`` is also built with a varying set of
third-party libraries, so a codec is available only if its own part is.
"""

from __future__ import annotations

from types import ModuleType

try:
    import imagecodecs
except ImportError:
    imagecodecs = None

INSTALL_HINT = "imagecodecs is not installed: pip install imagecodecs"
LIBRARY_THREADS = 1
"""Threads each library codes with (libjxl's and libavif's ``numthreads``; OpenJPH's codec in imagecodecs has one):
one, fixed, so that a speed means the same on every machine and parallel runs split the cores between workers."""


def unavailable_reason(feature: str) -> str | None:
    """``None`` when ``imagecodecs.<feature>`` works here, else the reason and the install command."""
    if imagecodecs is None:
        return INSTALL_HINT
    if not getattr(getattr(imagecodecs, feature, None), "available", False):
        return f"this imagecodecs build lacks {feature}: pip install --upgrade imagecodecs (a wheel that bundles it)"
    return None


def library() -> ModuleType:
    """The imported module; only called by codecs whose ``unavailable`` is ``None``."""
    assert imagecodecs is not None, INSTALL_HINT
    return imagecodecs
