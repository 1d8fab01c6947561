"""Exact integer copies of the networks that pick each latent element's mean and table (``networks``), and the step
from their output to means and table indexes (``gaussians``): encoder and decoder agree on any device."""
