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

import statistics
import time
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
