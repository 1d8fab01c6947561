"""Training of the autoencoder models: the trainer plugin's options (``trainer``), the data it draws patches
from (``data``), the loop (``loop``) and its TensorBoard log (``log``).

Nothing here is imported when a codec only encodes and decodes: the codecs need the model and the runtime,
not the trainer.
"""
