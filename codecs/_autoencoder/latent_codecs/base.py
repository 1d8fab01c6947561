"""What every latent codec is, and the registry that maps an entropy model's name to its class.

A latent codec (CompressAI's term) is one entropy model of the autoencoder's latent ``y``, with everything that
is particular to it in one class:

* it is the prior network (an ``nn.Module``: what trains beside the transforms, and the ``prior.*`` weights
  of a checkpoint), and its ``coded`` gives the latent as the decoder will see it and the likelihoods of
  everything coded, for training, validation and the codec's own rate estimate;
* ``side`` gives the rounded side latent ``z`` that the encoder codes first, where the model has one;
* ``tables`` gives the probability tables a checkpoint stores, computed once in float64;
* ``layout`` gives the sections of a tile's range-coded stream and reads them back, through fixed-point copies
  of the networks that pick each element's table, so that encoder and decoder agree on any device.

A subclass decorated with ``register`` is known by its ``entropy`` name: a spec's ``entropy``, the trainer's
``--entropy``, and the codec plugin ``autoencoder_<entropy>`` that ``harness_codecs.autoencoder_entropy``
makes for it. Adding an entropy model is therefore one new module that defines and registers its class,
imported before a model is built (the built-in ones are imported by this package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import torch
from harness_codecs._autoencoder.entropy_coding.range_coding import Section, TileDecoders
from harness_codecs._autoencoder.entropy_coding.tables import EntropyTables
from torch import nn

if TYPE_CHECKING:
    from harness_codecs._autoencoder.model.autoencoder import ModelSpec


class Layout(Protocol):
    """How one latent codec lays a batch of latents (all of one shape) out in the tiles' streams."""

    def sections(self, latent: np.ndarray, side: np.ndarray | None) -> tuple[list[Section], np.ndarray]:
        """What the streams of a batch of latents (batch x C x h x w) and side latents hold, in order, and the
        dequantized latents that ``read`` will give back from them (what the encoder's post-filter is fitted to)."""

    def read(self, decoders: TileDecoders, channels: int, latent_shape: tuple[int, int]) -> np.ndarray:
        """The dequantized latents (batch x channels x h x w, float32) read back from the tiles' decoders."""


class LatentCodec(nn.Module):
    """One entropy model of the latent: its prior network, side latent, tables and stream layout."""

    entropy: ClassVar[str]
    """The name a spec, the trainer and the codec plugin (``autoencoder_<entropy>``) know it by."""
    description: ClassVar[str]
    """What it codes and how, with its reference; the codec plugin's description follows ``autoencoder, ``."""
    trellis_coded: ClassVar[bool] = False
    """Whether its layout can trellis-code the latent (``entropy_coding.trellis``): its codec plugin then takes the
    point option ``quantizer``."""

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> LatentCodec:
        """The untrained prior of the model ``spec`` describes."""
        raise NotImplementedError(f"{cls.__name__} must say how a spec builds it (from_spec)")

    def coded(self, latent: torch.Tensor, rounded: bool,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The latent as the decoder will see it and the likelihoods of everything coded.

        ``rounded`` rounds as the codec does (validation, rate estimates); otherwise uniform noise stands in
        for rounding in the likelihoods (training)."""
        raise NotImplementedError(f"{type(self).__name__} must give the coded latent and likelihoods (coded)")

    def side(self, latent: torch.Tensor) -> torch.Tensor | None:
        """The rounded side latent the encoder codes before ``y`` (None: the model has none)."""
        return None

    def tables(self, scales: np.ndarray | None = None) -> EntropyTables:
        """The probability tables of the trained prior, for its checkpoint. ``scales``: the Gaussian scales to
        tabulate where the model has Gaussians (None: ``entropy_coding.tables.SCALE_TABLE``); a checkpoint
        converted to another weight format keeps the scales it was made with."""
        raise NotImplementedError(f"{type(self).__name__} must compute its probability tables (tables)")

    def rate_critical_layers(self) -> list[nn.Module]:
        """The prior's layers whose rounding costs the most rate, which the compact ``int8`` weight format keeps
        at 8 bits (``runtime.weight_plan``): for a hyperprior, the hyper-encoder's first layer (it reads the
        latent) and the layer that writes the Gaussians' means and scales."""
        return []

    def layout(self, tables: EntropyTables, device: torch.device) -> Layout:
        """The layout of this prior's streams, its table-picking networks (if any) in fixed point on ``device``."""
        raise NotImplementedError(f"{type(self).__name__} must lay its streams out (layout)")


LATENT_CODECS: dict[str, type[LatentCodec]] = {}
"""Every registered latent codec by its ``entropy`` name, in the order they were registered."""


def register(latent_codec: type[LatentCodec]) -> type[LatentCodec]:
    """Class decorator: make ``latent_codec`` known by its ``entropy`` name (refused if the name is taken or
    is ``none``, the fixed-length autoencoder's)."""
    name = latent_codec.entropy
    if name == "none" or LATENT_CODECS.get(name, latent_codec) is not latent_codec:
        raise ValueError(f"latent codec {latent_codec.__name__}: the entropy name {name!r} is taken; choose another")
    LATENT_CODECS[name] = latent_codec
    return latent_codec


def latent_codec_class(entropy: str) -> type[LatentCodec]:
    """The latent codec registered as ``entropy``."""
    if entropy not in LATENT_CODECS:
        raise ValueError(f"entropy model {entropy!r}; accepted: none, {', '.join(LATENT_CODECS)}")
    return LATENT_CODECS[entropy]
