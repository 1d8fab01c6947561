"""The latent codecs: one entropy model of the autoencoder's latent per module (``base`` says what one is).

``factorized`` (Ballé et al. 2018), ``hyperprior`` (Minnen et al. 2018, mean and scale) and ``checkerboard``
(He et al. 2021) are built in; importing this package registers them. ``side_latent`` holds what the two
hyperpriors share.
"""

from harness_codecs._autoencoder.latent_codecs.base import (
    LATENT_CODECS,
    LatentCodec,
    Layout,
    latent_codec_class,
    register,
)
# registered in this order, the order `harness list` shows their codecs in
from harness_codecs._autoencoder.latent_codecs.factorized import FactorizedLatentCodec
from harness_codecs._autoencoder.latent_codecs.hyperprior import HyperpriorLatentCodec
from harness_codecs._autoencoder.latent_codecs.checkerboard import CheckerboardLatentCodec, PriorWidths  # noqa: I001

__all__ = ["LATENT_CODECS", "CheckerboardLatentCodec", "FactorizedLatentCodec", "HyperpriorLatentCodec",
           "LatentCodec", "Layout", "PriorWidths", "latent_codec_class", "register"]
