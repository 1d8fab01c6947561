"""Where a checkerboard model's remaining loss lies: in its context, or in quantizing its latent.

Two limits, measured on a config's tiles at each quality, that say which part of the codec a better model would
have to change:

- spatial context: the ideal code length per element of the anchors (coded from the side latent alone) and of the
  non-anchors (which also see the decoded anchors around them). What the checkerboard context saves on a non-anchor
  bounds what more context of the same kind (more passes, as in multistage or autoregressive contexts) could save on
  the anchors: if the non-anchors cost about as much as the anchors, the latent is already nearly independent given
  the hyperprior;
- quantization: the PSNR of the tiles decoded from the latent rounded as the codec rounds it, from the latent left
  unrounded (what the synthesis could give with no quantization: its floor) and from the latent with uniform noise
  (what training saw). If the unrounded latent decodes far above the rounded one, the loss lies in the quantizer and
  the rate it costs, not in the synthesis's capacity.

PSNR through the model's decoder with its refinement, before any post-filter; Gaussian bins as the tables are built.

    python benchmarks/coding_limits.py CHECKPOINT [--config benchmarks.yaml] [--qualities 0,4,8]
"""

from __future__ import annotations

import torch
from harness_codecs._autoencoder.latent_codecs.checkerboard import anchor_mask
from harness_codecs._autoencoder.model.autoencoder import Autoencoder

from headroom_inputs import code_length, headroom_inputs, latent_and_parameters, psnr


def limits(model: Autoencoder, tiles: torch.Tensor, value: float) -> dict[str, float]:
    """Bits per element at the anchors and elsewhere, and the PSNR of the rounded, unrounded and noisy latent."""
    quality = torch.full((len(tiles),), value)
    latent, means, scales = latent_and_parameters(model, tiles, value)
    bits = code_length(torch.round(latent - means), scales)
    anchors = anchor_mask(*latent.shape[-2:]).expand_as(bits)
    noisy = latent + torch.rand(latent.shape, generator=torch.Generator().manual_seed(0)) - 0.5
    decoded = {name: psnr(model.decode(coded, quality), tiles)
               for name, coded in (("rounded", torch.round(latent - means) + means), ("unrounded", latent),
                                   ("noisy", noisy))}
    return {"anchor bits": float(bits[anchors].mean()), "other bits": float(bits[~anchors].mean()), **decoded}


def main() -> None:
    model, tiles, qualities = headroom_inputs(__doc__.split("\n\n")[0])
    print("| quality | bits per anchor | per non-anchor | context saves | PSNR rounded | unrounded | with noise |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with torch.inference_mode():
        for value in qualities:
            found = limits(model, tiles, value)
            saving = 100 * (1 - found["other bits"] / found["anchor bits"])
            print(f"| {value:g} | {found['anchor bits']:.4f} | {found['other bits']:.4f} | {saving:.1f} % "
                  f"| {found['rounded']:.2f} dB | {found['unrounded']:.2f} dB | {found['noisy']:.2f} dB |")


if __name__ == "__main__":
    main()
