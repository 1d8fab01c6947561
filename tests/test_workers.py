"""harness.workers.WorkerProcess, the one worker-process primitive of isolation, fuzzing and range coding: a call
gives its reply, a hang becomes a timeout and a crash a death, both typed, restart gives a working worker, and a
worker never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.workers import WorkerDied, WorkerFailed, WorkerProcess, WorkerTimeout

ROOT = Path(__file__).resolve().parents[1]


def obedient(greeting: str = "hello") -> Callable[[tuple[str, Any]], Any]:
    """A worker's setup: requests ``(what, value)`` to echo, greet, sleep, crash or raise, as asked."""

    def answer(request: tuple[str, Any]) -> Any:
        what, value = request
        if what == "sleep":
            time.sleep(value)
        if what == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if what == "raise":
            raise ValueError(value)
        return f"{greeting} {value}" if what == "greet" else value

    return answer


def refusing() -> Callable[[Any], Any]:
    """A worker's setup that fails, as a codec that cannot be built."""
    raise ImportError("no such codec library")


@pytest.fixture
def worker() -> Iterator[WorkerProcess]:
    worker = WorkerProcess(obedient, "hi")
    worker.restart()
    yield worker
    worker.stop()


def test_a_call_returns_the_reply_of_the_workers_setup(worker):
    assert worker.call(("greet", "there"), timeout_s=30) == "hi there"


def test_a_call_past_its_timeout_raises_worker_timeout_and_the_worker_is_killed(worker):
    process = worker.process

    with pytest.raises(WorkerTimeout, match=r"no reply within 0\.5 s; the worker process was killed"):
        worker.call(("sleep", 3600), timeout_s=0.5)
    assert process.exitcode == -signal.SIGKILL and not worker.alive()


def test_a_crashing_worker_raises_worker_died_with_its_signal_and_restart_gives_a_working_one(worker):
    with pytest.raises(WorkerDied, match=r"\(signal SIGSEGV\)") as died:
        worker.call(("crash", None), timeout_s=30)
    assert died.value.exitcode == -signal.SIGSEGV and not worker.alive()

    worker.restart()

    assert worker.call(("echo", 7), timeout_s=30) == 7


def test_an_exception_in_a_doingcomes_back_as_worker_failed_and_the_worker_answers_the_next(worker):
    with pytest.raises(WorkerFailed, match="^ValueError: bad stream$"):
        worker.call(("raise", "bad stream"), timeout_s=30)
    assert worker.call(("echo", 8), timeout_s=30) == 8


def test_a_setup_that_raises_makes_ready_raise_worker_failed_and_the_worker_ends():
    worker = WorkerProcess(refusing)

    with pytest.raises(WorkerFailed, match="^ImportError: no such codec library$"):
        worker.restart()
    assert not worker.alive()


def test_kill_ends_the_worker_at_once_whatever_it_is_doing(worker):
    process = worker.process
    worker.send(("sleep", 3600))

    worker.kill()

    assert process.exitcode == -signal.SIGKILL and not worker.alive()


def test_stop_ends_an_idle_worker_without_killing_it(worker):
    process = worker.process

    worker.stop()

    assert process.exitcode == 0 and not worker.alive()


def test_a_worker_outlives_the_thread_that_started_it():
    """The kernel's parent-death signal follows the thread that started a process; the workers are started from
    one thread that lives as long as the process, so a worker started by a passing thread stays."""
    worker = WorkerProcess(obedient)
    starter = threading.Thread(target=worker.restart)
    starter.start()
    starter.join()
    time.sleep(0.5)

    assert worker.call(("echo", 9), timeout_s=30) == 9
    worker.stop()


@pytest.mark.parametrize("doing", [None, ("sleep", 3600)], ids=["waiting for a request", "in a request"])
def test_the_worker_exits_when_its_parent_process_is_killed(tmp_path, doing):
    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from harness.workers import WorkerProcess\n"
        "from tests.test_workers import obedient\n"
        "if __name__ == '__main__':\n"
        "    worker = WorkerProcess(obedient)\n"
        "    worker.restart()\n"
        f"    if {doing!r} is not None:\n"
        f"        worker.send({doing!r})\n"
        "    print(worker.process.pid, flush=True)\n"
        "    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    pid = int(parent.stdout.readline())

    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)

    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (not a zombie awaiting its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
