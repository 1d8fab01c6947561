"""Training of the autoencoder models: the trainer plugin's options (``trainer``), the data it draws patches
from (``data``), the loop (``loop``) and its TensorBoard log (``log``).
"""
