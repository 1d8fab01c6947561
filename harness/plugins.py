"""Build the plugin manager and the registry of codecs, datasets and metrics.

Built-in plugins (the modules in ``codecs/`` and ``datasets/``, the metrics
and the report writers) are registered through the same path as third-party ones,
so the built-ins prove the public API is sufficient. Every registered name
remembers where it came from, because "which plugin gave me this codec?" is
the first question when two plugins disagree.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pluggy

from harness import hookspecs
from harness.api import PROJECT_NAME, Codec, Metric, MetricColumn, Trainer
from harness.errors import UserError

BUILTIN_PACKAGES = ("harness_codecs", "harness_datasets")
PROJECT_PACKAGES = ("harness", *BUILTIN_PACKAGES)
SETUP_ADVICE = "install the project's dependencies (bash scripts/setup.sh)"
BUILTIN_MODULES = ("harness.metrics", "harness.task_metrics", "harness.reporting.tables", "harness.reporting.figures",
                   "harness.reporting.compressai", "harness.reporting.visual")
ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_ENTRY_POINTS_VARIABLE = "HARNESS_LOAD_ENTRY_POINTS"


@dataclass(frozen=True)
class Registered:
    """A plugin-provided object and the origin it came from (for `list` and errors)."""

    obj: Any
    origin: str


@dataclass(frozen=True)
class SkippedModule:
    """A built-in plugin module that was not loaded because a third-party library it imports is not installed."""

    module: str
    library: str
    reason: str


def not_loaded_message(skipped: tuple[SkippedModule, ...]) -> str:
    """What was not loaded and why, grouped by reason, with what to do: the one wording of `list` and of errors."""
    reasons: dict[str, list[str]] = {}
    for entry in skipped:
        reasons.setdefault(entry.reason, []).append(entry.module)
    groups = "; ".join(f"{', '.join(modules)} ({reason})" for reason, modules in reasons.items())
    return f"not loaded on this machine: {groups}: {SETUP_ADVICE}"


@dataclass
class Registry:
    """Everything the plugins provide, keyed by unique name; ``skipped``: the built-ins a missing library kept out."""

    codecs: dict[str, Registered] = field(default_factory=dict)
    datasets: dict[str, Registered] = field(default_factory=dict)
    metrics: dict[str, Registered] = field(default_factory=dict)
    trainers: dict[str, Registered] = field(default_factory=dict)
    report_writers: dict[str, Registered] = field(default_factory=dict)
    skipped: tuple[SkippedModule, ...] = ()

    def codec(self, name: str) -> Any:
        return self._lookup(self.codecs, "codec", name)

    def dataset(self, name: str) -> Any:
        return self._lookup(self.datasets, "dataset", name)

    def unknown(self, kind: str, name: str) -> str:
        """The one-line error for a ``kind`` ("codec", "dataset", "trainer", ...) named ``name`` that is not registered;
        it names the skipped built-ins too, since the name may be one that a skipped module would have provided."""
        tables = {"codec": self.codecs, "dataset": self.datasets, "metric": self.metrics, "trainer": self.trainers,
                  "report writer": self.report_writers}
        not_loaded = f"; {not_loaded_message(self.skipped)}" if self.skipped else ""
        return (f"unknown {kind} {name!r}; registered: {', '.join(tables[kind]) or 'none'} "
                f"(run `python -m harness list`){not_loaded}")

    def _lookup(self, table: dict[str, Registered], kind: str, name: str) -> Any:
        if name not in table:
            raise UserError(self.unknown(kind, name))
        return table[name].obj

    def metric_functions(self) -> list[Metric]:
        return [entry.obj for entry in self.metrics.values()]

    def report_writer_functions(self) -> list[Callable]:
        return [entry.obj for entry in self.report_writers.values()]

    def metric_columns(self) -> tuple[MetricColumn, ...]:
        """Every metric's declared columns, in registration order; two metrics may not write one column."""
        owners: dict[str, str] = {}
        columns = []
        for name, entry in self.metrics.items():
            for column in entry.obj.columns:
                if column.name in owners:
                    raise UserError(f"metric column {column.name!r} is declared by metric {owners[column.name]!r} "
                                    f"and by metric {name!r} ({entry.origin}); rename one of them")
                owners[column.name] = name
                columns.append(column)
        return tuple(columns)


def build_registry(extra_plugins: list[str] | tuple[str, ...] = (), base_dir: Path | None = None) -> Registry:
    """Load every plugin and collect what it provides.

    ``extra_plugins`` are the config's ``plugins:`` entries: a ``.py`` file
    (relative to ``base_dir``) or an importable module name.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    origins: dict[str, str] = {}
    builtins, skipped = _builtin_plugins()
    for module, origin in builtins:
        _register(manager, module, origin, origins)
    for module, origin in _entry_point_plugins():
        _register(manager, module, origin, origins)
    for entry in extra_plugins:
        module = _import_config_plugin(entry, base_dir or Path.cwd())
        _register(manager, module, f"config plugin {entry}", origins)
    return Registry(
        codecs=_collect(manager, "harness_codecs", "codec", origins, _subclass_name(Codec, "harness.Codec")),
        datasets=_collect(manager, "harness_datasets", "dataset", origins, _declared_name),
        metrics=_collect(manager, "harness_metrics", "metric", origins, _metric_name),
        trainers=_collect(manager, "harness_trainers", "trainer", origins, _subclass_name(Trainer, "harness.Trainer")),
        report_writers=_collect(manager, "harness_report_writers", "report writer", origins, _function_name),
        skipped=tuple(skipped),
    )


def _declared_name(plugin: Any) -> str:
    """A plugin class's ``name``; without one its hook broke the contract, which ``_collect`` reports."""
    name = getattr(plugin, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{plugin!r} has no name (a non-empty string class attribute)")
    return name


def _function_name(plugin: Any) -> str:
    if not callable(plugin) or not getattr(plugin, "__name__", None):
        raise TypeError(f"{plugin!r} is not a function")
    return plugin.__name__


def _metric_name(plugin: Any) -> str:
    if not isinstance(plugin, Metric):
        raise TypeError(f"{plugin!r} is not a harness.Metric (declare its columns with @harness.metric(...))")
    return plugin.name


def _subclass_name(base: type, base_name: str) -> Callable[[Any], str]:
    def name_of(plugin: Any) -> str:
        if not (isinstance(plugin, type) and issubclass(plugin, base)):
            raise TypeError(f"{plugin!r} is not a subclass of {base_name}")
        return _declared_name(plugin)
    return name_of


def _register(manager: pluggy.PluginManager, module: object, origin: str, origins: dict[str, str]) -> None:
    if manager.is_registered(module):
        return
    name = manager.register(module)
    origins[name] = origin


def _builtin_plugins() -> tuple[list[tuple[ModuleType, str]], list[SkippedModule]]:
    """Modules of the built-in plugin folders (names starting with ``_`` are helpers, not plugins), and those skipped.

    A module that imports a third-party library the machine lacks is skipped, so that e.g. a GPU machine without
    rasterio still runs the codecs that need only torch; any other failure, a missing project module included, is a
    bug and stays fatal. Unlike a broken entry point this warns nothing here: a partial install is a supported setup,
    and the skipped modules are named by `list` and by any error about a name they would have provided.
    """
    names = [
        f"{package_name}.{info.name}"
        for package_name in BUILTIN_PACKAGES
        for info in sorted(pkgutil.iter_modules(importlib.import_module(package_name).__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]
    plugins, skipped = [], []
    for name in [*names, *BUILTIN_MODULES]:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            library = (exc.name or "").partition(".")[0]
            if not library or library in PROJECT_PACKAGES:
                raise
            skipped.append(SkippedModule(name, library, str(exc)))
            continue
        plugins.append((module, display_path(Path(module.__file__))))
    return plugins, skipped


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _entry_point_plugins() -> list[tuple[object, str]]:
    """Installed packages' plugins; one that fails to import is reported and skipped, not fatal.

    None when ``HARNESS_LOAD_ENTRY_POINTS=0``: the tests set it, so that an unrelated installed plugin
    cannot change what they measure (as llm's ``LLM_LOAD_PLUGINS`` and datasette's test mode do), and a
    user can rule installed plugins out when a run behaves oddly.
    """
    if os.environ.get(LOAD_ENTRY_POINTS_VARIABLE, "1") == "0":
        return []
    plugins = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else "unknown distribution"
        try:
            plugin = entry_point.load()
        except Exception as exc:  # a broken third-party package must not stop the benchmark
            warnings.warn(f"skipping plugin entry point {entry_point.name!r} from {distribution}: {exc}", stacklevel=2)
            continue
        plugins.append((plugin, f"entry point {entry_point.name} ({distribution})"))
    return plugins


def _import_config_plugin(entry: str, base_dir: Path) -> ModuleType:
    if entry.endswith(".py"):
        return _import_file(base_dir / entry, entry)
    try:
        return importlib.import_module(entry)
    except ImportError as exc:
        raise UserError(
            f"plugins: cannot import module {entry!r} ({exc}); give a .py file path or an installed module name"
        ) from exc


def _import_file(path: Path, entry: str) -> ModuleType:
    """Import a plugin file under a private module name, as pytest imports conftest files."""
    if not path.is_file():
        raise UserError(f"plugins: file {entry!r} not found (looked at {path}); paths are relative to the config file")
    module_name = f"harness_plugin_{abs(hash(str(path.resolve())))}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UserError(f"plugins: {path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def _collect(
    manager: pluggy.PluginManager,
    hook_name: str,
    kind: str,
    origins: dict[str, str],
    name_of: Callable[[Any], str],
) -> dict[str, Registered]:
    """Call one hook plugin by plugin so each result keeps its origin; duplicate names are an error."""
    collected: dict[str, Registered] = {}
    for implementation in getattr(manager.hook, hook_name).get_hookimpls():
        origin = origins.get(implementation.plugin_name, implementation.plugin_name)
        for obj in implementation.function() or []:
            try:
                name = name_of(obj)
            except TypeError as exc:
                raise UserError(f"{kind} plugin from {origin}: {exc}; see harness/hookspecs.py for the contract") \
                    from None
            if name in collected:
                raise UserError(
                    f"duplicate {kind} name {name!r}: provided by {collected[name].origin} and by {origin}; "
                    "rename one of them or remove one plugin"
                )
            collected[name] = Registered(obj, origin)
    return collected
