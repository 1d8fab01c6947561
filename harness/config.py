"""Load ``benchmarks.yaml`` into typed, validated objects.

Every mistake becomes one ``UserError`` line naming the file and the key path
(``benchmarks.yaml: codecs[1].points[0].bits: ...``), because a benchmark that
dies ten minutes in on a typo wastes the user's afternoon. Checks that need
the plugins (codec names, their options) happen here too, after the config's
own ``plugins:`` are loaded. The checks themselves, shared with other YAML
files, are ``harness.config_checks``; each codec point is parsed here, once,
into a ``harness.rate_points.RatePoint``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from harness.config_checks import Checker, Problems, check_options, describe, parse_yaml
from harness.curves import read_compressai_json
from harness.errors import UserError
from harness.plugins import Registry, build_registry
from harness.rate_points import RatePoint, parse_rate_point

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_ANCHOR = "jpeg2000"
DEFAULT_CACHE_DIR = Path("~/.cache/sar-codec-harness")


@dataclass(frozen=True)
class CodecConfig:
    name: str
    points: tuple[RatePoint, ...]


@dataclass(frozen=True)
class DatasetConfig:
    kind: str
    tile_size: int
    max_tiles: int | None
    """None: every window (``max_tiles: all``)."""
    polarisations: tuple[str, ...]
    min_valid_fraction: float
    cache_dir: Path
    options: dict[str, Any]


@dataclass(frozen=True)
class TimingConfig:
    """How codec calls are made and timed.

    ``batch_size`` tiles go through ``encode_batch``/``decode_batch`` at once (GPU codecs gain from it);
    None (the key left out) lets each codec choose: its ``Codec.preferred_batch_size`` on its device.
    ``isolate`` (the default): the calls run in a worker process (``harness.isolation``), where a call that takes
    longer than ``timeout_s`` seconds, or a crash, is an error row and the run goes on; after ``breaker_after``
    such calls in a row of one rate point, its remaining tiles are error rows without being tried.
    """

    warmup: int
    repeats: int
    batch_size: int | None = None
    isolate: bool = True
    timeout_s: float = 120.0
    breaker_after: int = 2


@dataclass(frozen=True)
class BenchmarkConfig:
    name: str
    seed: int
    device: str
    dataset: DatasetConfig
    normalization: dict[str, tuple[float, float]]
    codecs: tuple[CodecConfig, ...]
    plugins: tuple[str, ...]
    timing: TimingConfig
    path: Path
    text: str
    anchors: tuple[str, ...] = (DEFAULT_ANCHOR,)
    """The BD-rate reference codecs: every other codec is compared with each."""
    references: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent


TOP_LEVEL_KEYS = {"name", "seed", "device", "dataset", "normalization", "codecs", "plugins", "timing",
                  "anchor", "references"}
DATASET_KEYS = {"kind", "tile_size", "max_tiles", "polarisations", "min_valid_fraction", "cache_dir"}


def load_config(path: Path | str, registry: Registry | None = None) -> tuple[BenchmarkConfig, Registry]:
    """Read, parse and validate a benchmark config; also returns the plugin registry it resolved against."""
    path = Path(path)
    text = _read_text(path)
    check = Checker(path)
    raw = check.mapping(parse_yaml(text, path), "", TOP_LEVEL_KEYS)
    plugins = tuple(check.string(entry, f"plugins[{index}]")
                    for index, entry in enumerate(check.sequence(raw.get("plugins", []), "plugins")))
    if registry is None:
        registry = build_registry(plugins, path.parent)
    problems = Problems()
    dataset = problems.attempt(_dataset, check, raw.get("dataset"), registry)
    codecs = _codecs(check, raw.get("codecs"), registry, dataset.tile_size if dataset else None, problems)
    polarisations = dataset.polarisations if dataset else _readable_polarisations(check, raw.get("dataset"))
    sections = dict(
        name=problems.attempt(_run_name, check, raw.get("name")),
        seed=problems.attempt(check.integer, raw.get("seed", 0), "seed", 0),
        device=problems.attempt(_device, check, raw.get("device", "auto")),
        normalization=problems.attempt(_normalization, check, raw.get("normalization"), polarisations)
        if polarisations else None,
        timing=problems.attempt(_timing, check, raw.get("timing", {})),
        anchors=problems.attempt(_anchors, check, raw, codecs) if codecs is not None else None,
        references=problems.attempt(_references, check, raw.get("references", []), path.parent),
    )
    problems.raise_if_any()
    return BenchmarkConfig(dataset=dataset, codecs=codecs, plugins=plugins, path=path, text=text, **sections), registry


def _readable_polarisations(check: Checker, section: Any) -> tuple[str, ...] | None:
    """The polarisations of a dataset section with mistakes elsewhere, so that the normalization is checked too."""
    try:
        return _polarisations(check, check.mapping(section, "dataset"), "dataset", DATASET_DEFAULTS)
    except UserError:
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found; pass the path of a benchmarks YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read config: {exc}") from exc


def _run_name(check: Checker, value: Any) -> str:
    if value is None:
        raise check.fail("name", "missing; give the run a name (it names the report folder)")
    name = check.string(value, "name")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise check.fail("name", f"{name!r} must be a plain folder name, without path separators")
    return name


def _device(check: Checker, value: Any) -> str:
    if value not in DEVICES:
        raise check.fail("device", f"{value!r} is not one of {', '.join(DEVICES)}")
    return value


def _dataset(check: Checker, value: Any, registry: Registry) -> DatasetConfig:
    if value is None:
        raise check.fail("dataset", "missing; add a dataset section (kind: synthetic for the built-in test set)")
    return _dataset_section(check, value, registry, "dataset", DATASET_DEFAULTS)


DATASET_DEFAULTS = {"tile_size": 256, "max_tiles": 16, "polarisations": ["VV", "VH"], "min_valid_fraction": 0.5,
                    "cache_dir": str(DEFAULT_CACHE_DIR)}
"""What a benchmark's dataset section means when it leaves a key out."""


def parse_dataset_section(path: Path, value: Any, key: str, registry: Registry,
                          defaults: dict[str, Any]) -> DatasetConfig:
    """A dataset section found at ``key`` of the YAML file ``path`` (a training-data file, say), validated
    like a benchmark's, with ``defaults`` for the keys it leaves out; errors name the file and the key."""
    return _dataset_section(Checker(path), value, registry, key, {**DATASET_DEFAULTS, **defaults})


def _dataset_section(check: Checker, value: Any, registry: Registry, key: str,
                     defaults: dict[str, Any]) -> DatasetConfig:
    section = check.mapping(value, key)
    kind = check.string(section.get("kind"), f"{key}.kind")
    if kind not in registry.datasets:
        raise check.fail(f"{key}.kind", registry.unknown("dataset", kind))
    options = {name: item for name, item in section.items() if name not in DATASET_KEYS}
    check_options(check, registry.dataset(kind), options, key, skip_first=True)
    fraction = check.number(section.get("min_valid_fraction", defaults["min_valid_fraction"]),
                            f"{key}.min_valid_fraction")
    if not 0 < fraction <= 1:
        raise check.fail(f"{key}.min_valid_fraction", f"must be in (0, 1], got {fraction}")
    cache_dir = check.string(section.get("cache_dir", defaults["cache_dir"]), f"{key}.cache_dir")
    return DatasetConfig(
        kind=kind,
        tile_size=check.integer(section.get("tile_size", defaults["tile_size"]), f"{key}.tile_size", 8),
        max_tiles=_max_tiles(check, section.get("max_tiles", defaults["max_tiles"]), f"{key}.max_tiles"),
        polarisations=_polarisations(check, section, key, defaults),
        min_valid_fraction=fraction,
        cache_dir=Path(cache_dir).expanduser(),
        options=options,
    )


EVERY_WINDOW = "all"
"""The ``max_tiles`` value that takes every window of the dataset (whole products)."""


def _max_tiles(check: Checker, value: Any, key: str) -> int | None:
    if value == EVERY_WINDOW:
        return None
    if isinstance(value, str):
        raise check.fail(key, f"expected an integer or {EVERY_WINDOW!r}, got {describe(value)}")
    return check.integer(value, key, 1)


def _polarisations(check: Checker, section: dict, key: str, defaults: dict[str, Any]) -> tuple[str, ...]:
    polarisations = check.sequence(section.get("polarisations", defaults["polarisations"]), f"{key}.polarisations")
    if not polarisations:
        raise check.fail(f"{key}.polarisations", "must name at least one polarisation")
    return tuple(check.string(pol, f"{key}.polarisations[{index}]").upper() for index, pol in enumerate(polarisations))


def _normalization(check: Checker, value: Any, polarisations: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    if value is None:
        raise check.fail("normalization", "missing; give a dB range per polarisation, e.g. VV: [-25, 5]")
    section = check.mapping(value, "normalization")
    ranges = {}
    for pol in polarisations:
        if pol not in section:
            raise check.fail(f"normalization.{pol}", f"missing dB range for polarisation {pol}, e.g. {pol}: [-25, 5]")
        bounds = check.sequence(section[pol], f"normalization.{pol}")
        if len(bounds) != 2:
            raise check.fail(f"normalization.{pol}", f"expected [low_db, high_db], got {bounds!r}")
        low, high = (check.number(bound, f"normalization.{pol}") for bound in bounds)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise check.fail(f"normalization.{pol}", f"expected finite dB bounds, got [{low}, {high}]")
        if not low < high:
            raise check.fail(f"normalization.{pol}", f"low ({low}) must be below high ({high})")
        ranges[pol] = (low, high)
    return ranges


def _codecs(check: Checker, value: Any, registry: Registry, tile_size: int | None,
            problems: Problems) -> tuple[CodecConfig, ...] | None:
    """The codec entries, each checked on its own (and each of its points); None when any is wrong."""
    if value is None:
        problems.note(check.fail("codecs", "missing; list at least one codec with its rate points"))
        return None
    entries = problems.attempt(check.sequence, value, "codecs")
    if not entries:
        if entries is not None:
            problems.note(check.fail("codecs", "empty; list at least one codec with its rate points"))
        return None
    found = len(problems.messages)
    codecs = [problems.attempt(_codec_entry, check, entry, f"codecs[{index}]", registry, tile_size, problems)
              for index, entry in enumerate(entries)]
    names = [codec.name for codec in codecs if codec is not None]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.note(check.fail("codecs", f"codec {duplicates[0]!r} is listed twice; merge its points into one entry"))
    return tuple(codecs) if len(problems.messages) == found else None


def _codec_entry(check: Checker, entry: Any, key: str, registry: Registry, tile_size: int | None,
                 problems: Problems) -> CodecConfig | None:
    entry = check.mapping(entry, key, {"name", "points"})
    name = check.string(entry.get("name"), f"{key}.name")
    if name not in registry.codecs:
        raise check.fail(f"{key}.name", registry.unknown("codec", name))
    codec_class = registry.codec(name)
    if codec_class.unavailable:
        raise check.fail(f"{key}.name", f"codec {name!r} is unavailable: {codec_class.unavailable}")
    if tile_size is not None and tile_size < codec_class.min_tile_size:
        raise check.fail("dataset.tile_size", f"{tile_size} is smaller than codec {name!r} needs "
                                              f"({codec_class.min_tile_size} px); raise tile_size or drop the codec")
    points = check.sequence(entry.get("points", [{}]), f"{key}.points")
    if not points:
        raise check.fail(f"{key}.points", "empty; list at least one rate point, or leave points out for the "
                                          "codec's defaults")
    found = len(problems.messages)
    parsed = [problems.attempt(_point, check, codec_class, points, point_index, f"{key}.points[{point_index}]")
              for point_index in range(len(points))]
    if len(problems.messages) > found:
        return None
    return CodecConfig(name, tuple(parsed))


def _point(check: Checker, codec_class: type, points: list, index: int, key: str) -> RatePoint:
    point = parse_rate_point(check, codec_class, points[index], key)
    if points[index] in points[:index]:
        raise check.fail(key, f"repeats points[{points.index(points[index])}] ({point.label}); "
                              "each rate point is measured once")
    return point


def _anchors(check: Checker, raw: dict, codecs: tuple[CodecConfig, ...]) -> tuple[str, ...]:
    """The BD-rate reference codecs (``anchor: jpeg2000`` or ``anchor: [jpeg2000, avif]``). The default may be
    absent (no BD-rate then); a named one must be configured."""
    if "anchor" not in raw:
        return (DEFAULT_ANCHOR,)
    value = raw["anchor"]
    entries = value if isinstance(value, list) else [value]
    if not entries:
        raise check.fail("anchor", "expected a codec name or a list of them, got an empty list")
    anchors = tuple(check.string(entry, "anchor" if isinstance(value, str) else f"anchor[{index}]")
                    for index, entry in enumerate(entries))
    configured = [codec.name for codec in codecs]
    for anchor in anchors:
        if anchor not in configured:
            raise check.fail("anchor", f"{anchor!r} is not a configured codec; configured: {', '.join(configured)}")
    return tuple(dict.fromkeys(anchors))


def _references(check: Checker, value: Any, base_dir: Path) -> tuple[str, ...]:
    """CompressAI JSON files (relative to the config), read now so a bad one fails before the run, not after."""
    paths = []
    names: dict[str, str] = {}
    for index, entry in enumerate(check.sequence(value, "references")):
        key = f"references[{index}]"
        path = (base_dir / check.string(entry, key)).resolve()
        if not path.is_file():
            raise check.fail(key, f"reference file {str(path)!r} not found")
        name = read_compressai_json(path).name
        if name in names:
            raise check.fail(key, f"curve name {name!r} is also the name in {names[name]}; names must differ")
        names[name] = entry
        paths.append(str(path))
    return tuple(paths)


def _timing(check: Checker, value: Any) -> TimingConfig:
    section = check.mapping(value, "timing", {"warmup", "repeats", "batch_size", "isolate", "timeout_s",
                                              "breaker_after"})
    isolate = section.get("isolate", TimingConfig.isolate)
    if not isinstance(isolate, bool):
        raise check.fail("timing.isolate", f"expected true or false, got {isolate!r}")
    timeout = check.number(section.get("timeout_s", TimingConfig.timeout_s), "timing.timeout_s")
    if not (math.isfinite(timeout) and timeout > 0):
        raise check.fail("timing.timeout_s", f"expected a number of seconds above 0, got {timeout!r}")
    return TimingConfig(
        warmup=check.integer(section.get("warmup", 1), "timing.warmup", 0),
        repeats=check.integer(section.get("repeats", 3), "timing.repeats", 1),
        batch_size=None if "batch_size" not in section else check.integer(section["batch_size"], "timing.batch_size", 1),
        isolate=isolate,
        timeout_s=timeout,
        breaker_after=check.integer(section.get("breaker_after", TimingConfig.breaker_after),
                                    "timing.breaker_after", 1),
    )


def resolved_config_yaml(config: BenchmarkConfig) -> str:
    """The config with every default filled in, as the run actually used it."""
    resolved = asdict(replace(config, text=""))
    resolved.pop("text")
    resolved["path"] = str(config.path)
    resolved["dataset"]["cache_dir"] = str(config.dataset.cache_dir)
    if config.dataset.max_tiles is None:
        resolved["dataset"]["max_tiles"] = EVERY_WINDOW
    resolved["normalization"] = {pol: list(bounds) for pol, bounds in config.normalization.items()}
    resolved["codecs"] = [{"name": codec.name, "points": [point.as_written for point in codec.points]}
                          for codec in config.codecs]
    return yaml.safe_dump(_plain(resolved), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
