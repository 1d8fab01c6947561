"""Discrete distributions in the flat form the range coder and the checkpoints hold them in (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TABLE_FIELDS = ("probabilities", "starts", "lengths", "offsets")
"""The arrays of a ``ProbabilityTables``, in constructor order, as stored in a checkpoint."""


@dataclass(frozen=True)
class ProbabilityTables:
    """Several discrete distributions in one flat array: table ``i`` gives the probabilities of the
    symbol values ``offsets[i] .. offsets[i] + lengths[i] - 1``."""

    probabilities: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_list(cls, tables: list[np.ndarray], offsets: list[int]) -> "ProbabilityTables":
        lengths = np.array([len(table) for table in tables], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return cls(np.concatenate(tables).astype(np.float64), starts, lengths, np.array(offsets, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.lengths)

    def table(self, index: int) -> np.ndarray:
        return self.probabilities[self.starts[index]:self.starts[index] + self.lengths[index]]

    def followed_by(self, other: "ProbabilityTables") -> "ProbabilityTables":
        """These tables, then ``other``'s, as one: ``other``'s table ``i`` becomes ``len(self) + i``."""
        return ProbabilityTables(np.concatenate([self.probabilities, other.probabilities]),
                                 np.concatenate([self.starts, other.starts + len(self.probabilities)]),
                                 np.concatenate([self.lengths, other.lengths]),
                                 np.concatenate([self.offsets, other.offsets]))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays by name, as a checkpoint stores them under ``prefix``."""
        return {f"{prefix}.{name}": getattr(self, name) for name in TABLE_FIELDS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "ProbabilityTables":
        probabilities, *indexes = (arrays[f"{prefix}.{name}"] for name in TABLE_FIELDS)
        return cls(probabilities.astype(np.float64), *(array.astype(np.int64) for array in indexes))
