"""The formats a checkpoint stores its weights in: ``float32``, ``float16`` and ``int8``.

A checkpoint is read with ``torch.load(..., weights_only=True)``, so every stored form is made of tensors, dicts,
lists, strings and numbers, and needs no code from the file to read.

* ``float32``: the weights as trained; ``float16``: every floating tensor rounded to float16, half the file.
* ``int8``: the weights a plan names (``weight_plan.quantization_bits``: the large convolutions, each with its
  number of bits) are quantized symmetrically per slice of their first dimension (a convolution's output
  channel, a transposed convolution's input channel): a slice's codes are the integers from ``-levels`` to
  ``levels``, ``levels = 2 ** (bits - 1) - 1``, times one float32 scale, the slice's largest magnitude over
  ``levels``. Trained weights are far from uniform over that range: their codes hold 3 to 7.5 bits of
  information each at 5 to 8 bits, so each weight's codes are stored compressed with the standard library's
  lzma (0.1 to 0.25 bit per code above their entropy on the shipped model, 3 % in all) as a uint8 tensor,
  beside its scales, shape and bits. Every other tensor (biases, GDN, the learned densities, the gain vectors,
  the layers that read or write the image) is stored in float16: 0.5 MB of the shipped model's 7.9.

Exactness: scales are rounded up to ``SCALE_BITS`` significant bits, so that every code times its scale (at
most 7 + 16 bits) is exact in float32. Dequantizing therefore gives the same floats on any machine, and
quantizing weights that are already quantized, with the same bits, gives back the same codes and scales: a
checkpoint read and written again holds the same weights, and the entropy tables computed from them still fit.

Every way a stored weight can be unusable (unknown format, missing scales, damaged or short codes, codes out of
their range) raises one ``ValueError`` line naming the weight; the checkpoint reader adds the file.
"""

from __future__ import annotations

import lzma
import math
from collections.abc import Mapping

import numpy as np
import torch

WEIGHT_FORMATS = ("float32", "float16", "int8")
SCALE_BITS = 16
"""Significant bits of an int8 scale: with a code's 7 bits, 23 of float32's 24, so every product is exact."""
LZMA_PRESET = 6
"""lzma's default preset: its strongest (9, extreme) made the shipped model's codes 0.1 % smaller, 15 % slower."""
INT8_KEYS = ("codes", "scales", "shape", "bits")


def format_of(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The format plain tensors are already in: ``float16`` when every floating tensor is float16 (what
    ``--fp16-weights`` stores, and the format-version-1 files that hold it), ``float32`` otherwise."""
    floating = [tensor for tensor in state_dict.values() if isinstance(tensor, torch.Tensor)
                and tensor.is_floating_point()]
    return "float16" if floating and all(tensor.dtype == torch.float16 for tensor in floating) else "float32"


def rounded_weights(state_dict: Mapping[str, torch.Tensor], weight_format: str,
                    bits: Mapping[str, int] | None = None) -> dict[str, torch.Tensor]:
    """The weights as ``weight_format`` stores them, in float32: what ``loaded_weights`` will give back, exactly
    (``bits``: for ``int8``, the bits of each weight to quantize; the others are rounded to float16)."""
    _check_format(weight_format)
    if weight_format == "int8":
        _check_bits(bits or {}, state_dict)
        rounded = {}
        for name, tensor in state_dict.items():
            if name in (bits or {}):
                codes, scales = _quantized(name, tensor, bits[name])
                rounded[name] = _dequantized(codes, scales)
            else:
                rounded[name] = _as_float32(_rounded_to(tensor, torch.float16))
        return rounded
    dtype = torch.float16 if weight_format == "float16" else torch.float32
    return {name: _as_float32(_rounded_to(tensor, dtype)) for name, tensor in state_dict.items()}


def stored_weights(state_dict: Mapping[str, torch.Tensor], weight_format: str,
                   bits: Mapping[str, int] | None = None) -> dict:
    """What goes into the file: plain tensors for ``float32`` and ``float16``; for ``int8``, each weight named in
    ``bits`` as a dict of its compressed codes, scales, shape and bits, and every other tensor in float16."""
    _check_format(weight_format)
    if weight_format != "int8":
        dtype = torch.float16 if weight_format == "float16" else torch.float32
        return {name: _rounded_to(tensor, dtype) for name, tensor in state_dict.items()}
    _check_bits(bits or {}, state_dict)
    stored: dict = {}
    for name, tensor in state_dict.items():
        if name not in (bits or {}):
            stored[name] = _rounded_to(tensor, torch.float16)
            continue
        codes, scales = _quantized(name, tensor, bits[name])
        compressed = lzma.compress(codes.numpy().tobytes(), preset=LZMA_PRESET)
        stored[name] = {"codes": torch.from_numpy(np.frombuffer(compressed, dtype=np.uint8).copy()),
                        "scales": scales, "shape": list(tensor.shape), "bits": int(bits[name])}
    return stored


def loaded_weights(stored: object, weight_format: object) -> dict[str, torch.Tensor]:
    """The float32 weights of a stored form (integer tensors, if any, as stored); a damaged one raises one
    ``ValueError`` line naming the weight."""
    _check_format(weight_format)
    if not isinstance(stored, dict):
        raise ValueError(f"its weights are a {type(stored).__name__}, not a dict of tensors")
    weights = {}
    for name, entry in stored.items():
        if isinstance(entry, dict) and weight_format == "int8":
            weights[name] = _dequantized(*_codes_and_scales(name, entry))
        elif isinstance(entry, torch.Tensor):
            weights[name] = _as_float32(entry)
        else:
            raise ValueError(f"weight {name!r} is a {type(entry).__name__}, not a tensor of a {weight_format} "
                             "checkpoint")
    return weights


def stored_bits(stored: Mapping[str, object]) -> dict[str, int]:
    """The bits of each quantized weight of a stored ``int8`` form (checked by ``loaded_weights``)."""
    return {name: int(entry["bits"]) for name, entry in stored.items() if isinstance(entry, dict)}


def _check_format(weight_format: object) -> None:
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"unknown weight format {weight_format!r}; this code reads {', '.join(WEIGHT_FORMATS)}")


def _check_bits(bits: Mapping[str, int], state_dict: Mapping[str, torch.Tensor]) -> None:
    for name, count in bits.items():
        if name not in state_dict:
            raise ValueError(f"weight {name!r}: the int8 plan names a weight the model does not have")
        if not state_dict[name].is_floating_point() or state_dict[name].dim() == 0:
            raise ValueError(f"weight {name!r}: only floating tensors of at least one dimension are quantized")
        if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= 8:
            raise ValueError(f"weight {name!r}: {count!r} bits; an int8 weight has 2 to 8")


def _rounded_to(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A floating tensor in ``dtype`` (on the CPU, detached); other tensors as they are."""
    tensor = tensor.detach().cpu()
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _as_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def _quantized(name: str, weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The int8 codes (the weight's shape) and the float32 scale of each slice of the first dimension."""
    levels = 2 ** (bits - 1) - 1
    flat = weight.detach().cpu().float().reshape(len(weight), -1)
    if not torch.isfinite(flat).all():
        raise ValueError(f"weight {name!r} holds values that are not finite; it cannot be quantized")
    scales = _exact_scales(flat.abs().amax(dim=1).double() / levels)
    divisors = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = torch.round(flat / divisors[:, None]).clamp_(-levels, levels).to(torch.int8)
    return codes.reshape(weight.shape), scales


def _exact_scales(scales: torch.Tensor) -> torch.Tensor:
    """``scales`` (float64) rounded up to ``SCALE_BITS`` significant bits, in float32: never below the slice's
    largest magnitude over ``levels``, so no code is clamped, and every code times its scale is exact."""
    mantissas, exponents = torch.frexp(scales)
    return torch.ldexp(torch.ceil(mantissas * 2.0**SCALE_BITS) / 2.0**SCALE_BITS, exponents).float()


def _dequantized(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    return codes.float() * scales.reshape(-1, *[1] * (codes.dim() - 1))


def _codes_and_scales(name: str, entry: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A stored int8 weight's codes and scales, each checked against its shape and bits."""
    missing = [key for key in INT8_KEYS if key not in entry]
    if missing:
        raise ValueError(f"weight {name!r}: an int8 weight without its {', '.join(missing)}")
    shape, bits, scales, compressed = entry["shape"], entry["bits"], entry["scales"], entry["codes"]
    if (not isinstance(shape, (list, tuple)) or not shape
            or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape)):
        raise ValueError(f"weight {name!r}: shape {shape!r} is not a list of sizes")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"weight {name!r}: {bits!r} bits; an int8 weight has 2 to 8")
    if (not isinstance(scales, torch.Tensor) or scales.dtype != torch.float32 or tuple(scales.shape) != (shape[0],)
            or not (torch.isfinite(scales) & (scales >= 0)).all()):
        raise ValueError(f"weight {name!r}: its scales are not {shape[0]} finite non-negative float32 values")
    if not isinstance(compressed, torch.Tensor) or compressed.dtype != torch.uint8 or compressed.dim() != 1:
        raise ValueError(f"weight {name!r}: its codes are not a uint8 tensor of compressed bytes")
    count = math.prod(shape)
    decompressor = lzma.LZMADecompressor()
    try:
        # At most one byte beyond the count: a damaged shape or stream never inflates into more memory.
        raw = decompressor.decompress(compressed.numpy().tobytes(), max_length=count + 1)
    except lzma.LZMAError as exc:
        raise ValueError(f"weight {name!r}: its compressed codes are damaged ({exc})") from exc
    if len(raw) != count or not decompressor.eof or decompressor.unused_data:
        raise ValueError(f"weight {name!r}: its codes do not hold the {count} values of shape {list(shape)}")
    codes = torch.from_numpy(np.frombuffer(raw, dtype=np.int8).copy()).reshape(shape)
    levels = 2 ** (bits - 1) - 1
    if ((codes < -levels) | (codes > levels)).any():
        raise ValueError(f"weight {name!r}: codes beyond the {bits}-bit range of -{levels} to {levels}")
    return codes, scales
