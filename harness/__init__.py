"""SAR codec benchmark harness.

Plugin authors need only what this module exports: the ``hookimpl`` marker,
the ``Codec`` base class (with ``RateKnob``) and the ``Tile`` / ``MetricInput`` records.
"""

from harness.api import Codec, DatasetSettings, MetricInput, RateKnob, Tile, Trainer, hookimpl
from harness.errors import UserError

__all__ = ["Codec", "DatasetSettings", "MetricInput", "RateKnob", "Tile", "Trainer", "UserError", "hookimpl"]
