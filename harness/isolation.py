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

The worker is a ``harness.workers.WorkerProcess``: spawned without the parent's
``__main__`` (so that a script calling ``run_benchmark`` works without an
``if __name__ == "__main__"`` guard), it imports the plugins itself, the
configured ones included, so that the codec it builds is the one the config
names; it may start processes of its own (the entropy-coded autoencoders'
``range_coding_processes``); and it ends with the run however the run ends
(``worker_calls``), or with the parent process. Timing happens inside the
worker, around the codec calls alone, exactly as in-process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import BenchmarkConfig, TimingConfig
from harness.errors import CodecFailure
from harness.measure import IN_PROCESS, CodecCalls, CodedBatch, PreparedPoint, bpp_of, code_arrays
from harness.plugins import build_registry
from harness.workers import STARTUP_LIMIT_S, WorkerDied, WorkerFailed, WorkerProcess, WorkerTimeout


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
        self.timeout_s = timeout_s
        self.breaker = Breaker(breaker_after)
        self.worker = WorkerProcess(_codec_server, plugins, str(base_dir))

    def code(self, prepared: PreparedPoint, arrays: list[np.ndarray], timing: TimingConfig) -> CodedBatch:
        return self.breaker.call(prepared, self._call, "code", prepared.codec_name, prepared.options, arrays, timing)

    def bpp(self, prepared: PreparedPoint, value: float, array: np.ndarray) -> float:
        options = {**prepared.options, prepared.codec.rate_knob.option: value}
        return self.breaker.call(prepared, self._call, "bpp", prepared.codec_name, options, array)

    def _call(self, *request: Any) -> Any:
        if not self.worker.alive():
            self._start()
        try:
            return self.worker.call(request, self.timeout_s)
        except WorkerTimeout:
            raise CodecProcessLost(f"no answer within {self.timeout_s:g} s; the codec's worker process was stopped") \
                from None
        except WorkerDied as exc:
            raise CodecProcessLost(f"the codec's worker process died ({exc.reason})") from None
        except WorkerFailed as exc:
            raise CodecProcessError(str(exc)) from None

    def _start(self) -> None:
        try:
            self.worker.restart(STARTUP_LIMIT_S)
        except WorkerTimeout:
            raise CodecProcessLost(f"the codec's worker process did not start within {STARTUP_LIMIT_S:g} s") \
                from None
        except WorkerDied as exc:
            raise CodecProcessLost(f"the codec's worker process died while starting ({exc.reason})") from None
        except WorkerFailed as exc:
            raise CodecProcessLost(f"the codec's worker process could not start: {exc}") from None


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
        calls.worker.stop()


def _codec_server(plugins: tuple[str, ...], base_dir: str) -> Callable[[tuple], Any]:
    """The worker's setup: the registry; then each request is coded by a codec built on demand, kept by its
    options. A codec's error comes back as the call's ``WorkerFailed`` (the error row's text), and the worker stays
    for the next call."""
    registry = build_registry(plugins, Path(base_dir))
    codecs: dict[str, Any] = {}

    def answer(request: tuple) -> Any:
        kind, name, options, *arguments = request
        key = json.dumps([name, options], sort_keys=True, default=str)
        if key not in codecs:
            codecs[key] = registry.codec(name)(**options)
        codec = codecs[key]
        return code_arrays(codec, *arguments) if kind == "code" else bpp_of(codec, *arguments)

    return answer
