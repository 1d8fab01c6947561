"""SAR codec benchmark harness.

Plugin authors need only what this module exports, and the SAR helpers of
``harness.sar``: the ``hookimpl`` marker, the ``Codec`` base class (with
``RateKnob`` and the ``Complexity`` it may count), the ``Dataset`` protocol with ``DatasetSettings`` and ``Tile``,
the ``metric`` decorator with its ``MetricColumn`` descriptions and
``MetricInput``, ``ReportInput`` for report writers, the ``Trainer`` base class
with the ``BenchmarkContext`` a trainer works in, and the test-set manifest
helpers (``tile_checksum``, ``read_manifest``), and ``torch_threads``, which fixes
torch's threads around a codec's calls. A test fails when a built-in
plugin imports anything else from ``harness``.
"""

from typing import Any

from harness.api import (
    Codec,
    Complexity,
    Dataset,
    DatasetSettings,
    Metric,
    MetricColumn,
    MetricInput,
    RateKnob,
    ReportInput,
    Tile,
    Trainer,
    hookimpl,
    metric,
)
from harness.errors import UserError
from harness.manifest import ManifestEntry, read_manifest, tile_checksum
from harness.timing import torch_threads

__all__ = ["BenchmarkContext", "Codec", "Complexity", "Dataset", "DatasetSettings", "ManifestEntry", "Metric", "MetricColumn",
           "MetricInput", "RateKnob", "ReportInput", "Tile", "Trainer", "UserError", "hookimpl", "metric",
           "read_manifest", "tile_checksum", "torch_threads"]
PUBLIC_MODULES = ("harness", "harness.sar")
"""What plugins may import: this package's exports and the SAR helpers."""


def __getattr__(name: str) -> Any:
    """``BenchmarkContext`` is imported when first asked for: it brings the config parser, the plugin registry and
    the tile stream, which a codec or dataset plugin importing ``harness`` does not need."""
    if name == "BenchmarkContext":
        from harness.context import BenchmarkContext

        return BenchmarkContext
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
