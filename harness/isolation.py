"""Codecs in a worker process: a codec that hangs or crashes on a tile costs an error row, not the run.

Codec libraries are native code, and fuzzing found some that never return
(OpenJPH on 3 of 400 mutated HTJ2K streams) or abort the whole process (SZ3 on
crafted streams): in-process, either ends the run, the second without a word.
So by default (``timing: {isolate: true}``; ``isolate: false`` opts out) the
run sends each batch to one worker process, which builds the codec from the
same registry and options and codes and times the batch there; the parent
scores the result. A call that does not answer within ``timeout_s``, or a
worker that dies, becomes an error row naming what happened, and a fresh
worker takes the next call. After ``breaker_after`` such calls in a row of one
rate point (``Breaker``), that point's remaining tiles become error rows
without being tried: a codec that hangs on every tile would otherwise cost
the timeout on every tile. The other points go on, and ``--resume`` tries the
point again (it retries error rows).

The worker is started with ``spawn``: forking a process whose torch thread
pools have run (the metrics use them) can deadlock the child. It therefore
imports the plugins itself, the configured ones included, so that the codec it
builds is the one the config names. Timing happens inside the worker, around
the codec calls alone, exactly as in-process. It is not a daemonic process,
since a codec may start processes of its own (the entropy-coded autoencoders'
``range_coding_processes``), which a daemonic process may not; the parent
stops it explicitly however the run ends (``worker_calls``). It does not
import the parent's ``__main__`` (``_main_left_out``), so that a script calling
``run_benchmark`` works without an ``if __name__ == "__main__"`` guard.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import BenchmarkConfig, TimingConfig
from harness.errors import CodecFailure
from harness.measure import IN_PROCESS, CodecCalls, CodedBatch, PreparedPoint, bpp_of, code_arrays
from harness.plugins import build_registry

CONTEXT = multiprocessing.get_context("spawn")
STOP_GRACE_S = 5.0
STARTUP_LIMIT_S = 120.0
"""How long a new worker may take to import the plugins (torch among them); ``timeout_s`` counts from then."""


class CodecProcessError(CodecFailure):
    """What happened to a call in the worker; its message is the error row's whole text."""


class CodecProcessLost(CodecProcessError):
    """A call that got no answer: it timed out, or the worker process died (or did not start)."""


class Breaker:
    """Stops trying a rate point after ``after`` calls of it in a row got no answer (``CodecProcessLost``).

    A call that answers, even with the codec's own error, starts the count again. The state lives as long as the
    worker's ``WorkerCalls``: the whole run, or on Dask the run on one Dask worker."""

    def __init__(self, after: int):
        self.after = after
        self.lost: dict[tuple[str, str], list[str]] = {}

    def call(self, prepared: PreparedPoint, function: Callable[..., Any], *request: Any) -> Any:
        key = (prepared.codec_name, prepared.point.label)
        lost = self.lost.get(key, [])
        if len(lost) >= self.after:
            calls = "call" if len(lost) == 1 else f"{len(lost)} calls"
            raise CodecProcessError(f"not tried: this point's last {calls} gave no answer (the last: {lost[-1]}); "
                                    "--resume tries it again")
        try:
            result = function(*request)
        except CodecProcessLost as exc:
            self.lost[key] = [*lost, str(exc)]
            raise
        except CodecProcessError:
            self.lost.pop(key, None)
            raise
        self.lost.pop(key, None)
        return result


class WorkerCalls(CodecCalls):
    """Codec work sent to one worker process, restarted after a timeout or a crash."""

    def __init__(self, plugins: tuple[str, ...], base_dir: Path, timeout_s: float,
                 breaker_after: int = TimingConfig.breaker_after):
        self.plugins, self.base_dir, self.timeout_s = plugins, base_dir, timeout_s
        self.breaker = Breaker(breaker_after)
        self.process: Any = None
        self.connection: Connection | None = None

    def code(self, prepared: PreparedPoint, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
        return self.breaker.call(prepared, self._call, "code", prepared.codec_name, prepared.options, arrays, timing)

    def bpp(self, prepared: PreparedPoint, value: float, array: np.ndarray) -> float:
        options = {**prepared.options, prepared.codec.rate_knob.option: value}
        return self.breaker.call(prepared, self._call, "bpp", prepared.codec_name, options, array)

    def _call(self, *request: Any) -> Any:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send(request)
        if not self.connection.poll(self.timeout_s):
            self._stop(kill=True)
            raise CodecProcessLost(f"no answer within {self.timeout_s:g} s; the codec's worker process was stopped")
        try:
            status, payload = self.connection.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            self._stop(kill=True)
            raise CodecProcessLost(f"the codec's worker process died ({_exit_reason(code)})") from None
        if status == "error":
            raise CodecProcessError(payload)
        return payload

    def _start(self) -> None:
        parent, child = CONTEXT.Pipe()
        process = CONTEXT.Process(target=_serve, args=(child, self.plugins, str(self.base_dir)), daemon=False)
        with _main_left_out():
            process.start()  # a process that did not start is not this object's to stop
        child.close()
        self.process, self.connection = process, parent
        if not parent.poll(STARTUP_LIMIT_S):
            self._stop(kill=True)
            raise CodecProcessLost(f"the codec's worker process did not start within {STARTUP_LIMIT_S:g} s")
        try:
            status, payload = parent.recv()
        except EOFError:
            self.process.join(STOP_GRACE_S)
            code = self.process.exitcode
            self._stop(kill=True)
            raise CodecProcessLost(f"the codec's worker process died while starting ({_exit_reason(code)})") \
                from None
        if status == "error":
            self._stop(kill=True)
            raise CodecProcessLost(f"the codec's worker process could not start: {payload}")

    def _stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        self.process.join(STOP_GRACE_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        with suppress(OSError):  # already closed when a Dask worker's interpreter shuts down
            self.connection.close()
        self.process = self.connection = None


@contextmanager
def codec_calls(config: BenchmarkConfig) -> Iterator[CodecCalls]:
    """Where the run's codec work goes: a worker process, or this process when the config turns isolation off."""
    if not config.timing.isolate:
        yield IN_PROCESS
        return
    with worker_calls(config.plugins, config.base_dir, config.timing.timeout_s, config.timing.breaker_after) as calls:
        yield calls


def isolation_record(timing: TimingConfig) -> dict[str, Any]:
    """Where the codec calls ran and how a failing one was stopped, for ``environment.json`` and the report."""
    if not timing.isolate:
        return {"isolate": False}
    return {"isolate": True, "timeout_s": timing.timeout_s, "breaker_after": timing.breaker_after}


@contextmanager
def worker_calls(plugins: tuple[str, ...], base_dir: Path, timeout_s: float,
                 breaker_after: int = TimingConfig.breaker_after) -> Iterator[WorkerCalls]:
    """A worker for the run's codec work, stopped when the run ends however it ends."""
    calls = WorkerCalls(plugins, base_dir, timeout_s, breaker_after)
    try:
        yield calls
    finally:
        calls._stop()


@contextmanager
def _main_left_out() -> Iterator[None]:
    """Start a ``spawn`` process without the parent's ``__main__``: ``multiprocessing`` imports it again in the
    child (from its ``__spec__`` or ``__file__``), which reruns a script that calls ``run_benchmark`` without an
    ``if __name__ == "__main__"`` guard, and the worker needs nothing of it (it builds codecs from the plugins)."""
    main = sys.modules["__main__"]
    saved = {name: getattr(main, name) for name in ("__spec__", "__file__") if hasattr(main, name)}
    main.__spec__ = None
    if "__file__" in saved:
        del main.__file__
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _serve(connection: Connection, plugins: tuple[str, ...], base_dir: str) -> None:
    """The worker: build codecs from the registry on demand (kept by their options) and answer requests."""
    try:
        registry = build_registry(plugins, Path(base_dir))
    except Exception as exc:  # reported to the parent, which makes every row of the call an error row
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    connection.send(("ready", None))
    codecs: dict[str, Any] = {}
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        kind, name, options, *arguments = request
        try:
            key = json.dumps([name, options], sort_keys=True, default=str)
            if key not in codecs:
                codecs[key] = registry.codec(name)(**options)
            codec = codecs[key]
            result = code_arrays(codec, *arguments) if kind == "code" else bpp_of(codec, *arguments)
            connection.send(("ok", result))
        except Exception as exc:  # the codec is third-party code: report it, stay alive for the next call
            connection.send(("error", f"{type(exc).__name__}: {exc}"))
