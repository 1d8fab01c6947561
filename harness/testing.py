"""Conformance checks for codec plugins: what the runner relies on, for built-in and third-party codecs alike.

Subclass ``CodecConformance`` in a test module and pytest runs every check on your codec::

    from harness.testing import CodecConformance
    from my_plugin import MyCodec

    class TestMyCodec(CodecConformance):
        codec_class = MyCodec
        options = {"quality": 50}       # one rate point; left out: MyCodec.example_point

The checks: bytes out and the tile's shape back as finite floats; the same bytes for the same tile; a
``stream_version`` that is None or a whole number (it goes into every row); odd tile
sizes; a stream decoded for another shape, or damaged, refused with ``ValueError`` (the runner's error row);
a value just past each declared range, or outside declared choices, refused with a ``ValueError`` naming the
option; a ``lossless=True`` point, where the codec declares a ``lossless`` option, marked lossless and
reconstructing every sample within half a step of its ``precision`` (``sample_step``); the rate never falling and
the mean squared error never growing as the codec's ``rate_knob`` asks for more bits; and ``FUZZ_CASES`` mutated streams (bit flips, truncation,
header damage, appended garbage), each refused with ``ValueError`` or decoded to a valid tile, within
``FUZZ_CALL_LIMIT_S`` seconds and ``FUZZ_MEMORY_LIMIT_BYTES`` of new memory per call. The mutated streams are
decoded in a separate process, so that a decoder that hangs in native code, aborts or allocates what a
damaged header claims fails the check instead of the test session. The built-in codecs run the same class
(``tests/test_codec_conformance.py``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from harness.api import Codec, CodecOption
from harness.rate_points import LOSSLESS_OPTION
from harness.sar import db_to_linear, linear_to_db, normalize_db
from harness.rate_matching import knob_value
from harness.measure import check_reconstruction
from harness.workers import WorkerDied, WorkerFailed, WorkerProcess, WorkerTimeout

FUZZ_CASES = 200
FUZZ_CALL_LIMIT_S = 10.0
FUZZ_MEMORY_LIMIT_BYTES = 2 << 30
"""Address space a decode may add to the fuzzing process: far above any real 64x64 tile, far below a bomb."""
FUZZ_SEED = 0
ODD_SHAPES = ((61, 47), (33, 64))
KNOB_POSITIONS = (0.0, 0.3, 0.6, 1.0)
"""Where the rate and error checks set the rate knob, from fewest bits (0) to most (1)."""
FLOAT32_EPS = float(np.finfo(np.float32).eps)
SPECKLE_LOOKS = 4.4
TILE_RANGE_DB = (-25.0, 5.0)


def unavailable_without(module: str, library: str) -> dict[str, str | None]:
    """Each codec's ``unavailable`` reason, by codec name, when ``module`` is imported in a fresh interpreter in which
    ``import library`` fails, as on a machine without it. A plugin module must import there, so that its codecs still
    register and ``harness list`` can say what is missing and how to install it."""
    script = (f"import sys; sys.modules[{library!r}] = None\n"
              f"import json, {module} as plugin\n"
              "print(json.dumps({codec.name: codec.unavailable for codec in plugin.harness_codecs()}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def speckled_tile(shape: tuple[int, int] = (64, 64), seed: int = 0) -> np.ndarray:
    """Piecewise-constant backscatter under 4.4-look speckle, normalized to [0, 1]: a SAR-like test tile.

    Region means stay well inside the dB range so that almost no pixel is clipped: a clipped pixel is
    exact, which would flatter a codec.
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    region_db = rng.uniform(-18.0, -4.0, size=(8, 8))  # an 8 x 8 grid of regions, well inside the dB range
    mean_db = np.kron(region_db, np.ones((math.ceil(rows / 8), math.ceil(cols / 8))))[:rows, :cols]
    intensity = db_to_linear(mean_db) * rng.gamma(SPECKLE_LOOKS, 1.0 / SPECKLE_LOOKS, size=mean_db.shape)
    return normalize_db(linear_to_db(intensity), TILE_RANGE_DB)


def mutated_streams(stream: bytes, count: int = FUZZ_CASES, seed: int = FUZZ_SEED) -> list[tuple[str, bytes]]:
    """``count`` damaged copies of ``stream``, named for what was done, in equal shares of four kinds."""
    rng = np.random.default_rng(seed)
    kinds = (_flip_bits, _truncate, _damage_header, _append_garbage)
    return [kind(stream, rng) for index in range(count) for kind in [kinds[index % len(kinds)]]]


def _flip_bits(stream: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    data = bytearray(stream)
    positions = rng.integers(0, 8 * len(data), size=int(rng.integers(1, 9)))
    for position in positions:
        data[position // 8] ^= 1 << int(position % 8)
    return f"bits {sorted(int(p) for p in positions)} flipped", bytes(data)


def _truncate(stream: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    kept = int(rng.integers(0, len(stream)))
    return f"cut to {kept} of {len(stream)} bytes", stream[:kept]


def _damage_header(stream: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    data = bytearray(stream)
    head = min(len(data), 64)
    positions = sorted({int(p) for p in rng.integers(0, head, size=int(rng.integers(1, 5)))})
    for position in positions:
        data[position] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
    return f"header bytes {positions} overwritten", bytes(data)


def _append_garbage(stream: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    garbage = rng.integers(0, 256, size=int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    return f"{len(garbage)} garbage bytes appended", stream + garbage


def fuzz_decoder(codec_class: type[Codec], options: dict[str, Any], shape: tuple[int, int],
                 cases: list[tuple[str, bytes]], call_limit_s: float = FUZZ_CALL_LIMIT_S,
                 memory_limit_bytes: int = FUZZ_MEMORY_LIMIT_BYTES) -> list[str]:
    """Decode every case in a worker process under the call limits; the problems found, one line each.

    A case passes when ``decode`` raises ``ValueError`` or returns a valid tile. A worker that dies or
    passes the time limit fails its case and a fresh worker takes the next one.
    """
    worker = WorkerProcess(_fuzzing_worker, codec_class, options, shape, memory_limit_bytes)
    problems: list[str] = []
    try:
        for name, stream in cases:
            problem = _case_problem(worker, stream, call_limit_s)
            if problem:
                problems.append(f"{name}: {problem}")
    except WorkerFailed as exc:  # the worker's setup: a case's own errors are its problem line
        problems.append(f"the codec could not be built in the fuzzing worker: {exc}")
    finally:
        worker.stop()
    return problems


def _case_problem(worker: WorkerProcess, stream: bytes, call_limit_s: float) -> str | None:
    """What went wrong decoding ``stream`` in the worker (started first if it is not running), or None."""
    try:
        if not worker.alive():
            worker.restart()
        return worker.call(stream, call_limit_s)
    except WorkerTimeout:
        return f"took over {call_limit_s:g} s"
    except WorkerDied as exc:
        return f"the worker died (exit code {exc.exitcode})"


def _fuzzing_worker(codec_class: type[Codec], options: dict[str, Any], shape: tuple[int, int],
                    memory_limit_bytes: int) -> Callable[[bytes], str | None]:
    """The fuzzing worker's setup: the codec, made to load its libraries and allocate its pools by one encode
    before the memory cap; then each request is a stream to decode, answered with its problem."""
    codec = codec_class(**options)
    codec.encode(speckled_tile(shape))
    _limit_new_memory(memory_limit_bytes)
    return functools.partial(_decode_problem, codec, shape=shape)


def _decode_problem(codec: Codec, stream: bytes, shape: tuple[int, int]) -> str | None:
    try:
        decoded = codec.decode(stream, shape)
    except ValueError:
        return None
    except MemoryError:
        return "MemoryError: the decoder asked for more new memory than the limit"
    except Exception as exc:  # any other type escapes the codec contract
        return f"raised {type(exc).__name__} instead of ValueError: {exc}"
    return reconstruction_problem(decoded, shape)


def reconstruction_problem(decoded: Any, shape: tuple[int, int]) -> str | None:
    """What makes ``decoded`` no valid tile of ``shape`` for the runner (the words of its error row), or None."""
    try:
        check_reconstruction(decoded, shape)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def point_to_check(codec_class: type[Codec], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rate point a conformance check builds ``codec_class`` at: ``options`` when given, else the codec's
    ``example_point`` (none: no options)."""
    if options is not None:
        return options
    return dict(codec_class.example_point or {})


def values_outside(option: CodecOption) -> list[Any]:
    """Values just past an option's declared range (the excluded bound itself, or the next integer or float beyond
    an included one), or one outside its declared choices; none for an option declared without either."""
    if option.choices:
        if all(isinstance(choice, str) for choice in option.choices):
            return [max(option.choices, key=len) + "x"]  # longer than every choice
        numbers = [choice for choice in option.choices if isinstance(choice, (int, float))]
        return [max(numbers) + 1] if len(numbers) == len(option.choices) else []
    if option.type not in (int, float):
        return []
    values = []
    for bound, excluded, direction in ((option.minimum, option.exclusive_minimum, -1),
                                       (option.maximum, option.exclusive_maximum, 1)):
        if bound is None:
            continue
        if excluded:
            values.append(bound)
        elif option.type is int:
            values.append(bound + direction)
        else:
            values.append(math.nextafter(bound, direction * math.inf))
    return values


def refusal_problems(codec_class: type[Codec], options: dict[str, Any]) -> list[str]:
    """Each value just past a declared range or outside declared choices (``values_outside``), given with
    ``options``, that the codec accepts or refuses without a ``ValueError`` naming the option; one line each."""
    problems = []
    for option in codec_class.options or ():
        for value in values_outside(option):
            try:
                codec_class(**{**options, option.name: value})
            except ValueError as exc:
                if option.name not in str(exc):
                    problems.append(f"{option.name}={value!r} refused without naming {option.name}: {exc}")
            else:
                problems.append(f"{option.name}={value!r} accepted; declared: {option.accepted}")
    return problems


def sample_step(precision: str) -> float:
    """The step between the samples a codec of ``precision`` codes: 1 / (2**N - 1) for ``uintN``, else 0 (the
    floats as they are)."""
    bits = re.fullmatch(r"uint(\d+)", precision)
    return 1.0 / (2 ** int(bits[1]) - 1) if bits else 0.0


def _mean_squared_error(tile: np.ndarray, decoded: np.ndarray) -> float:
    return float(np.mean((np.asarray(decoded, dtype=np.float64) - tile) ** 2))


def _limit_new_memory(extra_bytes: int) -> None:
    """Cap the process's address space at its present size plus ``extra_bytes`` (Linux; elsewhere no cap)."""
    try:
        with open("/proc/self/statm") as statm:
            present = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    resource.setrlimit(resource.RLIMIT_AS, (present + extra_bytes, resource.RLIM_INFINITY))


class CodecConformance:
    """Every check the harness relies on, run on ``codec_class(**options)``; subclass it in a test module.

    ``options`` left out (None): the codec's declared ``example_point``, or no options when it declares none.
    """

    codec_class: type[Codec]
    options: dict[str, Any] | None = None
    tile_shape: tuple[int, int] = (64, 64)

    @pytest.fixture(scope="class")
    @classmethod
    def codec_under_test(cls) -> tuple[type[Codec], dict[str, Any]]:
        """The class and options checked; override this fixture to parametrize over several codecs."""
        return cls.codec_class, point_to_check(cls.codec_class, cls.options)

    @pytest.fixture(scope="class")
    @classmethod
    def coded(cls, codec_under_test) -> tuple[Codec, np.ndarray, bytes]:
        codec_class, options = codec_under_test
        if codec_class.unavailable:
            pytest.skip(codec_class.unavailable)
        codec = codec_class(**options)
        tile = speckled_tile(cls.tile_shape)
        return codec, tile, codec.encode(tile)

    def test_encode_gives_bytes_and_decode_gives_the_tile_shape_as_valid_floats(self, coded):
        codec, tile, stream = coded
        assert isinstance(stream, bytes) and len(stream) > 0
        assert reconstruction_problem(codec.decode(stream, tile.shape), tile.shape) is None

    def test_the_stream_version_is_a_whole_number_or_left_to_the_library(self, coded):
        version = coded[0].stream_version
        assert version is None or (isinstance(version, int) and not isinstance(version, bool) and version >= 0)

    def test_the_same_tile_gives_the_same_bytes(self, coded):
        codec, tile, stream = coded
        assert codec.encode(tile) == stream

    @pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda shape: f"{shape[0]}x{shape[1]}")
    def test_a_tile_of_odd_size_round_trips_to_its_shape(self, coded, shape):
        codec = coded[0]
        if min(shape) < codec.min_tile_size:
            pytest.skip(f"{codec.name} codes tiles of at least {codec.min_tile_size} px")
        tile = speckled_tile(shape, seed=1)
        assert reconstruction_problem(codec.decode(codec.encode(tile), shape), shape) is None

    def test_a_stream_decoded_for_a_tile_of_another_size_is_refused_with_value_error(self, coded):
        codec, tile, stream = coded
        with pytest.raises(ValueError):
            codec.decode(stream, (tile.shape[0] // 2, tile.shape[1] // 2))

    @pytest.mark.parametrize("damage", ["empty", "first half", "last byte dropped"])
    def test_a_damaged_stream_is_refused_with_value_error(self, coded, damage):
        codec, tile, stream = coded
        damaged = {"empty": b"", "first half": stream[: len(stream) // 2], "last byte dropped": stream[:-1]}[damage]
        with pytest.raises(ValueError):
            codec.decode(damaged, tile.shape)

    @pytest.fixture(scope="class")
    @classmethod
    def knob_sweep(cls, coded, codec_under_test) -> list[tuple[int, float]]:
        """The tile coded with the rate knob at each of ``KNOB_POSITIONS``, fewest bits first: the stream's length
        and the decoded tile's mean squared error."""
        codec, tile, _ = coded
        knob = codec.rate_knob
        if knob is None:
            pytest.skip(f"{codec.name} declares no rate_knob")
        codec_class, options = codec_under_test
        sweep = []
        for position in KNOB_POSITIONS:
            codec_at = codec_class(**{**options, knob.option: knob_value(knob, position)})
            stream = codec_at.encode(tile)
            sweep.append((len(stream), _mean_squared_error(tile, codec_at.decode(stream, tile.shape))))
        return sweep

    def test_the_rate_never_falls_as_the_rate_knob_asks_for_more_bits(self, knob_sweep):
        sizes = [size for size, _ in knob_sweep]
        assert sizes == sorted(sizes) and sizes[0] < sizes[-1]

    def test_the_error_never_grows_as_the_rate_knob_asks_for_more_bits(self, knob_sweep):
        errors = [error for _, error in knob_sweep]
        assert errors == sorted(errors, reverse=True)

    def test_a_value_past_a_declared_range_or_outside_declared_choices_is_refused_naming_the_option(
            self, codec_under_test):
        codec_class, options = codec_under_test
        if not any(values_outside(option) for option in codec_class.options or ()):
            pytest.skip(f"{codec_class.name} declares no option with a range or choices")
        assert refusal_problems(codec_class, options) == []

    def test_a_lossless_point_is_marked_lossless_and_reconstructs_every_sample_of_its_precision(
            self, coded, codec_under_test):
        codec, tile, _ = coded
        codec_class, options = codec_under_test
        if not any(option.name == LOSSLESS_OPTION and option.type is bool for option in codec_class.options or ()):
            pytest.skip(f"{codec.name} declares no {LOSSLESS_OPTION} option")
        knob = codec.rate_knob
        point = {name: value for name, value in options.items() if knob is None or name != knob.option}
        lossless = codec_class(**point, **{LOSSLESS_OPTION: True})

        decoded = lossless.decode(lossless.encode(tile), tile.shape)

        step = sample_step(lossless.precision)
        assert lossless.lossless
        assert np.abs(np.asarray(decoded, dtype=np.float64) - tile).max() <= (step / 2 + FLOAT32_EPS if step else 0)

    def test_mutated_streams_are_refused_or_decoded_within_the_call_limits(self, coded, codec_under_test):
        _, tile, stream = coded
        codec_class, options = codec_under_test
        problems = fuzz_decoder(codec_class, options, tile.shape, mutated_streams(stream))
        assert problems == [], f"{len(problems)} of {FUZZ_CASES} mutated streams:\n" + "\n".join(problems[:20])

