"""A checkpoint converted to a weight format, with the entropy tables of exactly the weights it will hold.

The range coder's tables are computed once from the prior and stored (``entropy_coding.tables``), and encoder and
decoder must use the tables of the weights the codec loads: tables of the float32 weights beside int8 weights
would code every stream under a slightly wrong density. So converting rounds the weights to the format first
and computes the tables from those. The trainer writes its checkpoints through ``in_weight_format`` too, and
``benchmarks/weight_precision.py`` converts a trained one and measures what the format costs.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.runtime.checkpoint import Checkpoint
from harness_codecs._autoencoder.model.autoencoder import Autoencoder
from harness_codecs._autoencoder.runtime.weight_plan import quantization_bits

def in_weight_format(checkpoint: Checkpoint, weight_format: str) -> Checkpoint:
    """``checkpoint`` with its weights rounded to ``weight_format`` (``int8``: quantized as
    ``weight_plan.quantization_bits`` plans for its model) and, for an entropy-coded model, its entropy tables
    computed from exactly those weights; trellis-coded quantization's ``Q1`` tables and settings are kept (the
    former follow the scales alone, the latter are the encoder's choices, measured on tiles)."""
    if weight_format == "int8":
        with torch.device("meta"):
            bits = quantization_bits(Autoencoder(checkpoint.spec))
    else:
        bits = {}
    converted = replace(checkpoint, weight_format=weight_format, weight_bits=bits)
    model = Autoencoder(converted.spec)
    model.load_state_dict(converted.state_dict)
    if model.prior is None:
        return converted
    if "scales" not in checkpoint.entropy_tables:
        converted.entropy_tables = model.prior.tables().to_tensors()
        return converted
    # kept: the scales the file codes with, and its trellis-coded quantization's tables and settings
    stored = EntropyTables.from_tensors(checkpoint.entropy_tables)
    tables = replace(model.prior.tables(stored.scales), odd=stored.odd, trellis=stored.trellis)
    converted.entropy_tables = tables.to_tensors()
    return converted
