"""Helpers of the ``autoencoder`` codec plugin: model, bitstream, checkpoint, training.

The leading underscore keeps the plugin loader from treating this package as
a plugin; ``harness_codecs.autoencoder`` is the plugin module.
"""
