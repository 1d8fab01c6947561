"""Each tile's post-filter: a Wiener filter that the encoder fits to the tile and writes into its stream.

Why: the decoder network was trained on other processing chains than the ones it codes, so its output is not the
least-squares estimate of the tile on them. Measured with ``gdn-dct-light`` on the 24 test tiles, a linear filter
fitted per tile to the decoded tile brings it 0.04 (quality 1) to 0.1 dB (quality 8, VH) closer to the original.
The encoder holds both, so it fits one (as VVC's adaptive loop filter and AV1's Wiener loop restoration do),
and writes it only where the bits it saves at the level's trade-off outweigh its 16 bytes; the decoder applies
it to the decoder network's output. Nothing is estimated on the decoder's side.

The filter: the 7x7 diamond of VVC's luma ALF (25 taps, point-symmetric, so 13 coefficients), applied as a
correction, ``decoded + sum_k c_k * (pair sum k of decoded) + bias``, so that the coefficients are small and
fit in 8 bits under one power-of-two step per tile. Tile edges are extended by replication, which works for any
tile size. It runs as one 7x7 convolution, 49 MAC per pixel (25 of them non-zero), against the decoder network's
thousands.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REACH = 3
"""The diamond's radius: taps at offsets ``(dy, dx)`` with ``|dy| + |dx| <= 3``."""
HALF_TAPS = tuple((dy, dx) for dy in range(-REACH, REACH + 1) for dx in range(-REACH, REACH + 1)
                  if abs(dy) + abs(dx) <= REACH and (dy, dx) < (0, 0)) + ((0, 0),)
"""One offset of each point-symmetric pair (its partner is the negated offset), then the centre: 13 in all."""
COEFFICIENTS = len(HALF_TAPS)
_LAYOUT = struct.Struct(f">B{COEFFICIENTS}bh")
FILTER_BYTES = _LAYOUT.size
"""The coefficients' step exponent (1 byte), the coefficients (1 signed byte each) and the bias (2 bytes)."""
COEFFICIENT_LIMIT = 127
BIAS_STEP = 2.0**-16
"""The bias is stored in steps of 2^-16 of the normalized range: a thousandth of the finest level's error."""
MAX_EXPONENT = 24


@dataclass(frozen=True)
class PostFilter:
    """One tile's filter as stored: coefficients ``coefficients * 2**-exponent``, bias ``bias * BIAS_STEP``."""

    exponent: int
    coefficients: tuple[int, ...]
    bias: int

    def to_bytes(self) -> bytes:
        return _LAYOUT.pack(self.exponent, *self.coefficients, self.bias)

    @classmethod
    def from_bytes(cls, data: bytes) -> PostFilter:
        """The filter in ``FILTER_BYTES`` bytes; any bytes give a filter whose output is finite."""
        exponent, *coefficients, bias = _LAYOUT.unpack(data)
        return cls(exponent, tuple(coefficients), bias)

    def kernel(self) -> torch.Tensor:
        """The 7x7 convolution kernel it applies to the decoded tile, its identity tap included."""
        kernel = torch.zeros(2 * REACH + 1, 2 * REACH + 1, dtype=torch.float64)
        step = 2.0 ** -self.exponent
        for (dy, dx), coefficient in zip(HALF_TAPS, self.coefficients):
            kernel[REACH + dy, REACH + dx] += coefficient * step
            if (dy, dx) != (0, 0):
                kernel[REACH - dy, REACH - dx] += coefficient * step
        kernel[REACH, REACH] += 1.0
        return kernel.float()


class PostFilters(nn.Module):
    """Applies each tile's filter (None: the tile as decoded) to a batch of decoded tiles (N x 1 x H x W)."""

    def forward(self, decoded: torch.Tensor, filters: list[PostFilter | None]) -> torch.Tensor:
        chosen = [index for index, chosen_filter in enumerate(filters) if chosen_filter is not None]
        if not chosen:
            return decoded
        kernels = torch.stack([filters[index].kernel() for index in chosen])[:, None].to(decoded)
        biases = torch.tensor([filters[index].bias * BIAS_STEP for index in chosen]).to(decoded)
        padded = F.pad(decoded[chosen].permute(1, 0, 2, 3), (REACH,) * 4, mode="replicate")
        result = decoded.clone()
        result[chosen] = F.conv2d(padded, kernels, biases, groups=len(chosen)).permute(1, 0, 2, 3)
        return result

    def macs(self, decoded: torch.Tensor, filters: list[PostFilter | None], output: torch.Tensor) -> int:
        """The 7x7 convolution it runs per pixel of each filtered tile, its zero taps included (49 MACs)."""
        taps = (2 * REACH + 1) ** 2
        return taps * decoded[0].numel() * sum(chosen_filter is not None for chosen_filter in filters)


def pair_sums(decoded: np.ndarray) -> np.ndarray:
    """What each coefficient multiplies, per pixel (pixels x ``COEFFICIENTS``), with edges replicated."""
    height, width = decoded.shape
    padded = np.pad(decoded.astype(np.float64), REACH, mode="edge")

    def at(dy: int, dx: int) -> np.ndarray:
        return padded[REACH + dy:REACH + dy + height, REACH + dx:REACH + dx + width]

    columns = [at(dy, dx) + at(-dy, -dx) if (dy, dx) != (0, 0) else at(0, 0) for dy, dx in HALF_TAPS]
    return np.stack(columns, axis=-1).reshape(-1, COEFFICIENTS)


def fitted(original: np.ndarray, decoded: np.ndarray) -> PostFilter:
    """The least-squares filter from ``decoded`` towards ``original`` over the whole tile, as stored: the
    coefficients rounded to the finest step that keeps them within a signed byte, then the bias fitted to them."""
    sums = pair_sums(decoded)
    correction = original.astype(np.float64).ravel() - decoded.astype(np.float64).ravel()
    centred = sums - sums.mean(axis=0)
    # the normal equations (13 x 13) rather than the pixels' system: about half the time, the same filter
    coefficients = np.linalg.lstsq(centred.T @ centred, centred.T @ (correction - correction.mean()), rcond=None)[0]
    largest = float(np.abs(coefficients).max())
    exponent = int(np.clip(np.floor(np.log2(COEFFICIENT_LIMIT / largest)), 0, MAX_EXPONENT)) if largest > 0 \
        else MAX_EXPONENT
    stored = np.clip(np.round(coefficients * 2.0**exponent), -COEFFICIENT_LIMIT, COEFFICIENT_LIMIT).astype(int)
    bias = np.mean(correction - sums @ (stored * 2.0**-exponent))
    stored_bias = int(np.clip(np.round(bias / BIAS_STEP), -(2**15), 2**15 - 1))
    return PostFilter(exponent, tuple(int(value) for value in stored), stored_bias)


def worth_its_bytes(original: np.ndarray, decoded: torch.Tensor, candidate: PostFilter, lmbda: float,
                    apply: PostFilters) -> bool:
    """Whether ``candidate`` lowers the tile's rate-distortion cost ``lmbda * MSE + bpp`` (the cost its model was
    trained for), its bytes counted, on the tile as the decoder will output it (filtered, clipped to [0, 1])."""
    target = torch.from_numpy(original.astype(np.float32))
    errors = [float(torch.mean((output[0, 0].clamp(0.0, 1.0) - target) ** 2))
              for output in (decoded, apply(decoded, [candidate]))]
    return lmbda * (errors[1] - errors[0]) + 8 * FILTER_BYTES / original.size < 0
