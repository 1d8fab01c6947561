"""Exact rate matching: per tile, the knob value that spends the most bits without exceeding a target rate.

Each codec has its own knob (a quality, a quantization step, a distance, an
error bound), so native rate points land at different rates, and a table or
picture that puts codecs side by side compares unequal budgets. A point
``{match_bpp: T}`` asks for T bits per pixel instead: for each tile the harness
encodes at trial values of the codec's ``RateKnob`` (untimed) and keeps the
value whose real rate is the highest at or under T. The row then times and
scores that one value as any other point, and records it in ``options``.

The search works on a position from 0 (fewest bits) to 1 (most bits) along
the knob, on a log scale for knobs spanning decades. It first tries both ends
(a target out of the knob's reach gives the nearest end, whose rate the row
shows), then narrows the bracket by interpolating log rate linearly between
its ends, and halves it instead whenever the same end moved twice in a row, so
the bracket at least halves every second probe even where the rate curve is
lopsided. It stops when the rate is within ``CLOSE_ENOUGH`` under the target,
when no knob value lies between the bracket's ends (an integer knob), when the
bracket has closed on a jump in the rate (``RESOLUTION``), or after
``MAX_PROBES`` encodes. Whatever the codec, the row gets the best rate under
the target among the values tried.

Some codecs' rates are not monotone in their knob: SZ3's moves up and down by
3 to 20 % between error bounds 0.1 % apart, so bisection closes on a jump from
well under the target to over it, while values nearby land in between. When
the rates tried show such a reversal, the search goes on at values scattered
evenly over ``JITTER_WIDTH`` either side of the jump, up to ``JITTER_PROBES``
encodes in all. Codecs with a monotone rate never pay for it: JPEG 2000's
staircase (OpenJPEG's rate allocation moves in steps of 3 to 6 %) stops at the
step under the target.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from harness.api import RateKnob

MATCH_OPTION = "match_bpp"
"""The point option that asks for a rate instead of a knob value."""
CLOSE_ENOUGH = 0.02
"""Relative distance under the target at which the search stops: the issue's '2 % of the target'."""
MAX_PROBES = 16
"""Encodes a search spends at most on a codec whose rates rise monotonically with its knob."""
RESOLUTION = 1e-4
"""Bracket width, as a share of the knob's range (of its decades on a log scale), at which the search has found a
jump in the rate rather than a value near the target."""
JITTER_PROBES = 48
"""Encodes a search spends at most where the rates tried are not monotone (SZ3's cost about 4 ms on a 256x256 tile).
With 48, SZ3 lands within 2 % under the target on 91 % of the default test set's tiles at 0.25 to 2 bpp (78 % when
the search stopped at the jump)."""
JITTER_WIDTH = 0.01
"""Half-width, as a share of the knob's range, of the window scattered around a jump: on SZ3's log-scaled error
bound, 2.4 % either side, over which the rate's trend moves about as much as its jitter."""
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class MatchedRate:
    """The knob value chosen for one tile, the rate it gave there, and how many encodes the search spent."""

    value: float
    bpp: float
    probes: int


def knob_value(knob: RateKnob, position: float) -> float:
    """The knob's value at ``position`` (0: fewest bits, 1: most), snapped to its step.

    Integer-stepped knobs give ``int`` values, since codecs validate their types.
    """
    fraction = position if knob.more_bits_when_higher else 1.0 - position
    if knob.geometric:
        value = knob.low * (knob.high / knob.low) ** fraction
    else:
        value = knob.low + fraction * (knob.high - knob.low)
    if not knob.step:
        return float(min(max(value, knob.low), knob.high))
    steps = round((value - knob.low) / knob.step)
    value = min(max(knob.low + steps * knob.step, knob.low), knob.high)
    if float(knob.step).is_integer() and float(knob.low).is_integer():
        return int(round(value))
    return round(value, _decimals(knob.step))


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step)) + 1)


def match_rate(bpp_at: Callable[[float], float], knob: RateKnob, target_bpp: float) -> MatchedRate:
    """Search ``knob`` for the highest rate at or under ``target_bpp``; ``bpp_at(value)`` encodes one tile."""
    rates: dict[float, float] = {}

    def probe(position: float) -> tuple[float, float]:
        value = knob_value(knob, position)
        if value not in rates:
            rates[value] = bpp_at(value)
        return value, rates[value]

    def best() -> MatchedRate:
        under = [(bpp, value) for value, bpp in rates.items() if bpp <= target_bpp]
        bpp, value = max(under) if under else min((bpp, value) for value, bpp in rates.items())
        return MatchedRate(value, bpp, len(rates))

    _, top = probe(1.0)
    if top <= target_bpp:
        return best()
    _, bottom = probe(0.0)
    if bottom > target_bpp:
        return best()
    low, high = (0.0, bottom), (1.0, top)  # (position, bpp): at or under the target, and over it
    previous, bisect = None, False

    def close() -> bool:
        return best().bpp >= (1 - CLOSE_ENOUGH) * target_bpp

    while len(rates) < MAX_PROBES and not close() and high[0] - low[0] > RESOLUTION:
        candidate = _untried(knob, _next_position(low, high, target_bpp, bisect), low[0], high[0], rates)
        if candidate is None:
            break
        _, bpp = probe(candidate)
        moved = "low" if bpp <= target_bpp else "high"
        if moved == "low":
            low = (candidate, bpp)
        else:
            high = (candidate, bpp)
        bisect, previous = moved == previous, moved
    if not _monotone(rates, knob):
        # the positions are bounded too: on a stepped knob they may all snap to values already tried
        for position in itertools.islice(_scattered_around((low[0] + high[0]) / 2), JITTER_PROBES):
            if len(rates) >= JITTER_PROBES or close():
                break
            probe(position)
    return best()


def _monotone(rates: dict[float, float], knob: RateKnob) -> bool:
    """Whether the rates tried rise with the knob's bits, as the bracketing assumes."""
    ordered = [rates[value] for value in sorted(rates, reverse=not knob.more_bits_when_higher)]
    return all(lower <= higher for lower, higher in zip(ordered, ordered[1:]))


def _scattered_around(centre: float) -> Iterator[float]:
    """Positions spread evenly (golden-ratio steps) over ``JITTER_WIDTH`` either side of ``centre``, within the
    knob's range."""
    for index in itertools.count(1):
        position = centre + JITTER_WIDTH * (2 * ((index * GOLDEN) % 1.0) - 1)
        if 0 <= position <= 1:
            yield position


def _next_position(low: tuple[float, float], high: tuple[float, float], target: float, bisect: bool) -> float:
    """Interpolate log rate between the bracket's ends, or halve the bracket."""
    (low_position, low_bpp), (high_position, high_bpp) = low, high
    if bisect or low_bpp <= 0 or high_bpp <= low_bpp:
        return (low_position + high_position) / 2
    share = (math.log(target) - math.log(low_bpp)) / (math.log(high_bpp) - math.log(low_bpp))
    return low_position + share * (high_position - low_position)


def _untried(knob: RateKnob, position: float, low: float, high: float, rates: dict[float, float]) -> float | None:
    """A position strictly inside the bracket whose knob value has not been tried: ``position`` if its value is
    new, else the bracket's middle; None when the knob has no value between the ends."""
    for candidate in (position, (low + high) / 2):
        if low < candidate < high and knob_value(knob, candidate) not in rates:
            return candidate
    return None
