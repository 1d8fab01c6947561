"""Which weights the ``int8`` format quantizes, and with how many bits: chosen by measuring the shipped model.

Measured on ``autoencoder-gdn-dct-small-checkerboard.pt`` (12.9M parameters, 26 MB in float16) through the
codec, on the first 8 (first two points) or all 24 tiles of ``benchmarks.yaml``, at qualities 0, 4 and 8
(``benchmarks/weight_precision.py`` measures a plan's result):

* Every convolution at 8 bits: 11.2 MB, and -0.05 dB at quality 8. Quantized one at a time, only the two block
  transforms moved the PSNR (-0.033 dB the analysis one, -0.019 dB the synthesis one: each pixel passes through
  them, with no later layer to average their rounding out), so the layers that read or write the image (one
  input or output channel: the block transforms, the GDN networks' first and last convolutions) stay in
  float16, as do the small tensors (under ``SMALLEST`` values) and every tensor that is not a convolution's
  or linear layer's weight (biases, GDN, the learned densities, the gains).
* The prior's networks (9.4M of the parameters) only choose each latent element's Gaussian, so their rounding
  costs rate, and little of it: quantized one at a time at 5 bits, each moved the rate by 0.12 % or less,
  except its two ends: the hyper-encoder's first layer, which reads the latent (0.37 % at quality 0), and the
  layer that writes the means and scales (+1.06 %, -0.05 dB). These two keep 8 bits and the others get 5; at
  4 bits the rate rose by 0.6 to 1.5 %.
* The analysis and synthesis convolutions at 7 bits moved the PSNR by 0.001 dB or less (at 6 bits, -0.009 dB
  at quality 8; beside the block transforms they carry a residual, which may be why they are so tolerant).

Together 7.9 MB, every rate within 0.14 % and every PSNR within 0.001 dB of the float16 model
(docs/learned-codec.md). The fewer bits are for large layers (``LARGE`` values or more), which hold the bytes: every layer of the shipped
model quantized with fewer than 8 bits has 0.4M values or more. Smaller layers keep 8 bits: they save little,
and the small networks measured were more sensitive: ``autoencoder-tiny-hyperprior-l100.pt`` (layers of 9k
to 37k values, no block transform) lost 0.042 dB and 0.52 % of rate with 7-bit transforms and a 5-bit prior,
0.006 dB and 0.17 % with 8 bits throughout.
"""

from __future__ import annotations

from torch import nn

SMALLEST = 1024
"""Weights with fewer values stay in float16: their codes would save little, and their scales cost a share."""
LARGE = 2**18
"""Weights with fewer values (262,144) are quantized with 8 bits whatever their role."""
TRANSFORM_BITS = 7
"""The analysis and synthesis networks' convolutions."""
PRIOR_BITS = 5
"""The prior's hidden layers."""
FULL_BITS = 8
"""The prior's two ends, and every layer under ``LARGE`` values."""
LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def quantization_bits(model: nn.Module) -> dict[str, int]:
    """The bits of each weight the ``int8`` format quantizes, by state-dict name; the model may be on the
    ``meta`` device (only its layers' shapes are read)."""
    prior = getattr(model, "prior", None)
    in_prior = {id(module) for module in prior.modules()} if prior is not None else set()
    ends = {id(module) for module in (prior.rate_critical_layers() if prior is not None else [])}
    bits = {}
    for name, module in model.named_modules():
        if not isinstance(module, LAYERS) or module.weight.numel() < SMALLEST or 1 in module.weight.shape[:2]:
            continue
        if id(module) in ends or module.weight.numel() < LARGE:
            bits[f"{name}.weight"] = FULL_BITS
        else:
            bits[f"{name}.weight"] = PRIOR_BITS if id(module) in in_prior else TRANSFORM_BITS
    return bits
