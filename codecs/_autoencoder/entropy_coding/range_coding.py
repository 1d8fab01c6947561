"""Range coding of a batch's tiles: in the codec's own process, or spread over worker processes.

With the networks on a GPU, the range coding on the CPU bounds the
entropy-coded codecs: about 32 MPix/s encoding and 17 to 22 decoding per core
for the GDN checkerboard (``benchmarks/entropy_coding_throughput.py``).
``constriction`` holds the GIL while it codes (two threads took 1.3 times as
long as one thread doing both calls), so tiles are spread over processes, not
threads: the codec option ``range_coding_processes: N`` gives it N worker
processes, each coding whole tiles, the tiles of a batch dealt round-robin.

Encoding takes one call per worker and batch: a tile's sections in, its
32-bit words out. Decoding cannot: between a tile's sections the networks
that pick the next section's tables need the values decoded so far, and the
next section starts where the range decoder stopped. So each tile's decoder
stays in its worker from its first section to its last, and every section is
one call per worker. The streams are the same bytes either way.

Values and table indexes travel through shared memory (``array_channel``),
in 16 bits where they fit (they do for a trained latent): a quarter of the
bytes of int64. Each request is a round trip to every worker used, so the
workers pay off where a batch holds milliseconds of coding per worker.

Each worker is a ``harness.WorkerProcess`` (the primitive isolation and
fuzzing use too: spawned, replaced when it dies, gone with its parent) whose
messages travel through the array channel. It imports this module, numpy,
constriction and the light part of ``harness``, not torch (tested), nor the
program's main script: about 35 MB resident and a third of a second to start
on the 2-core VM, against 240 MB and 2 to 4 s with torch.
"""

from __future__ import annotations

import functools
import itertools
import pickle
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from harness import WorkerDied, WorkerProcess
from harness_codecs._autoencoder.entropy_coding.array_channel import ArrayChannel
from harness_codecs._autoencoder.entropy_coding.symbol_coding import SymbolCoder, new_decoder, new_encoder
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables
from harness_codecs._autoencoder.entropy_coding.trellis import ChainedSymbolCoder

LATENT, SIDE, TRELLIS = "latent", "side", "trellis"
"""The coders a stream's sections name: the latent ``y``'s tables, the side latent ``z``'s, and ``y``'s levels
of trellis-coded quantization along chains (``trellis.ChainedSymbolCoder``)."""
SCALE_CODERS = (LATENT, TRELLIS)
"""The coders whose tables are a Gaussian's per tabulated scale: those the tile's scale shifts move."""


@dataclass(frozen=True)
class Section:
    """One part of every stream of a batch: each tile's ``values`` (batch first) under the tables ``tables``
    names (same shape), range-coded by the coder named ``coder`` (which groups them by table)."""

    coder: str
    values: np.ndarray
    tables: np.ndarray


TilePart = tuple[str, np.ndarray, np.ndarray]
"""One tile's share of a ``Section``: coder name, values, tables."""


def tile_parts(sections: list[Section]) -> list[list[TilePart]]:
    """Per tile of the batch, its parts of every section, in stream order."""
    return [[(section.coder, section.values[tile], section.tables[tile]) for section in sections]
            for tile in range(len(sections[0].values))]


def encode_tile(coders: dict[str, SymbolCoder], parts: list[TilePart]) -> np.ndarray:
    """One tile's range-coder words."""
    encoder = new_encoder()
    for coder, values, tables in parts:
        coders[coder].encode(encoder, values, tables)
    return encoder.get_compressed()


def symbol_coders(tables: dict[str, ProbabilityTables]) -> dict[str, SymbolCoder | ChainedSymbolCoder]:
    return {name: (ChainedSymbolCoder if name == TRELLIS else SymbolCoder)(probabilities)
            for name, probabilities in tables.items()}


class RangeCoding:
    """Range coding in the codec's own process."""

    def __init__(self, tables: dict[str, ProbabilityTables]):
        self.coders = symbol_coders(tables)

    def encode(self, sections: list[Section]) -> list[np.ndarray]:
        """Each tile's words: its parts of ``sections``, in order."""
        return [encode_tile(self.coders, parts) for parts in tile_parts(sections)]

    def decoders(self, words: list[np.ndarray]) -> LocalDecoders:
        return LocalDecoders(self.coders, words)


class LocalDecoders:
    """One range decoder per tile of a batch, read section by section (``RangeCoding.decoders``)."""

    def __init__(self, coders: dict[str, SymbolCoder], words: list[np.ndarray]):
        self.coders = coders
        self.decoders = [new_decoder(tile_words) for tile_words in words]

    def __len__(self) -> int:
        return len(self.decoders)

    def read(self, coder: str, tables: np.ndarray) -> np.ndarray:
        """Every tile's next section (int64, batch first), its values under ``tables`` (batch first)."""
        return self.coders[coder].decode_tiles(self.decoders, tables)

    def exhausted(self) -> list[bool]:
        """Per tile, whether its stream may hold nothing more (see ``RangeDecoder.maybe_exhausted``)."""
        return [decoder.maybe_exhausted() for decoder in self.decoders]

    def close(self) -> None:
        """Nothing to release in this process."""


class PooledRangeCoding:
    """Range coding spread over ``processes`` worker processes, each with its own copy of the coders.

    Each worker is one process at the end of a pipe whose arrays travel through shared memory
    (``array_channel``), so a call costs one message each way and no thread hand-offs. A worker that dies
    fails the call it was on (an error, which the runner turns into error rows) and is replaced on the next
    call; workers end with the pool, or when the process that started them ends, however it ends."""

    def __init__(self, tables: dict[str, ProbabilityTables], processes: int):
        self.processes = processes
        self.workers = [WorkerProcess(_range_coder, tables, channel=_array_channel) for _ in range(processes)]
        for worker in self.workers:  # started together, awaited here, so that no timed call waits for them
            worker.start()
        for worker in self.workers:
            worker.ready()

    def deal(self, count: int, kind: str, *per_tile: Sequence, shared: tuple = ()) -> list:
        """The results of request ``kind`` for ``count`` tiles dealt round-robin over the workers: each worker
        gets every n-th element of each of ``per_tile`` (and ``shared`` as it is) in one message."""
        used = self.workers[:min(count, self.processes)]
        for worker in used:
            if not worker.alive():
                worker.restart()
        sent = [_sent(worker, (kind, *(values[index::len(used)] for values in per_tile), *shared))
                for index, worker in enumerate(used)]
        answers = [_received(worker) if failure is None else failure for worker, failure in zip(used, sent)]
        failures = [answer for answer in answers if isinstance(answer, BaseException)]
        if failures:
            raise failures[0]
        return [answers[tile % len(used)][tile // len(used)] for tile in range(count)]

    def encode(self, sections: list[Section]) -> list[np.ndarray]:
        compact = [Section(section.coder, _compact(section.values), _compact(section.tables)) for section in sections]
        return self.deal(len(sections[0].values), "encode", tile_parts(compact))

    def decoders(self, words: list[np.ndarray]) -> PooledDecoders:
        return PooledDecoders(self, words)


def _sent(worker: WorkerProcess, request: tuple) -> RuntimeError | None:
    """None, or the error of a worker that died."""
    try:
        worker.send(request)
        return None
    except WorkerDied as died:
        return _died(died)


def _received(worker: WorkerProcess) -> Any:
    """The answer, or the error the request raised in the worker, or the error of a worker that died."""
    try:
        return worker.receive()
    except WorkerDied as died:
        return _died(died)


def _died(died: WorkerDied) -> RuntimeError:
    return RuntimeError(f"a range-coding worker process died (exit code {died.exitcode})")


def _array_channel(connection: Connection, in_worker: bool) -> ArrayChannel:
    """The worker's end reads the arrays in place (its request is done when it answers); the pool's copies them."""
    return ArrayChannel(connection, copy=not in_worker)


_KEYS = itertools.count()
"""Names the decoders a worker holds, unique across the batches of every pool in this process."""


class PooledDecoders:
    """One range decoder per tile of a batch, each kept in the worker its tile was dealt to; the words go
    with the first section's request, which opens the decoders."""

    def __init__(self, pool: PooledRangeCoding, words: list[np.ndarray]):
        self.pool = pool
        self.keys = [next(_KEYS) for _ in words]
        self.unopened: list[np.ndarray] | None = words
        self.open = True

    def __len__(self) -> int:
        return len(self.keys)

    def read(self, coder: str, tables: np.ndarray) -> np.ndarray:
        tables = list(_compact(tables))
        if self.unopened is None:
            values = self.pool.deal(len(self.keys), "read", self.keys, tables, shared=(coder,))
        else:
            words, self.unopened = self.unopened, None
            values = self.pool.deal(len(self.keys), "open and read", self.keys, words, tables, shared=(coder,))
        return np.stack(values).astype(np.int64)

    def exhausted(self) -> list[bool]:
        """The last call: also drops the decoders from their workers."""
        self.open = False
        return self.pool.deal(len(self.keys), "finish", self.keys)

    def close(self) -> None:
        """Drop the tiles' decoders from their workers, if ``exhausted`` did not (after an error)."""
        if self.open:
            self.exhausted()


TileDecoders = LocalDecoders | PooledDecoders
"""A batch's decoders, read section by section: ``read``, then ``exhausted``, then ``close`` (after an error too)."""


def range_coding(tables: dict[str, ProbabilityTables], processes: int) -> RangeCoding | PooledRangeCoding:
    """In this process for 0 processes, else spread over that many."""
    return RangeCoding(tables) if processes == 0 else PooledRangeCoding(tables, processes)


def _compact(integers: np.ndarray) -> np.ndarray:
    """The integers in the smallest of int16, int32 and int64 that holds them all: a trained latent's values and
    table indexes fit in 16 bits, a quarter of the bytes to send."""
    if integers.size:
        low, high = integers.min(), integers.max()
        for dtype in (np.int16, np.int32):
            if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
                return integers.astype(dtype, order="C")
    return np.ascontiguousarray(integers)


def _range_coder(tables: dict[str, ProbabilityTables]) -> Callable[[tuple], Any]:
    """A range-coding worker's setup. It holds the decoders of the tiles dealt to it, by key, from a batch's first
    section to its ``finish``. Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    coders = symbol_coders(tables)
    decoders: dict[int, Any] = {}

    def encode(parts: list[list[TilePart]]) -> list[np.ndarray]:
        return [encode_tile(coders, tile) for tile in parts]

    def read(keys: list[int], tables: list[np.ndarray], coder: str) -> list[np.ndarray]:
        return list(_compact(coders[coder].decode_tiles([decoders[key] for key in keys], np.stack(tables))))

    def open_and_read(keys: list[int], words: list[np.ndarray], tables: list[np.ndarray],
                      coder: str) -> list[np.ndarray]:
        decoders.update((key, new_decoder(tile_words)) for key, tile_words in zip(keys, words))  # copies the words
        return read(keys, tables, coder)

    def finish(keys: list[int]) -> list[bool]:
        return [decoders.pop(key).maybe_exhausted() if key in decoders else False for key in keys]

    handlers = {"encode": encode, "open and read": open_and_read, "read": read, "finish": finish}
    return functools.partial(_answer, handlers)


def _answer(handlers: dict[str, Callable[..., list]], request: tuple) -> Any:
    """A request's answer, or the exception it raised (constriction's AssertionError on a stream its model cannot
    have written, among others), raised again by the pool as it is. Without the traceback, whose frames would keep
    the request's arrays, which live in shared memory that the next request may replace; as a RuntimeError naming
    it when it cannot be pickled."""
    kind, *arguments = request
    try:
        return handlers[kind](*arguments)
    except Exception as exc:
        return _portable(exc.with_traceback(None))


def _portable(exc: Exception) -> Exception:
    try:
        pickle.dumps(exc, protocol=5)
        return exc
    except Exception:  # pickling can fail in many ways (PicklingError, TypeError, AttributeError)
        return RuntimeError(f"{type(exc).__name__}: {exc}")
