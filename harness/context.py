"""What a trainer, or any plugin that works with a benchmark, needs of it, through one public object.

A learned codec's trainer reads the benchmark's config (its dB ranges, tile size, seed), reads tiles through the
dataset plugins, and must prove that it never trains on a tile the benchmark tests on. It does all of that through
a ``BenchmarkContext``, so that plugins depend on the public API only, never on the tile stream or the config parser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.api import DatasetSettings, Tile
from harness.config import BenchmarkConfig, DatasetConfig, load_config, parse_dataset_section
from harness.plugins import Registry
from harness.tiles import dataset_settings, load_tiles, read_dataset, settings_for


@dataclass(frozen=True)
class BenchmarkContext:
    """A benchmark config, loaded and checked, with the plugins it names."""

    config: BenchmarkConfig
    registry: Registry

    @classmethod
    def load(cls, path: Path) -> BenchmarkContext:
        """Read and check a benchmark YAML (one ``UserError`` line per mistake) and load its plugins."""
        config, registry = load_config(Path(path))
        return cls(config, registry)

    @property
    def path(self) -> Path:
        return self.config.path

    @property
    def normalization(self) -> dict[str, tuple[float, float]]:
        """The dB range per polarisation that every tile of the benchmark is normalized with."""
        return self.config.normalization

    def test_tiles(self) -> list[Tile]:
        """The tiles the benchmark codes (and a trainer must never train on)."""
        return load_tiles(self.config, self.registry)

    def test_dataset_settings(self, **changes: Any) -> DatasetSettings:
        """The settings the benchmark's dataset plugin is built with, with ``changes`` (e.g. another seed)."""
        return replace(dataset_settings(self.config), **changes)

    def dataset(self, kind: str) -> type:
        """The dataset plugin class registered under ``kind``."""
        return self.registry.dataset(kind)

    def parse_dataset_section(self, path: Path, raw: Any, where: str,
                              defaults: dict[str, Any] | None = None) -> DatasetConfig:
        """Check a dataset section of another YAML file (e.g. training data) as a benchmark's would be checked."""
        return parse_dataset_section(path, raw, where, self.registry, defaults or {})

    def read_dataset(self, section: DatasetConfig, base_dir: Path, seed: int) -> list[Tile]:
        """Every tile of ``section`` (relative paths from ``base_dir``), normalized with the benchmark's dB ranges."""
        return read_dataset(section, settings_for(section, self.normalization, seed, base_dir), self.registry)
