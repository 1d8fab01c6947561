"""One worker process: spawned, called with a timeout, killed, restarted, and gone when its parent is.

Three parts of the project run code in a process of its own, and share this class: isolation (a codec that hangs
or crashes costs an error row, not the run: ``harness.isolation``), the conformance fuzzing (a decoder that hangs,
aborts or allocates what a damaged header claims fails a case, not the test session: ``harness.testing``) and the
learned codecs' range coding (constriction holds the GIL, so tiles are spread over processes).

- The worker runs ``setup(*args)`` first, which returns the function that answers each request; ``ready`` waits
  for it. An exception raised by the setup or by a request comes back as ``WorkerFailed`` ("Type: message"); the
  worker goes on after a request's, and ends after its setup's.
- ``call(request, timeout_s)`` gives the reply, or raises ``WorkerTimeout`` (the worker was killed) or
  ``WorkerDied`` (with its exit status); ``send`` and ``receive`` apart keep several workers busy at once.
- Messages are pickled through a pipe, or through the ``channel`` a caller passes (the range coder's arrays travel
  through shared memory).
- Spawned, not forked: forking a process whose torch thread pools have run can deadlock the child. And without
  the parent's ``__main__``, which ``spawn`` would import again in the child: a script that calls the harness
  without an ``if __name__ == "__main__"`` guard would run again in every worker, and one that imports torch at
  its top would give its workers torch. Workers build what they need from their setup's arguments.
- It exits with its parent: at the end of its pipe while it waits for a request, and on Linux also in the middle
  of one, by a parent-death signal (SIGKILL). The kernel sends that signal when the *thread* that started the
  process ends, so every worker is started from one thread that lives as long as the process.
- It is not daemonic, so that it may start workers of its own (a codec under isolation may range-code in
  workers); it is stopped when this object is collected, and at exit before multiprocessing waits for its
  children (a ``multiprocessing.util.Finalize``), in the main process and in a worker alike.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import get_context, util
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

CONTEXT = get_context("spawn")
STARTUP_LIMIT_S = 120.0
"""How long a new worker may take to start: import its modules (torch among them) and run its setup."""
STOP_GRACE_S = 5.0
"""How long a worker may take to end once its pipe is closed, before it is killed."""
PR_SET_PDEATHSIG = 1


class WorkerError(RuntimeError):
    """A call to a worker process that gave no reply."""


class WorkerTimeout(WorkerError):
    """No reply within the timeout; the worker was killed."""

    def __init__(self, timeout_s: float):
        super().__init__(f"no reply within {timeout_s:g} s; the worker process was killed")
        self.timeout_s = timeout_s


class WorkerDied(WorkerError):
    """The worker process ended before it replied (a crash, a kill, or it never started)."""

    def __init__(self, exitcode: int | None):
        self.exitcode = exitcode
        super().__init__(f"the worker process died ({self.reason})")

    @property
    def reason(self) -> str:
        """The exit in words: ``signal SIGSEGV`` or ``exit status 1``."""
        if self.exitcode is not None and self.exitcode < 0:
            try:
                return f"signal {signal.Signals(-self.exitcode).name}"
            except ValueError:
                return f"signal {-self.exitcode}"
        return f"exit status {self.exitcode}"


class WorkerFailed(WorkerError):
    """The request, or the worker's setup, raised in the worker: its message is "Type: message"."""


class Channel(Protocol):
    """One end of a worker's pipe, as messages."""

    def send(self, message: Any) -> None: ...

    def receive(self) -> Any: ...

    def close(self, peer_died: bool = False) -> None: ...


ChannelFactory = Callable[[Connection, bool], Channel]
"""Makes a channel of one end of the pipe, given whether it is the worker's end; it must be picklable (a class or
a module-level function), since the worker makes its end itself."""


class PipeChannel:
    """Messages pickled through the pipe itself, the same at both ends."""

    def __init__(self, connection: Connection, in_worker: bool = False):
        self.connection = connection

    def send(self, message: Any) -> None:
        self.connection.send(message)

    def receive(self) -> Any:
        return self.connection.recv()

    def close(self, peer_died: bool = False) -> None:
        self.connection.close()


@dataclass(frozen=True)
class _Failure:
    """What the worker sends instead of a reply when the setup or the request raised."""

    message: str


_READY = "ready"


class WorkerProcess:
    """A process running ``setup(*args)``'s answers to requests; not started until ``start`` or ``restart``."""

    def __init__(self, setup: Callable[..., Callable[[Any], Any]], *args: Any, channel: ChannelFactory = PipeChannel):
        self.setup, self.args, self.make_channel = setup, args, channel
        self.process: BaseProcess | None = None
        self.channel: Channel | None = None
        self._connection: Connection | None = None
        self._finalizer: util.Finalize | None = None

    def start(self) -> None:
        """Start the process; its setup runs while the caller goes on (``ready`` waits for it)."""
        ours, theirs = CONTEXT.Pipe()
        process = CONTEXT.Process(target=_serve, args=(theirs, os.getpid(), self.setup, self.args, self.make_channel))
        try:
            _SPAWNER.start(process)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.process, self._connection, self.channel = process, ours, self.make_channel(ours, False)
        self._finalizer = util.Finalize(self, _stop, (process, self.channel), exitpriority=0)

    def ready(self, timeout_s: float | None = STARTUP_LIMIT_S) -> None:
        """Wait until the setup has run; ``WorkerFailed`` with its error (the worker has then ended)."""
        try:
            self.receive(timeout_s)
        except WorkerFailed:
            self._discard(kill=False)
            raise

    def restart(self, timeout_s: float | None = STARTUP_LIMIT_S) -> None:
        """Kill the worker if there is one, start a fresh one and wait until it is ready."""
        if self.process is not None:
            self._discard(kill=True)
        self.start()
        self.ready(timeout_s)

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def call(self, request: Any, timeout_s: float | None = None) -> Any:
        """The reply to ``request``, within ``timeout_s`` (None: however long it takes)."""
        self.send(request)
        return self.receive(timeout_s)

    def send(self, request: Any) -> None:
        try:
            self.channel.send(request)
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerDied(self._discard(kill=False)) from None

    def receive(self, timeout_s: float | None = None) -> Any:
        """The next reply; after a timeout the worker is killed."""
        if timeout_s is not None and not self._connection.poll(timeout_s):
            self._discard(kill=True)
            raise WorkerTimeout(timeout_s)
        try:
            reply = self.channel.receive()
        except (EOFError, ConnectionResetError):
            raise WorkerDied(self._discard(kill=False)) from None
        if isinstance(reply, _Failure):
            raise WorkerFailed(reply.message)
        return reply

    def kill(self) -> None:
        """End the worker now, whatever it is doing."""
        if self.process is not None:
            self._discard(kill=True)

    def stop(self) -> None:
        """End the worker: close its pipe, at whose end it exits, and kill it if it has not within the grace."""
        if self._finalizer is not None:
            self._finalizer()
        self._forget()

    def _discard(self, kill: bool) -> int | None:
        """End the worker (killed first if asked) and close the pipe and what the worker can no longer close
        itself (its shared memory, for the range coder's channel); its exit status."""
        process, channel = self.process, self.channel
        self._finalizer.cancel()
        self._forget()
        if kill:
            process.kill()
        _join_or_kill(process)
        with suppress(OSError):
            channel.close(peer_died=True)
        return process.exitcode

    def _forget(self) -> None:
        self.process = self.channel = self._connection = self._finalizer = None


def _stop(process: BaseProcess, channel: Channel) -> None:
    with suppress(OSError):  # already closed when a Dask worker's interpreter shuts down
        channel.close()
    _join_or_kill(process)


def _join_or_kill(process: BaseProcess) -> None:
    """Wait ``STOP_GRACE_S`` for the process to end, then kill it."""
    process.join(STOP_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()


class _Spawner:
    """The one thread that starts every worker, so that the parent-death signal comes when the process ends, not
    when the thread that asked for a worker does (a Dask task's, an overlapped sub-batch's). Starting from one
    thread also keeps two starts from hiding ``__main__`` at once."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue[tuple[BaseProcess, Future]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self, process: BaseProcess) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():  # none yet, or this is a forked child
                self.thread = threading.Thread(target=self._serve, name="worker-spawner", daemon=True)
                self.thread.start()
        started: Future = Future()
        self.requests.put((process, started))
        started.result()

    def _serve(self) -> None:
        while True:
            process, started = self.requests.get()
            try:
                with _main_left_out():
                    process.start()
            except BaseException as exc:  # the caller's to handle
                started.set_exception(exc)
            else:
                started.set_result(None)


_SPAWNER = _Spawner()


@contextmanager
def _main_left_out() -> Iterator[None]:
    """Start a ``spawn`` process without the parent's ``__main__``: ``multiprocessing`` imports it again in the
    child (from its ``__spec__`` or ``__file__``)."""
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


def _serve(connection: Connection, parent: int, setup: Callable[..., Callable[[Any], Any]], args: tuple,
           make_channel: ChannelFactory) -> None:
    """The worker: run the setup, say so, then answer requests until the pipe closes."""
    _exit_with_parent(parent)
    channel = make_channel(connection, True)
    try:
        answer = setup(*args)
    except Exception as exc:  # reported to the parent, whose ``ready`` raises it
        channel.send(_Failure(_described(exc)))
        channel.close()
        return
    reply: Any = _READY
    while True:
        try:
            _send(channel, reply)
            reply = _answer(answer, channel.receive())
        except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent has gone or closed the pipe
            break
    channel.close()


def _answer(answer: Callable[[Any], Any], request: Any) -> Any:
    """The reply to a request, or the failure it raised. A separate function, so that nothing of the request is
    left once it has answered (the range coder's requests live in shared memory the next one may replace)."""
    try:
        return answer(request)
    except Exception as exc:  # the caller's code: reported, and the worker stays for the next request
        return _Failure(_described(exc))


def _send(channel: Channel, reply: Any) -> None:
    """Send the reply, or the failure to pickle it."""
    try:
        channel.send(reply)
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:  # nothing was sent: pickling comes before writing
        channel.send(_Failure(_described(exc)))


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _exit_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent ends (Linux), and end now if it already has."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
