"""What a codec declares about its options, and the check of given values against that declaration.

A codec that declares its options (``Codec.options``) leaves their names, types and ranges to the harness: the
config refuses an unknown name, a wrong type or a value out of range in one line before any codec is built,
``python -m harness list --verbose`` shows them, and a codec built directly gets the same check (``Codec.__new__``).
What a declaration cannot say (one option depending on another, a range that depends on a loaded checkpoint)
stays in the codec's constructor.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NOUNS = {int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class CodecOption:
    """One constructor keyword of a codec: its name, type and accepted values, and what it means.

    ``type`` is ``int``, ``float`` (integers are numbers too), ``bool`` or ``str``. ``minimum`` and ``maximum``
    bound a number, each included unless ``exclusive_minimum`` / ``exclusive_maximum`` says otherwise; ``choices``
    are the only values accepted. ``required``: the constructor needs it (a rate knob's value may come from
    ``match_bpp`` or ``lossless: true`` instead), shown by ``list --verbose``. ``description`` says what the option does, in ``list --verbose``
    and after the accepted values in a refusal.
    """

    name: str
    type: type
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    required: bool = False
    description: str = ""
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    @property
    def accepted(self) -> str:
        """The accepted values in words: ``an integer from 0 to 100``, ``a number in (0, 1]``, ``10 or 12``."""
        if self.type is bool:
            return "true or false"
        if self.choices:
            return _either(self.choices)
        return NOUNS[self.type] + _range_words(self)

    def refusal(self, codec: str, value: Any) -> str | None:
        """Why ``value`` is not accepted, in one line naming the codec, the option, the value and what is accepted;
        None when it is."""
        if _fits(self, value):
            return None
        meaning = f" ({self.description})" if self.description else ""
        return f"{codec} option {self.name}={value!r}; accepted: {self.accepted}{meaning}"


def check_declared(codec_class: type, options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for the first given option whose value its declaration refuses. Options the codec
    does not declare are left to it (and to the config's check of option names), and so is None where None is the
    constructor's default: the codec's own way of saying "not given"."""
    declared = {option.name: option for option in codec_class.options or ()}
    defaults = {parameter.name: parameter.default
                for parameter in inspect.signature(codec_class.__init__).parameters.values()}
    for name, value in options.items():
        if name not in declared or (value is None and name in defaults and defaults[name] is None):
            continue
        refusal = declared[name].refusal(codec_class.name, value)
        if refusal:
            raise ValueError(refusal)


def declaration_lines(codec_class: type) -> list[str]:
    """A codec's declared options, one line each, then its example point: what ``list --verbose`` shows."""
    if codec_class.options is None:
        return ["options not declared (the codec checks its own)"]
    width = max((len(option.name) for option in codec_class.options), default=0)
    lines = [f"{option.name:<{width}}  {option.accepted}{', required' if option.required else ''}"
             f"{': ' + option.description if option.description else ''}" for option in codec_class.options]
    example = codec_class.example_point
    shown = ", ".join(f"{name}={value}" for name, value in example.items()) if example else "none declared"
    return [*lines, f"example point: {shown}"]


def _fits(option: CodecOption, value: Any) -> bool:
    if isinstance(value, bool) != (option.type is bool):
        return False
    if option.type is float:
        if not isinstance(value, (int, float)):
            return False
    elif not isinstance(value, option.type):
        return False
    if option.choices:
        return value in option.choices
    return _within(option, value) if option.type in (int, float) else True


def _within(option: CodecOption, value: float) -> bool:
    low, high = option.minimum, option.maximum
    above = low is None or (value > low if option.exclusive_minimum else value >= low)
    below = high is None or (value < high if option.exclusive_maximum else value <= high)
    return above and below


def _range_words(option: CodecOption) -> str:
    low, high = option.minimum, option.maximum
    if low is not None and high is not None:
        if not (option.exclusive_minimum or option.exclusive_maximum):
            return f" from {low:g} to {high:g}"
        opening, closing = "(" if option.exclusive_minimum else "[", ")" if option.exclusive_maximum else "]"
        return f" in {opening}{low:g}, {high:g}{closing}"
    if low is not None:
        return f" above {low:g}" if option.exclusive_minimum else f" of at least {low:g}"
    if high is not None:
        return f" below {high:g}" if option.exclusive_maximum else f" of at most {high:g}"
    return ""


def _either(choices: tuple[Any, ...]) -> str:
    words = [str(choice) for choice in choices]
    if len(words) <= 2:
        return " or ".join(words)
    return f"one of {', '.join(words)}"
