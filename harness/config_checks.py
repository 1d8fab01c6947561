"""The checking behind every YAML file the harness reads: strict loading, and checks that name the file and key.

Every mistake becomes one ``UserError`` line naming the file and the key path
(``benchmarks.yaml: codecs[1].points[0].bits: ...``), and ``Problems`` gathers
the mistakes of independent sections, so that a user fixes a config in one
round. The benchmark config (``harness.config``) and the dataset sections of
other files (a trainer's) are checked with the same words.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UserError


class Checker:
    """Type checks that report the file and the key path of the offending value."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, message: str) -> UserError:
        return UserError(f"{self.path}: {key}: {message}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {describe(value)}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{key}.{unknown[0]}" if key else unknown[0],
                                f"unknown key; expected one of: {', '.join(sorted(allowed))}")
        return value

    def integer(self, value: Any, key: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {describe(value)}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {describe(value)}")
        return float(value)

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {describe(value)}")
        return value

    def sequence(self, value: Any, key: str) -> list:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {describe(value)}")
        return value


def describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"


class UniqueKeySafeLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that a key given twice in one mapping is an error.

    Plain YAML lets the last one win silently, so a config with two ``points:`` under one codec would
    measure only the second and say nothing.
    """


def _unique_mapping(loader: UniqueKeySafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}; give each key once",
                                                    key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeySafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


class Problems:
    """Every error of a config, so that a user fixes them in one round instead of one per run.

    Sections are checked independently; one that depends on a broken one (the codecs' tile size on the
    dataset, say) skips that part of its check.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def attempt(self, parse: Callable[..., Any], *arguments: Any) -> Any:
        """``parse(*arguments)``, or None after noting its error."""
        try:
            return parse(*arguments)
        except UserError as exc:
            self.messages.append(str(exc))
            return None

    def note(self, error: UserError) -> None:
        self.messages.append(str(error))

    def raise_if_any(self) -> None:
        if self.messages:
            raise UserError("\n".join(self.messages))


def parse_yaml(text: str, path: Path) -> Any:
    """The document in ``text`` (read from ``path``), plain data only; a syntax error or a repeated key is one line
    naming the place."""
    try:
        return yaml.load(text, Loader=UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from exc


def check_options(check: Checker, cls: type, options: dict, key: str, skip_first: bool) -> None:
    """Reject option names the plugin's constructor does not accept, before anything runs."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if skip_first:
        parameters = parameters[1:]
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return
    refuse_unknown_options(check, cls.name, {parameter.name for parameter in parameters}, options, key)


def refuse_unknown_options(check: Checker, plugin: str, accepted: set[str], options: dict, key: str) -> None:
    """Reject the first option of ``options`` whose name is not ``accepted`` by the plugin named ``plugin``."""
    for option in options:
        if option not in accepted:
            raise check.fail(f"{key}.{option}", f"unknown option for {plugin!r}; accepted: "
                                                f"{', '.join(sorted(accepted)) or 'none'}")
