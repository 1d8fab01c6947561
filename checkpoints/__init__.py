"""The trained autoencoder checkpoints, installed with the project as package data.

A config names one by its file name (``checkpoint: autoencoder-gdn-dct-small-checkerboard.pt``);
see ``harness_codecs._autoencoder.runtime.options.resolve_checkpoint``.
"""
