"""Training the decoder on the latents the codec really writes (``--coded-latents``).

The noise proxy trains the synthesis on ``y + U(-1/2, 1/2)``: the error of rounding, not of what the codec does at
its upper levels, where it trellis-codes the latent (``entropy_coding.trellis``: levels chosen by a Viterbi search,
reconstruction points at half and whole double steps). A decoder trained on those latents makes more of them:
measured with prototypes on the shipped model (docs/learned-codec-experiments.md, "After stage 8"), about 2 points
of BD-rate against a control trained alike on rounded latents, and 1.3 against the shipped model.

With the analysis and the prior frozen (``--train-only``), the quantized latent of a patch at a level is exactly
what the codec's encoder would put in a stream: ``CodedLatents`` runs the codec's own layout (its fixed-point
prior networks, its trellis search with the starting checkpoint's settings) on the batch's latents and hands the
dequantized latent to the decoder. One whole level per batch, as the codec codes a tile at one level; the rate in
the loss is the prior's estimate at the rounded latent, a constant that only weighs the levels against each other
as ``log(lmbda * D + R)`` does.
"""

from __future__ import annotations

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from harness_codecs._autoencoder.model.autoencoder import Autoencoder


class CodedLatents:
    """A batch's latents quantized and dequantized as the codec's encoder does under ``tables``: trellis-coded at
    the levels that have trellis settings, rounded at the others (the default benchmark's points)."""

    def __init__(self, model: Autoencoder, tables: EntropyTables):
        self.prior = model.prior
        self.layout = model.prior.layout(tables, torch.device("cpu"))
        self.trellis = tables.trellis

    @torch.no_grad()
    def __call__(self, latent: torch.Tensor, quality: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The dequantized latent (on ``latent``'s device, float32) and the prior's likelihoods of the rounded
        latent; ``quality``: the batch's level, the same for every patch (None: a single-rate model)."""
        latent = latent.detach().float()
        _, likelihoods = self.prior.coded(latent, True, None)
        side = self.prior.side(latent)
        level = None if quality is None or self.trellis is None else self.trellis.at(float(quality[0]))
        _, dequantized = self.layout.sections(
            np.ascontiguousarray(latent.cpu().numpy()),
            None if side is None else side.to(torch.int64).cpu().numpy(),
            *([] if level is None else [level]))
        return torch.from_numpy(dequantized).to(latent.device, memory_format=torch.channels_last), likelihoods
