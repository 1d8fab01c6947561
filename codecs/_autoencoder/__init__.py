"""The parts of the learned codecs (``harness_codecs.autoencoder`` and ``harness_codecs.autoencoder_entropy``
are the plugin modules; the leading underscore keeps the plugin loader from treating this package as one).

* ``model``: the networks (the autoencoder and its presets, GDN, the DCT-initialised block transforms).
* ``latent_codecs``: one entropy model of the latent per module (factorized, hyperprior, checkerboard): its
  prior network, tables and stream layout, registered by name.
* ``entropy_coding``: what the latent codecs are built of: densities, probability tables, the range coder,
  the stream header.
* ``fixed_point``: exact integer copies of the networks that pick each element's table, so that encoder and
  decoder agree on any device.
* ``runtime``: what a codec reads to run a trained model: the checkpoint and its weight formats, the
  fixed-length and entropy coders, the bitstream, the options and the complexity counts.
* ``training``: the trainer (``python -m harness train autoencoder``).
"""
