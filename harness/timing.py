"""Timing that means the same thing on every device.

Each call is timed with the monotonic ``perf_counter`` after warm-up runs
(first calls pay for allocation, caches, JIT and lazy CUDA initialisation),
and the median of several repeats is kept, so one interruption by the OS does
not skew a row. On CUDA the device is synchronised before starting and before
stopping the clock: kernels launch asynchronously, and without a
synchronisation the clock would measure the launch, not the work. The result
is end-to-end latency of what the caller gets back (bytes on the host, arrays
on the host), the figure a user of the codec experiences.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Timed:
    """The last call's result, the median of the timed repeats, and their spread: (slowest − fastest) / median.

    A wide spread says the machine disturbed the timing (other load, frequency changes), which a median
    alone would hide.
    """

    result: Any
    seconds: float
    spread: float = 0.0


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to ``count`` for the block, then restored.

    The setting is process-wide, and a timed call must run at a fixed, recorded thread count to compare across
    machines: a torch codec wraps its calls in it (``with harness.torch_threads(self.threads): ...``), and the
    harness scores tiles in it. torch is imported here, not at the module's import: plugins that import
    ``harness`` without torch should not pay for it."""
    import torch

    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != previous:
            torch.set_num_threads(previous)


def synchronizer_for(device: str) -> Callable[[], None] | None:
    """The function that waits for queued work on ``device``; None where calls are synchronous."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.synchronize


def time_call(
    function: Callable[[], Any],
    warmup: int,
    repeats: int,
    synchronize: Callable[[], None] | None = None,
) -> Timed:
    """Run ``function`` ``warmup`` times untimed, then ``repeats`` times timed; keep the median."""
    for _ in range(warmup):
        function()
    durations = []
    result = None
    for _ in range(repeats):
        if synchronize:
            synchronize()
        start = time.perf_counter()
        result = function()
        if synchronize:
            synchronize()
        durations.append(time.perf_counter() - start)
    median = statistics.median(durations)
    return Timed(result, median, (max(durations) - min(durations)) / median if median > 0 else 0.0)
