"""Codecs in a worker process: a codec that hangs or crashes on a tile costs an error row, not the run.

Codec libraries are native code, and fuzzing found some that never return
(OpenJPH on 3 of 400 mutated HTJ2K streams) or abort the whole process (SZ3 on
crafted streams): in-process, either ends the run, the second without a word.
With ``timing: {isolate: true}`` the run sends each batch to one worker
process, which builds the codec from the same registry and options and codes
and times the batch there; the parent scores the result. A call that does not
answer within ``timeout_s``, or a worker that dies, becomes an error row
naming what happened, and a fresh worker takes the next call.

The worker is started with ``spawn``: forking a process whose torch thread
pools have run (the metrics use them) can deadlock the child. It therefore
imports the plugins itself, the configured ones included, so that the codec it
builds is the one the config names. Timing happens inside the worker, around
the codec calls alone, exactly as in-process. It is not a daemonic process,
since a codec may start processes of its own (the entropy-coded autoencoders'
``range_coding_processes``), which a daemonic process may not; the parent
stops it explicitly however the run ends (``worker_calls``).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
from collections.abc import Iterator
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


class WorkerCalls(CodecCalls):
    """Codec work sent to one worker process, restarted after a timeout or a crash."""

    def __init__(self, plugins: tuple[str, ...], base_dir: Path, timeout_s: float):
        self.plugins, self.base_dir, self.timeout_s = plugins, base_dir, timeout_s
        self.process: Any = None
        self.connection: Connection | None = None

    def code(self, prepared: PreparedPoint, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
        return self._call("code", prepared.codec_name, prepared.options, arrays, timing)

    def bpp(self, prepared: PreparedPoint, value: float, array: np.ndarray) -> float:
        options = {**prepared.options, prepared.codec.rate_knob.option: value}
        return self._call("bpp", prepared.codec_name, options, array)

    def _call(self, *request: Any) -> Any:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send(request)
        if not self.connection.poll(self.timeout_s):
            self._stop(kill=True)
            raise CodecProcessError(f"no answer within {self.timeout_s:g} s; the codec's worker process was stopped")
        try:
            status, payload = self.connection.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode
            self._stop(kill=True)
            raise CodecProcessError(f"the codec's worker process died ({_exit_reason(code)})") from None
        if status == "error":
            raise CodecProcessError(payload)
        return payload

    def _start(self) -> None:
        parent, child = CONTEXT.Pipe()
        process = CONTEXT.Process(target=_serve, args=(child, self.plugins, str(self.base_dir)), daemon=False)
        process.start()  # a process that did not start is not this object's to stop
        child.close()
        self.process, self.connection = process, parent
        if not parent.poll(STARTUP_LIMIT_S):
            self._stop(kill=True)
            raise CodecProcessError(f"the codec's worker process did not start within {STARTUP_LIMIT_S:g} s")
        try:
            status, payload = parent.recv()
        except EOFError:
            self.process.join(STOP_GRACE_S)
            code = self.process.exitcode
            self._stop(kill=True)
            raise CodecProcessError(f"the codec's worker process died while starting ({_exit_reason(code)})") \
                from None
        if status == "error":
            self._stop(kill=True)
            raise CodecProcessError(f"the codec's worker process could not start: {payload}")

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
    """Where the run's codec work goes: this process, or a worker process when the config asks for isolation."""
    if not config.timing.isolate:
        yield IN_PROCESS
        return
    with worker_calls(config.plugins, config.base_dir, config.timing.timeout_s) as calls:
        yield calls


@contextmanager
def worker_calls(plugins: tuple[str, ...], base_dir: Path, timeout_s: float) -> Iterator[WorkerCalls]:
    """A worker for the run's codec work, stopped when the run ends however it ends."""
    calls = WorkerCalls(plugins, base_dir, timeout_s)
    try:
        yield calls
    finally:
        calls._stop()


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
