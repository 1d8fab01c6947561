"""Conformance checks for codec plugins: what the runner relies on, for built-in and third-party codecs alike.

Subclass ``CodecConformance`` in a test module and pytest runs every check on your codec::

    from harness.testing import CodecConformance
    from my_plugin import MyCodec

    class TestMyCodec(CodecConformance):
        codec_class = MyCodec
        options = {"quality": 50}       # one rate point

The checks: bytes out and the tile's shape back as finite floats; the same bytes for the same tile; odd tile
sizes; a stream decoded for another shape, or damaged, refused with ``ValueError`` (the runner's error row);
the rate rising with the codec's ``rate_knob``; and ``FUZZ_CASES`` mutated streams (bit flips, truncation,
header damage, appended garbage), each refused with ``ValueError`` or decoded to a valid tile, within
``FUZZ_CALL_LIMIT_S`` seconds and ``FUZZ_MEMORY_LIMIT_BYTES`` of new memory per call. The mutated streams are
decoded in a separate process, so that a decoder that hangs in native code, aborts or allocates what a
damaged header claims fails the check instead of the test session. The built-in codecs run the same class
(``tests/test_codec_conformance.py``).
"""

from __future__ import annotations

import faulthandler
import json
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from harness.api import Codec
from harness.sar import db_to_linear, linear_to_db, normalize_db
from harness.rate_matching import knob_value
from harness.measure import check_reconstruction

FUZZ_CASES = 200
FUZZ_CALL_LIMIT_S = 10.0
FUZZ_MEMORY_LIMIT_BYTES = 2 << 30
"""Address space a decode may add to the fuzzing process: far above any real 64x64 tile, far below a bomb."""
FUZZ_SEED = 0
ODD_SHAPES = ((61, 47), (33, 64))
KNOB_POSITIONS = (0.0, 0.3, 0.6, 1.0)
"""Where the rate check sets the rate knob, from fewest bits (0) to most (1)."""
SPECKLE_LOOKS = 4.4
TILE_RANGE_DB = (-25.0, 5.0)
CONTEXT = multiprocessing.get_context("spawn")
"""Not fork: forking after torch's thread pools have run can deadlock the child."""


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
    limits = (call_limit_s, memory_limit_bytes)
    problems: list[str] = []
    next_case = 0
    while next_case < len(cases):
        next_case = _fuzz_in_one_worker(codec_class, options, shape, cases, next_case, limits, problems)
    return problems


def _fuzz_in_one_worker(codec_class: type[Codec], options: dict[str, Any], shape: tuple[int, int],
                        cases: list[tuple[str, bytes]], first: int, limits: tuple[float, int],
                        problems: list[str]) -> int:
    """Run cases from ``first`` in a new worker until they are done or it dies; the next case to run."""
    call_limit_s = limits[0]
    parent, child = CONTEXT.Pipe()
    # Not daemonic, since a codec may start processes of its own (the learned codecs' range_coding_processes),
    # which a daemonic process may not; it is stopped below however this ends.
    worker = CONTEXT.Process(target=_fuzz_worker, args=(child, codec_class, options, shape, cases[first:], limits),
                             daemon=False)
    worker.start()
    child.close()
    current, started = first, time.monotonic()
    try:
        while True:
            if not parent.poll(call_limit_s + 60.0):  # the worker's own watchdog failed too
                worker.kill()
                problems.append(f"{cases[current][0]}: no answer; the worker was killed")
                return current + 1
            try:
                message = parent.recv()
            except EOFError:
                worker.join()
                elapsed = time.monotonic() - started
                why = (f"took over {call_limit_s:g} s" if elapsed >= call_limit_s
                       else f"the worker died (exit code {worker.exitcode})")
                problems.append(f"{cases[current][0]}: {why}")
                return current + 1
            if message[0] == "setup failed":
                problems.append(f"the codec could not be built in the fuzzing worker: {message[1]}")
                return len(cases)
            if message[0] == "finished":
                return len(cases)
            kind, index, problem = message
            if kind == "start":
                current, started = first + index, time.monotonic()
            elif problem:
                problems.append(f"{cases[first + index][0]}: {problem}")
    finally:
        worker.join(5.0)
        if worker.is_alive():
            worker.kill()
        parent.close()


def _fuzz_worker(connection: Any, codec_class: type[Codec], options: dict[str, Any], shape: tuple[int, int],
                 cases: list[tuple[str, bytes]], limits: tuple[float, int]) -> None:
    call_limit_s, memory_limit_bytes = limits
    try:
        codec = codec_class(**options)
        codec.encode(speckled_tile(shape))  # libraries load and allocate their pools before the memory cap
    except Exception as exc:  # reported, not raised: the parent names it
        connection.send(("setup failed", f"{type(exc).__name__}: {exc}"))
        return
    _limit_new_memory(memory_limit_bytes)
    for index, (_, stream) in enumerate(cases):
        connection.send(("start", index, None))
        faulthandler.dump_traceback_later(call_limit_s, exit=True)  # a C-level watchdog: works in native code
        connection.send(("done", index, _decode_problem(codec, stream, shape)))
        faulthandler.cancel_dump_traceback_later()
    connection.send(("finished",))


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


def _limit_new_memory(extra_bytes: int) -> None:
    """Cap the process's address space at its present size plus ``extra_bytes`` (Linux; elsewhere no cap)."""
    try:
        with open("/proc/self/statm") as statm:
            present = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    resource.setrlimit(resource.RLIMIT_AS, (present + extra_bytes, resource.RLIM_INFINITY))


class CodecConformance:
    """Every check the harness relies on, run on ``codec_class(**options)``; subclass it in a test module."""

    codec_class: type[Codec]
    options: dict[str, Any] = {}
    tile_shape: tuple[int, int] = (64, 64)

    @pytest.fixture(scope="class")
    @classmethod
    def codec_under_test(cls) -> tuple[type[Codec], dict[str, Any]]:
        """The class and options checked; override this fixture to parametrize over several codecs."""
        return cls.codec_class, cls.options

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

    def test_the_rate_never_falls_as_the_rate_knob_asks_for_more_bits(self, coded, codec_under_test):
        codec, tile, _ = coded
        knob = codec.rate_knob
        if knob is None:
            pytest.skip(f"{codec.name} declares no rate_knob")
        codec_class, options = codec_under_test
        sizes = [len(codec_class(**{**options, knob.option: knob_value(knob, position)}).encode(tile))
                 for position in KNOB_POSITIONS]
        assert sizes == sorted(sizes) and sizes[0] < sizes[-1]

    def test_mutated_streams_are_refused_or_decoded_within_the_call_limits(self, coded, codec_under_test):
        _, tile, stream = coded
        codec_class, options = codec_under_test
        problems = fuzz_decoder(codec_class, options, tile.shape, mutated_streams(stream))
        assert problems == [], f"{len(problems)} of {FUZZ_CASES} mutated streams:\n" + "\n".join(problems[:20])

