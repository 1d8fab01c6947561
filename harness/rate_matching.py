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
when no knob value lies between the bracket's ends (an integer knob), or after
``MAX_PROBES`` encodes. A codec whose rate is not monotone in its knob still
gets the best rate under the target among the values tried.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from harness.api import RateKnob

MATCH_OPTION = "match_bpp"
"""The point option that asks for a rate instead of a knob value."""
CLOSE_ENOUGH = 0.02
"""Relative distance under the target at which the search stops: the issue's '2 % of the target'."""
MAX_PROBES = 16


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
    while len(rates) < MAX_PROBES and low[1] < (1 - CLOSE_ENOUGH) * target_bpp:
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
    return best()


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
