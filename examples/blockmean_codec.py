"""A complete codec plugin: average factor x factor blocks, store the means as 8-bit samples."""

import numpy as np

from harness import Codec, hookimpl


class BlockMean(Codec):
    name = "blockmean"
    description = "block means, 8 bits each"

    def __init__(self, factor: int = 2):
        if not isinstance(factor, int) or not 1 <= factor <= 255:
            raise ValueError(f"blockmean option factor={factor!r}; accepted: an integer from 1 to 255")
        self.factor = factor

    def encode(self, tile: np.ndarray) -> bytes:
        f = self.factor
        padded = np.pad(tile, ((0, -tile.shape[0] % f), (0, -tile.shape[1] % f)), mode="edge")
        rows, cols = padded.shape[0] // f, padded.shape[1] // f
        means = padded.reshape(rows, f, cols, f).mean(axis=(1, 3))
        return bytes([f]) + np.round(means * 255).astype(np.uint8).tobytes()  # the factor travels in the bytes

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        if not data or data[0] == 0:  # a damaged stream is a ValueError: the runner makes it an error row
            raise ValueError("blockmean: not a blockmean stream")
        f = data[0]
        rows, cols = -(-shape[0] // f), -(-shape[1] // f)
        means = np.frombuffer(data, dtype=np.uint8, offset=1).reshape(rows, cols) / np.float32(255)
        return np.repeat(np.repeat(means, f, axis=0), f, axis=1)[: shape[0], : shape[1]]


@hookimpl
def harness_codecs():
    return [BlockMean]
