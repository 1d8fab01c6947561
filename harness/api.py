"""The public contract between the harness and its plugins.

Everything a third-party codec, dataset or metric needs is defined here, so the
core can change its internals without breaking plugins. ``MetricColumn`` and
``Complexity`` are defined in ``harness.columns`` (they describe results columns,
which the results schema builds on without importing this module), and
``CodecOption`` in ``harness.codec_options`` with the check of a value against it;
they belong to this contract all the same.
"""

from __future__ import annotations

import argparse
import inspect
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import numpy as np
import pluggy

from harness.codec_options import CodecOption, check_declared
from harness.columns import Complexity, MetricColumn

if TYPE_CHECKING:  # the report's types; a codec or dataset plugin need not import pandas
    import pandas as pd

    from harness.curves import ReferenceCurve
    from harness.results import MetricDescriptions, RunFolder

PROJECT_NAME = "harness"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

@dataclass(frozen=True, eq=False)
class Tile:
    """One polarisation of one window of one scene, ready for a codec.

    ``data`` is float32 in the normalized dB domain: dB intensity clipped to
    ``db_range`` and scaled to [0, 1]. The range is fixed per polarisation by
    the config, never derived from the tile, so no side information escapes
    the bitstream. No-data pixels are ``False`` in ``mask``; metrics ignore
    them. The built-in datasets fill them in ``data`` with the values of the
    nearest valid pixels, blurred more the farther they lie from the data
    (``harness.sar.fill_no_data``), so that a codec sees no step at a swath
    border to smear into the valid pixels.

    ``original_db`` keeps the dB values as read, before clipping (NaN at
    no-data), so that clipping is seen: the dB metrics score against it and
    the results record the clipped fractions. A dataset plugin that leaves it
    ``None`` gets dB metrics against the clipped original and no clipping.

    ``labels`` is ground truth for the window, where the dataset has it (the
    ``geotiff`` plugin's ``labels`` option): int16 of the tile's shape, 1 water,
    0 land, -1 not labelled. It lets a metric ask whether a map made from the
    decoded tile is still right, not only whether it still matches the map of
    the original. ``None``: the tile has no labels, and such metrics are empty.
    """

    tile_id: str
    scene: str
    pol: str
    row: int
    col: int
    data: np.ndarray
    mask: np.ndarray
    db_range: tuple[float, float]
    original_db: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    @property
    def valid_pixels(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def clipped_fractions(self) -> tuple[float, float]:
        """Fractions of the valid pixels below and above ``db_range``, which every codec sees at its bounds;
        computed once per tile, though every codec's row of the tile records them."""
        if self.original_db is None or not self.mask.any():
            return 0.0, 0.0
        valid = self.original_db[self.mask]
        low, high = self.db_range
        return float(np.mean(valid < low)), float(np.mean(valid > high))


@dataclass(frozen=True)
class DatasetSettings:
    """The dataset keys every dataset plugin honours, validated by the core.

    ``max_tiles`` counts tile windows: each window yields one ``Tile`` per
    polarisation, so both polarisations of a window are always compared;
    None (``max_tiles: all``) asks for every window.
    Relative paths in a dataset's options are resolved against ``base_dir``
    (the folder of the config file).
    """

    tile_size: int
    max_tiles: int | None
    polarisations: tuple[str, ...]
    normalization: dict[str, tuple[float, float]]
    seed: int
    min_valid_fraction: float
    base_dir: Path
    cache_dir: Path


class Dataset(Protocol):
    """What a dataset plugin class provides (``harness_datasets``): a unique ``name`` (the YAML ``dataset.kind``),
    construction as ``cls(settings, **options)`` with the section's other keys as options (a bad one raises
    ``harness.UserError``), and ``tiles()``, the same tiles in the same order for the same settings."""

    name: ClassVar[str]

    def __init__(self, settings: DatasetSettings, **options: object) -> None: ...

    def tiles(self) -> Iterator[Tile]: ...


@dataclass(frozen=True, eq=False)
class MetricInput:
    """What a metric function sees: the original and decoded tile, both normalized.

    ``original_db`` is the original in dB before clipping to ``db_range``
    (``Tile.original_db``), or ``None`` where no such values exist.
    ``labels`` is the tile's ground truth (``Tile.labels``: 1 water, 0 land,
    -1 not labelled) or ``None``; ``pol`` its polarisation (``Tile.pol``), for
    a metric whose rule depends on it (a water threshold in dB differs
    between co- and cross-polarisation).
    """

    original: np.ndarray
    reconstructed: np.ndarray
    mask: np.ndarray
    db_range: tuple[float, float]
    original_db: np.ndarray | None = None
    labels: np.ndarray | None = None
    pol: str = ""


@dataclass(frozen=True)
class Metric:
    """A metric plugin: a function of a ``MetricInput`` returning one value per declared column.

    Build one with the ``metric`` decorator. Calling it calls the function.
    """

    name: str
    function: Callable[[MetricInput], dict[str, float]]
    columns: tuple[MetricColumn, ...]

    def __call__(self, pair: MetricInput) -> dict[str, float]:
        return self.function(pair)


def metric(*columns: MetricColumn) -> Callable[[Callable[[MetricInput], dict[str, float]]], Metric]:
    """Declare a function as a metric writing ``columns`` (registered under the function's name)::

        @metric(MetricColumn("speckle_ratio", "speckle ratio", decimals=3, higher_is_better=False,
                             rd_plot=True, bd_rate=True))
        def speckle(pair: MetricInput) -> dict[str, float]:
            return {"speckle_ratio": ...}
    """
    if not columns:
        raise ValueError("metric(): declare at least one MetricColumn")

    def declare(function: Callable[[MetricInput], dict[str, float]]) -> Metric:
        return Metric(function.__name__, function, tuple(columns))

    return declare


@dataclass(frozen=True)
class RateKnob:
    """The one numeric option that sets a codec's rate, so that a point can ask for a rate instead.

    A point ``{match_bpp: 0.5}`` makes the harness search ``option`` between
    ``low`` and ``high``, per tile and with real encodes, for the value that
    spends the most bits without exceeding 0.5 bpp (``harness.rate_matching``).
    ``more_bits_when_higher`` says which way the rate moves (a quality rises
    with it; a step, distance or error bound falls). ``step`` is the knob's
    granularity (1 for integers; 0 for a continuous one), and ``geometric``
    searches values spanning decades on a log scale. ``low`` must be a valid
    value for every instance, since the harness constructs the codec there
    first; an instance may narrow ``high`` to what it loaded (a checkpoint's
    levels) by setting its own ``rate_knob``.
    """

    option: str
    low: float
    high: float
    more_bits_when_higher: bool
    step: float = 0.0
    geometric: bool = False


class Codec:
    """Base class for codec plugins: one instance is one rate point.

    Subclasses take their rate-point options as keyword arguments of
    ``__init__`` (the YAML ``points`` entries are passed there verbatim) and
    raise ``ValueError`` for a bad value. ``decode`` receives nothing but the
    bytes and the tile shape: whatever else the decoder needs must be inside
    the bytes, because the reported rate is ``8 * len(bytes) / pixels``.

    Two constructor keywords are filled in by the harness when the codec
    declares them and the YAML point does not give them: ``device`` (the
    resolved ``cpu``/``cuda``) and ``base_dir`` (the config file's folder, to
    resolve relative paths such as checkpoints).

    A point that reconstructs its input samples exactly sets ``lossless``
    (JPEG 2000's reversible mode, JPEG XL at distance 0): the results record
    it, and the report keeps such points out of RD curves and BD-rates,
    whatever their PSNR (exact on 16-bit samples is 107 dB, not infinite).

    A codec whose rate is set by one monotone numeric option declares it as
    ``rate_knob`` (a ``RateKnob``); points may then give ``match_bpp`` instead
    of that option.

    ``options`` declares the constructor keywords (a ``CodecOption`` each: name,
    type, range or choices, whether required, what it does) and
    ``example_point`` one valid rate point. The harness then checks a point's
    option names, types and ranges before building the codec, and the
    constructor gets the same check when the codec is built directly (in
    ``__new__``), so the constructor checks only what a declaration cannot say
    (which options go together, ranges that depend on a loaded file). ``list
    --verbose`` shows the declaration, and ``harness.testing.CodecConformance``
    checks the example point. None (the default): not declared, and the
    codec checks its options itself.

    A plugin whose library is missing still registers its class, with
    ``unavailable`` set to the reason and the install command: ``list`` shows
    it, and a config asking for it fails with that message, while every other
    codec keeps working.

    ``threads`` is how many threads the codec's library codes with. A plugin
    fixes it, so that a timing means the same on every machine and the cores
    stay the harness's to share out (one per Dask worker); every row records it.
    None: the codec does not control or know it.

    ``preferred_batch_size`` is how many tiles the harness hands ``encode_batch``
    and ``decode_batch`` at once when the config leaves ``timing.batch_size``
    out. Codecs that code tile by tile keep 1; a codec that runs a network on
    a device sets the size its device runs fastest at (per instance, since it
    depends on the device), and the rows record the batch size they ran at.

    ``stream_version`` is the version of the stream format the codec itself
    defines (a learned codec's header version), recorded in every row so that
    results of two stream formats are told apart. None (the default): the
    format belongs to the codec's library, whose version ``environment.json``
    records.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    min_tile_size: ClassVar[int] = 1
    unavailable: ClassVar[str | None] = None
    rate_knob: RateKnob | None = None
    options: ClassVar[tuple[CodecOption, ...] | None] = None
    example_point: ClassVar[dict[str, Any] | None] = None
    lossless: bool = False
    device: str = "cpu"
    precision: str = ""
    threads: int | None = None
    preferred_batch_size: int = 1
    stream_version: int | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Codec:
        """Check the given constructor keywords against the declared ``options`` before ``__init__`` runs."""
        if cls.options is not None and (args or kwargs):
            check_declared(cls, _given_keywords(cls, args, kwargs))
        return super().__new__(cls)

    def encode(self, tile: np.ndarray) -> bytes:
        raise NotImplementedError(_not_defined(self, "encode(self, tile) -> bytes", "Codec", "encode and decode"))

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        raise NotImplementedError(_not_defined(self, "decode(self, data, shape) -> array", "Codec",
                                               "encode and decode"))

    def encode_batch(self, tiles: list[np.ndarray]) -> list[bytes]:
        """Override where batching pays (GPU codecs); the default loops."""
        return [self.encode(tile) for tile in tiles]

    def decode_batch(self, streams: list[bytes], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
        return [self.decode(data, shape) for data, shape in zip(streams, shapes)]

    def estimated_bpp(self, tiles: list[np.ndarray]) -> list[float] | None:
        """The codec's own model of its rate per tile, where it has one (a learned codec's prior).

        Never used as the rate: the report shows it in ``estimated_bpp`` beside
        the real ``bpp`` so that the gap between model and bitstream is
        visible. Called outside the timed calls. None: no estimate.
        """
        return None

    def complexity(self) -> Complexity | None:
        """The codec's arithmetic, where it has a network to count. Called outside the timed calls. None: not
        counted."""
        return None


@dataclass(frozen=True)
class ReportInput:
    """What a report writer gets: the run folder, its rows, and what every built-in output draws on, computed once.

    ``results`` has text columns as text and the others numeric; ``summary`` and ``summary_by_pol`` are the
    per-point (and per-polarisation) means, spreads and counts of ``harness.reporting.summaries``; ``bd_rate``
    the BD-rate table against each of ``anchors``; ``metrics`` the descriptions of the metric columns.
    """

    folder: RunFolder
    run_name: str
    results: pd.DataFrame
    summary: pd.DataFrame
    summary_by_pol: pd.DataFrame
    bd_rate: pd.DataFrame
    metrics: MetricDescriptions
    anchors: tuple[str, ...]
    references: tuple[ReferenceCurve, ...]
    log_rate: bool


class Trainer:
    """Base class for trainer plugins: ``python -m harness train NAME [options]``.

    The command line parses the options the trainer declares in
    ``add_arguments`` and hands them to ``train``. A trainer raises
    ``harness.UserError`` for bad options or inputs, so the user sees one line.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the trainer's options on its own sub-command parser."""

    def train(self, args: argparse.Namespace) -> None:
        raise NotImplementedError(_not_defined(self, "train(self, args)", "Trainer", "train"))


def _given_keywords(cls: type, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments by name, positional ones included (by their place in ``__init__``'s signature)."""
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    return {**dict(zip(names, args)), **kwargs}


def _not_defined(plugin: object, method: str, base: str, required: str) -> str:
    """What a plugin class that left out a method of its base class lacks, and what to do: the error row of a
    codec without ``encode`` once read ``NotImplementedError: `` and nothing more."""
    cls = type(plugin)
    return (f"{cls.__module__}.{cls.__qualname__} does not define {method}; a harness.{base} subclass must define "
            f"{required}")
