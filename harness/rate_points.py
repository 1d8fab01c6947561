"""A codec's rate point, parsed once from the config: the codec's own options, and what sets the rate.

A point sets its rate in one of three ways: with the codec's own options (its rate knob, ``quality: 50``), with a
rate the harness matches per tile by searching the knob (``match_bpp: 0.5``, ``harness.rate_matching``), or with
the codec's lossless mode (``lossless: true``). The config parses each point into a ``RatePoint`` once, checked
against the codec's declared options (``Codec.options``), and the measuring code reads the target from it, so
that no other module strips ``match_bpp`` or ``lossless`` from an options mapping or reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.api import Codec
from harness.codec_options import check_declared
from harness.config_checks import Checker, check_options, describe, refuse_unknown_options
from harness.rate_matching import MATCH_OPTION

LOSSLESS_OPTION = "lossless"
"""The point option that asks for the codec's lossless mode, passed to the codec as ``lossless=True``."""


class RateTarget(Enum):
    """What sets a point's rate."""

    NATIVE = "native"
    """The codec's own options."""
    MATCHED_BPP = "match_bpp"
    """A rate in bits per pixel, matched per tile by searching the codec's rate knob."""
    LOSSLESS = "lossless"
    """The codec's lossless mode."""


@dataclass(frozen=True)
class RatePoint:
    """One rate point of a codec: its options without the target keys, and its target.

    ``written`` is the point as the config wrote it (target keys included, in the config's order), which names it
    (``label``) and fills the results' ``options``; None when ``options`` is all it wrote.
    """

    options: dict[str, Any]
    target: RateTarget = RateTarget.NATIVE
    target_bpp: float | None = None
    """The rate a ``match_bpp`` point asks for; None for the others."""
    written: dict[str, Any] | None = None

    @property
    def as_written(self) -> dict[str, Any]:
        return self.options if self.written is None else self.written

    @property
    def label(self) -> str:
        """The point's stable name in the results and the report: its options as written."""
        return ",".join(f"{key}={value}" for key, value in self.as_written.items()) or "default"

    def codec_options(self) -> dict[str, Any]:
        """The constructor keywords: the options, and ``lossless=True`` for a lossless point (a ``match_bpp``
        point's knob value is added per tile by the search)."""
        if self.target is RateTarget.LOSSLESS:
            return {**self.options, LOSSLESS_OPTION: True}
        return dict(self.options)


def parse_rate_point(check: Checker, codec_class: type[Codec], point: Any, key: str) -> RatePoint:
    """The point at ``key`` of the config, checked: option names (against the declaration, or the constructor's
    signature when the codec declares none), its target, and the declared types and ranges."""
    written = check.mapping(point, key)
    _check_names(check, codec_class, written, key)
    target, target_bpp = _target(check, codec_class, written, key)
    options = {name: value for name, value in written.items() if name not in (MATCH_OPTION, LOSSLESS_OPTION)}
    parsed = RatePoint(options, target, target_bpp, dict(written))
    if codec_class.options is not None:
        _check_declared_values(check, codec_class, parsed, key)
    return parsed


def _check_names(check: Checker, codec_class: type[Codec], point: dict, key: str) -> None:
    names = {name: value for name, value in point.items() if name != MATCH_OPTION}
    if codec_class.options is None:
        check_options(check, codec_class, names, key, skip_first=False)
    else:
        refuse_unknown_options(check, codec_class.name, {option.name for option in codec_class.options}, names, key)


def _target(check: Checker, codec_class: type[Codec], point: dict, key: str) -> tuple[RateTarget, float | None]:
    lossless = point.get(LOSSLESS_OPTION, False)
    if not isinstance(lossless, bool):
        raise check.fail(f"{key}.{LOSSLESS_OPTION}", f"expected true or false, got {describe(lossless)}")
    if MATCH_OPTION in point:
        if lossless:
            raise check.fail(f"{key}.{LOSSLESS_OPTION}", f"give either {MATCH_OPTION} or lossless: true, not both")
        return RateTarget.MATCHED_BPP, _target_bpp(check, codec_class, point, key)
    if lossless:
        knob = codec_class.rate_knob
        if knob is not None and knob.option in point:
            raise check.fail(f"{key}.{knob.option}", f"give either {knob.option} or lossless: true, not both")
        return RateTarget.LOSSLESS, None
    return RateTarget.NATIVE, None


def _target_bpp(check: Checker, codec_class: type[Codec], point: dict, key: str) -> float:
    """A ``match_bpp`` target: a positive rate, for a codec with a rate knob, instead of the knob."""
    knob = codec_class.rate_knob
    if knob is None:
        raise check.fail(f"{key}.{MATCH_OPTION}", f"codec {codec_class.name!r} has no single rate knob to search; "
                                                  "give its own rate options instead")
    if knob.option in point:
        raise check.fail(f"{key}.{knob.option}", f"give either {MATCH_OPTION} or {knob.option}, not both: "
                                                 f"{MATCH_OPTION} searches {knob.option} per tile")
    target = point[MATCH_OPTION]
    if check.number(target, f"{key}.{MATCH_OPTION}") <= 0:
        raise check.fail(f"{key}.{MATCH_OPTION}", f"expected a rate in bits per pixel above 0, got {target!r}")
    return target


def _check_declared_values(check: Checker, codec_class: type[Codec], point: RatePoint, key: str) -> None:
    """The declared types, ranges and choices, refused in the words the codec's constructor would use. A required
    option left out is the constructor's to refuse, when the codec is built: a config may name a codec that a run
    leaves out (``--codecs``)."""
    try:
        check_declared(codec_class, point.options)
    except ValueError as exc:
        raise check.fail(f"{key} ({codec_class.name} {point.label})", str(exc)) from None
