"""SAR codec benchmark harness.

Plugin authors need only what this module exports, and the SAR helpers of
``harness.sar``: the ``hookimpl`` marker, the ``Codec`` base class (with
``RateKnob``, the ``CodecOption`` declarations of its options and the ``Complexity`` it may count),
the ``Dataset`` protocol with ``DatasetSettings`` and ``Tile``,
the ``metric`` decorator with its ``MetricColumn`` descriptions and
``MetricInput``, ``ReportInput`` for report writers, the ``Trainer`` base class
with the ``BenchmarkContext`` a trainer works in, and the test-set manifest
helpers (``tile_checksum``, ``read_manifest``), ``torch_threads``, which fixes
torch's threads around a codec's calls, and ``WorkerProcess`` with its errors
(``WorkerError``: ``WorkerTimeout``, ``WorkerDied``, ``WorkerFailed``) for a
codec that works in processes of its own. A test fails when a built-in
plugin imports anything else from ``harness``.
"""

import importlib
from typing import Any

from harness.api import (
    Codec,
    CodecOption,
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
from harness.timing import torch_threads
from harness.workers import WorkerDied, WorkerError, WorkerFailed, WorkerProcess, WorkerTimeout

__all__ = ["BenchmarkContext", "Codec", "CodecOption", "Complexity", "Dataset", "DatasetSettings", "ManifestEntry",
           "Metric", "MetricColumn",
           "MetricInput", "RateKnob", "ReportInput", "Tile", "Trainer", "UserError", "hookimpl", "metric",
           "read_manifest", "tile_checksum", "torch_threads", "WorkerDied", "WorkerError", "WorkerFailed", "WorkerProcess",
           "WorkerTimeout"]
PUBLIC_MODULES = ("harness", "harness.sar")
"""What plugins may import: this package's exports and the SAR helpers."""


_IMPORTED_WHEN_FIRST_ASKED_FOR = {"BenchmarkContext": "harness.context", "ManifestEntry": "harness.manifest",
                                  "read_manifest": "harness.manifest", "tile_checksum": "harness.manifest"}
"""``BenchmarkContext`` brings the config parser, the plugin registry and the tile stream, the manifest helpers the
results schema and pandas: a codec or dataset plugin importing ``harness``, or a range-coding worker, needs none."""


def __getattr__(name: str) -> Any:
    if name in _IMPORTED_WHEN_FIRST_ASKED_FOR:
        return getattr(importlib.import_module(_IMPORTED_WHEN_FIRST_ASKED_FOR[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
