"""SAR codec benchmark harness.

Plugin authors need only what this module exports: the ``hookimpl`` marker,
the ``Codec`` base class (with ``RateKnob``), the ``metric`` decorator with its
``MetricColumn`` descriptions, and the ``Tile`` / ``MetricInput`` records.
"""

from harness.api import (
    Codec,
    DatasetSettings,
    Metric,
    MetricColumn,
    MetricInput,
    RateKnob,
    Tile,
    Trainer,
    hookimpl,
    metric,
)
from harness.errors import UserError

__all__ = ["Codec", "DatasetSettings", "Metric", "MetricColumn", "MetricInput", "RateKnob", "Tile", "Trainer",
           "UserError", "hookimpl", "metric"]
