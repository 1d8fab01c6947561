"""How much arithmetic a learned codec does per pixel: multiply-accumulates (MACs) of encode and decode.

Speed depends on the machine; MACs per pixel do not, so they say how heavy a
model is wherever it runs (a ground segment's CPU, a GPU). They are counted
from the shapes of the layers that a real encode and decode of one tile run
(forward hooks on every module, the fixed-point networks of ``fixed_point``
that pick the means and tables included), so whatever a codec runs is counted
and nothing it skips is: the hyperprior's encoder runs its hyper-decoder too
(it needs the Gaussians to code with), the checkerboard's runs its context
model, at the non-anchors only, from the anchors' taps.

Counted: convolutions (output elements x input channels per group x kernel
area), transposed convolutions (input elements x output channels per group x
kernel area) and GDN/IGDN, as the 1x1 convolution over channels that it is.
Element-wise work (activations, quantization, range coding) is left out, as
it is in the literature's MAC figures.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from harness import Complexity
from harness_codecs._autoencoder.model.gdn import GDN
from harness_codecs._autoencoder.model.autoencoder import parameter_count
from torch import nn

if TYPE_CHECKING:
    from harness import Codec

REFERENCE_TILE = (256, 256)
"""The tile the MACs are counted on: the default tile size, a multiple of 64, so no padding is counted."""


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """The multiply-accumulates of one call of ``module`` (0 for modules that are not counted)."""
    if callable(getattr(module, "macs", None)):  # the fixed-point modules count their own (exact) arithmetic
        return module.macs(*inputs, output)
    if isinstance(module, nn.ConvTranspose2d):
        return inputs[0].numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.Conv2d):
        return output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, GDN):
        return inputs[0].numel() * inputs[0].shape[1]
    return 0


@contextlib.contextmanager
def counting_macs() -> Iterator[list[int]]:
    """Count the MACs of every module call in the block; the list's one item is the running total."""
    total = [0]

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += layer_macs(module, inputs, output)

    handle = nn.modules.module.register_module_forward_hook(count)
    try:
        yield total
    finally:
        handle.remove()


def codec_complexity(codec: Codec, model: nn.Module) -> Complexity:
    """The MACs per pixel of ``codec``'s encode and decode (its network is ``model``) on a ``REFERENCE_TILE``,
    and the model's parameters."""
    tile = np.full(REFERENCE_TILE, 0.5, dtype=np.float32)
    with counting_macs() as encode:
        (stream,) = codec.encode_batch([tile])
    with counting_macs() as decode:
        codec.decode_batch([stream], [REFERENCE_TILE])
    return Complexity(encode_macs_per_pixel=encode[0] / tile.size, decode_macs_per_pixel=decode[0] / tile.size,
                      parameters=parameter_count(model))
