"""A batch cut into parts whose two halves of work overlap: one part's first half runs in a second thread while
this thread runs the previous part's second half (``runtime.entropy_coder``'s ``overlap_sub_batches``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

Item = TypeVar("Item")
Middle = TypeVar("Middle")


def even_parts(items: Sequence[Item], count: int) -> list[Sequence[Item]]:
    """``items`` cut into ``count`` consecutive parts whose lengths differ by one at most (fewer parts if there
    are fewer items; one, empty, if there are none)."""
    count = min(count, len(items)) or 1
    size, extra = divmod(len(items), count)
    bounds = [index * size + min(index, extra) for index in range(count + 1)]
    return [items[start:stop] for start, stop in zip(bounds, bounds[1:])]


def pipelined(parts: Sequence[Item], ahead: Callable[[Item], Middle], then: Callable[[Middle], list],
              thread: ThreadPoolExecutor) -> list:
    """``then(ahead(part))`` of every part, concatenated in order, with ``ahead`` running one part ahead in
    ``thread`` while this thread runs ``then`` (a single part runs here alone). Whatever raises, no part is
    left running in ``thread`` when this returns."""
    if len(parts) == 1:
        return then(ahead(parts[0]))
    results: list = []
    pending: Future | None = thread.submit(ahead, parts[0])
    try:
        for following in [*parts[1:], None]:
            done = pending.result()
            pending = thread.submit(ahead, following) if following is not None else None
            results.extend(then(done))
    finally:
        if pending is not None:
            wait([pending])
    return results
