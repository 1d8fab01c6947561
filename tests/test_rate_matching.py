"""Specification of the rate search behind ``match_bpp``: the highest rate at or under the target, in few encodes."""

from __future__ import annotations

import math

import pytest

from harness.api import RateKnob
from harness.rate_matching import CLOSE_ENOUGH, JITTER_PROBES, MAX_PROBES, knob_value, match_rate

QUALITY = RateKnob("quality", low=0, high=100, more_bits_when_higher=True)
DISTANCE = RateKnob("distance", low=0.05, high=25.0, more_bits_when_higher=False, geometric=True)
BITS = RateKnob("bits", low=1, high=16, more_bits_when_higher=True, step=1)
LEVEL = RateKnob("quality", low=0, high=8, more_bits_when_higher=True, step=0.001)
TOLERANCE = RateKnob("tolerance", low=1e-5, high=0.5, more_bits_when_higher=False, geometric=True)


def smooth_quality_rate(quality: float) -> float:
    """A codec whose rate grows exponentially with its quality, as libavif's roughly does."""
    return 0.05 * math.exp(quality / 20)


def distance_rate(distance: float) -> float:
    return 2.0 / distance**0.8


class CountingRate:
    """Wraps a rate function and records every knob value the search encoded at."""

    def __init__(self, rate):
        self.rate = rate
        self.values: list[float] = []

    def __call__(self, value: float) -> float:
        self.values.append(value)
        return self.rate(value)


@pytest.mark.parametrize("target", [0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
def test_a_continuous_knob_lands_within_two_percent_under_the_target(target):
    matched = match_rate(smooth_quality_rate, QUALITY, target)

    assert (1 - CLOSE_ENOUGH) * target <= matched.bpp <= target
    assert matched.bpp == smooth_quality_rate(matched.value)


@pytest.mark.parametrize("target", [0.2, 0.5, 2.0, 8.0])
def test_a_knob_that_lowers_the_rate_as_it_rises_is_searched_the_other_way(target):
    matched = match_rate(distance_rate, DISTANCE, target)

    assert (1 - CLOSE_ENOUGH) * target <= matched.bpp <= target


def test_an_integer_knob_gets_the_highest_value_not_over_the_target():
    matched = match_rate(float, BITS, 4.5)

    assert matched.value == 4 and isinstance(matched.value, int) and matched.bpp == 4.0


def test_a_stepped_knob_only_tries_values_on_its_steps():
    rate = CountingRate(lambda quality: 0.1 * 2**quality)

    match_rate(rate, LEVEL, 1.0)

    assert all(value == round(value, 3) for value in rate.values)


def test_a_target_above_the_knobs_reach_gets_its_highest_rate():
    matched = match_rate(float, BITS, 40.0)
    assert matched.value == 16 and matched.probes == 1


def test_a_target_below_the_knobs_reach_gets_its_lowest_rate_and_shows_it_is_over():
    matched = match_rate(lambda bits: bits + 0.5, BITS, 1.0)
    assert matched.value == 1 and matched.bpp == 1.5


def test_the_search_stays_within_its_probe_budget_on_a_rate_with_a_jump():
    rate = CountingRate(lambda quality: 0.2 if quality < 63.3 else 3.0)

    matched = match_rate(rate, QUALITY, 1.0)

    assert len(rate.values) <= MAX_PROBES and matched.bpp == 0.2


def test_a_smooth_rate_is_matched_in_a_handful_of_encodes():
    rate = CountingRate(smooth_quality_rate)

    match_rate(rate, QUALITY, 0.7)

    assert len(rate.values) <= 6


def test_a_rate_that_is_not_monotone_still_gets_the_best_value_tried_under_the_target():
    def bumpy(quality: float) -> float:
        return smooth_quality_rate(quality) * (1.1 if 40 < quality < 45 else 1.0)

    rate = CountingRate(bumpy)
    matched = match_rate(rate, QUALITY, 0.4)

    tried_under = [bumpy(value) for value in rate.values if bumpy(value) <= 0.4]
    assert matched.bpp == max(tried_under)


def jittery_rate(tolerance: float) -> float:
    """SZ3's kind of rate: falling with the error bound, but up or down by as much as 15 % from one 0.1 % step of
    the bound to the next."""
    step = math.floor(math.log(tolerance) / math.log(1.001))
    jitter = (step * 2654435761 % 1000) / 1000  # a fixed pseudo-random draw per step, in [0, 1)
    return 0.05 / tolerance * (0.85 + 0.3 * jitter)


@pytest.mark.parametrize("target", [0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
def test_a_rate_that_jitters_with_the_knob_is_still_matched_within_two_percent(target):
    rate = CountingRate(jittery_rate)

    matched = match_rate(rate, TOLERANCE, target)

    assert (1 - CLOSE_ENOUGH) * target <= matched.bpp <= target
    assert len(set(rate.values)) <= JITTER_PROBES


def test_a_monotone_staircase_costs_no_more_encodes_than_bisection():
    """OpenJPEG's rate allocation moves in steps of a few percent: no value lies within 2 % of most targets."""
    rate = CountingRate(lambda quality: 1.05 ** math.floor(quality / 2) / 10)

    matched = match_rate(rate, QUALITY, 1.0)

    assert matched.bpp == 1.05 ** 47 / 10 and len(rate.values) <= MAX_PROBES


def test_a_stepped_knob_whose_rate_reverses_ends_after_trying_its_values_nearby():
    rate = CountingRate(lambda bits: 3.0 if bits == 5 else float(bits))

    matched = match_rate(rate, BITS, 4.5)

    assert matched.value == 4 and len(set(rate.values)) == len(rate.values) <= JITTER_PROBES


@pytest.mark.parametrize("knob, position, expected", [
    (QUALITY, 0.0, 0.0), (QUALITY, 1.0, 100.0), (DISTANCE, 0.0, 25.0), (DISTANCE, 1.0, 0.05), (BITS, 0.2, 4),
])
def test_knob_positions_run_from_fewest_to_most_bits(knob, position, expected):
    assert knob_value(knob, position) == pytest.approx(expected)
