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

A worker imports this module, numpy and constriction, not torch (tested):
about 35 MB resident and a third of a second to start on the 2-core VM,
against 240 MB and 2 to 4 s with torch. Like every spawned process it also
imports the program's main script, if that is a file: a script that imports
torch at its top gives its workers torch too (``python -m harness`` does not).
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import pickle
import signal
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from harness_codecs._autoencoder.entropy_coding.array_channel import ArrayChannel
from harness_codecs._autoencoder.entropy_coding.symbol_coding import SymbolCoder, new_decoder, new_encoder
from harness_codecs._autoencoder.entropy_coding.probability_tables import ProbabilityTables

LATENT, SIDE = "latent", "side"
"""The coders a stream's sections name: the latent ``y``'s tables, the side latent ``z``'s."""
CONTEXT = multiprocessing.get_context("spawn")
"""Workers are spawned: forking a process whose torch thread pools have run can deadlock the child."""
STOP_GRACE_S = 5.0


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


def symbol_coders(tables: dict[str, ProbabilityTables]) -> dict[str, SymbolCoder]:
    return {name: SymbolCoder(probabilities) for name, probabilities in tables.items()}


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
        return np.stack([self.coders[coder].decode(decoder, tile_tables)
                         for decoder, tile_tables in zip(self.decoders, tables)])

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
    call; workers end with the pool, or when the process that started them ends (their pipe closes),
    however it ends."""

    def __init__(self, tables: dict[str, ProbabilityTables], processes: int):
        self.tables = tables
        self.processes = processes
        self.workers = [_Worker(tables) for _ in range(processes)]
        for worker in self.workers:  # started together, awaited here, so that no timed call waits for them
            worker.ready()
        # Stopped when the pool is collected, or at exit before multiprocessing ends its daemonic processes
        # (registered after it, so run first), so that each worker removes its shared memory itself.
        atexit.register(weakref.finalize(self, _stop_all, self.workers))

    def deal(self, count: int, kind: str, *per_tile: Sequence, shared: tuple = ()) -> list:
        """The results of request ``kind`` for ``count`` tiles dealt round-robin over the workers: each worker
        gets every n-th element of each of ``per_tile`` (and ``shared`` as it is) in one message."""
        used = min(count, self.processes)
        for index in range(used):
            if not self.workers[index].alive():
                self.workers[index].discard()
                self.workers[index] = _Worker(self.tables)
                self.workers[index].ready()
        sent = [self.workers[index].send((kind, *(values[index::used] for values in per_tile), *shared))
                for index in range(used)]
        answers = [self.workers[index].receive() if sent[index] is None else sent[index] for index in range(used)]
        failures = [answer for answer in answers if isinstance(answer, BaseException)]
        if failures:
            raise failures[0]
        return [answers[tile % used][tile // used] for tile in range(count)]

    def encode(self, sections: list[Section]) -> list[np.ndarray]:
        compact = [Section(section.coder, _compact(section.values), _compact(section.tables)) for section in sections]
        return self.deal(len(sections[0].values), "encode", tile_parts(compact))

    def decoders(self, words: list[np.ndarray]) -> PooledDecoders:
        return PooledDecoders(self, words)


class _Worker:
    """One range-coding process and the parent's end of its pipe."""

    def __init__(self, tables: dict[str, ProbabilityTables]):
        connection, child = CONTEXT.Pipe()
        self.process = CONTEXT.Process(target=_serve, args=(child, tables), daemon=True)
        self.process.start()
        child.close()
        self.channel = ArrayChannel(connection, copy=True)
        self.broken = False

    def ready(self) -> None:
        """Wait until the worker has started (imported its modules, built its coders)."""
        answer = self.receive()
        if isinstance(answer, BaseException):
            raise answer

    def alive(self) -> bool:
        return not self.broken and self.process.is_alive()

    def send(self, request: tuple) -> RuntimeError | None:
        """None, or the error of a worker that died."""
        try:
            self.channel.send(request)
            return None
        except (BrokenPipeError, ConnectionResetError):
            return self._died()

    def receive(self) -> Any:
        """The answer, or the error the request raised in the worker, or the error of a worker that died."""
        try:
            return self.channel.receive()
        except (EOFError, ConnectionResetError):
            return self._died()

    def _died(self) -> RuntimeError:
        self.broken = True
        self.channel.close(peer_died=True)
        self.process.join(STOP_GRACE_S)
        return RuntimeError(f"a range-coding worker process died (exit code {self.process.exitcode})")

    def discard(self) -> None:
        """Close what is left of a worker that died, its shared memory included."""
        if not self.broken:
            self._died()

    def stop(self) -> None:
        self.channel.close()
        self.process.join(STOP_GRACE_S)
        if self.process.is_alive():
            self.process.kill()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()


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


def _serve(connection: Connection, tables: dict[str, ProbabilityTables]) -> None:
    """A range-coding worker: answer requests until the pipe closes. It holds the decoders of the tiles dealt
    to it, by key, from a batch's first section to its ``finish``. Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    coders = symbol_coders(tables)
    decoders: dict[int, Any] = {}

    def encode(parts: list[list[TilePart]]) -> list[np.ndarray]:
        return [encode_tile(coders, tile) for tile in parts]

    def read(keys: list[int], tables: list[np.ndarray], coder: str) -> list[np.ndarray]:
        return [_compact(coders[coder].decode(decoders[key], tile_tables)) for key, tile_tables in zip(keys, tables)]

    def open_and_read(keys: list[int], words: list[np.ndarray], tables: list[np.ndarray],
                      coder: str) -> list[np.ndarray]:
        decoders.update((key, new_decoder(tile_words)) for key, tile_words in zip(keys, words))  # copies the words
        return read(keys, tables, coder)

    def finish(keys: list[int]) -> list[bool]:
        return [decoders.pop(key).maybe_exhausted() if key in decoders else False for key in keys]

    handlers = {"encode": encode, "open and read": open_and_read, "read": read, "finish": finish}
    channel = ArrayChannel(connection, copy=False)
    answer: Any = "ready"
    while True:
        try:
            try:
                channel.send(answer)
            except pickle.PicklingError:
                channel.send(RuntimeError(f"{type(answer).__name__}: {answer}"))
            answer = _answer(handlers, channel.receive())
        except (EOFError, BrokenPipeError, ConnectionResetError):  # the process that started it has gone
            break
    channel.close()


def _answer(handlers: dict[str, Callable[..., list]], request: tuple) -> Any:
    """A request's answer, or the exception it raised (constriction's AssertionError on a stream its model cannot
    have written, among others), without the traceback, whose frames would keep the request's arrays, which
    live in shared memory that the next request may replace."""
    kind, *arguments = request
    try:
        return handlers[kind](*arguments)
    except Exception as exc:
        return exc.with_traceback(None)
