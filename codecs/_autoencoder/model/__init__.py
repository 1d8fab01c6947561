"""The networks of the autoencoder codecs: the model and its presets (``autoencoder``), and the layers they are
built of (``gdn``, ``block_transform``)."""
