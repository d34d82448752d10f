"""Which graphs exist: read from a langgraph.json in LangGraph CLI format.

    {"graphs": {"support": "./support.py:graph", "drafts": "pkg.module:make_graph"}}

A target is a file path (relative to the langgraph.json) or a dotted module,
then ":" and an attribute: a compiled graph, an uncompiled StateGraph, or a
function that returns either. The dashboard compiles each one with its own
checkpointer, so graphs from an existing LangGraph project work unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dotenv
from django.conf import settings
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel

from graphs.loop import run_on_graph_loop
from graphs.serde import allow_graph_types


class GraphNotFound(LookupError):
    pass


class GraphLoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class GraphSpec:
    name: str
    target: str
    base_dir: Path
    description: str = ""
    # An input to start it with, from langgraph.json's "examples" (this
    # project's addition to the CLI's format): the start form shows it first.
    example: dict[str, Any] | None = None

    def load_object(self) -> Any:
        location, attr = self._location()
        try:
            return getattr(self.module(), attr)
        except AttributeError:
            raise GraphLoadError(f"graph {self.name!r}: {location!r} has no {attr!r}") from None

    def _location(self) -> tuple[str, str]:
        location, _, attr = self.target.rpartition(":")
        if not location or not attr:
            raise GraphLoadError(f"graph {self.name!r}: target {self.target!r} is not 'path:attr'")
        return location, attr

    def module(self) -> Any:
        """The module the graph is defined in, imported once."""
        location, _ = self._location()
        try:
            if location.endswith(".py") or "/" in location:
                return self._load_file(location)
            return importlib.import_module(location)
        except GraphLoadError:
            raise
        except Exception as exc:
            raise GraphLoadError(
                f"graph {self.name!r}: importing {location!r} failed: {exc}"
            ) from exc

    def _load_file(self, location: str) -> Any:
        path = (self.base_dir / location).resolve()
        if not path.is_file():
            raise GraphLoadError(f"graph {self.name!r}: file {str(path)!r} not found")
        module_name = f"hitl_graphs.{self.name}"
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, "__file__", None) == str(path):
            return module
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            # A half-run module must not answer the next attempt: that one
            # should fail with the real error again, not "has no 'graph'".
            sys.modules.pop(module_name, None)
            raise
        return module

    @property
    def takes_config(self) -> bool:
        """A factory that builds the graph from each run's config."""
        obj = self.load_object()
        return _is_factory(obj) and bool(inspect.signature(obj).parameters)

    def compile(
        self,
        checkpointer: BaseCheckpointSaver,
        *,
        config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> CompiledStateGraph:
        """The graph as its author built it (compiled, or compiled here), with
        the given checkpointer, which may rebuild the types the graph's
        schemas name. A factory is called with `config` if it takes one."""
        return allow_graph_types(self._compile(checkpointer, config or {}, **kwargs))

    def _compile(
        self, checkpointer: BaseCheckpointSaver, config: dict[str, Any], **kwargs: Any
    ) -> CompiledStateGraph:
        obj = self.load_object()
        if _is_factory(obj):
            obj = self._build(obj, {"configurable": {}, **config})
        if isinstance(obj, StateGraph):
            return obj.compile(checkpointer=checkpointer, **kwargs)
        if isinstance(obj, Pregel):
            # Keep everything the author compiled in (with_config, cache, store,
            # breakpoints, name): only where checkpoints go is ours.
            update: dict[str, Any] = {"checkpointer": checkpointer}
            for key in ("interrupt_before", "interrupt_after"):
                if key in kwargs:
                    update[f"{key}_nodes"] = kwargs.pop(key)
            return obj.copy(update)
        raise GraphLoadError(
            f"graph {self.name!r}: {self.target!r} is a {type(obj).__name__}, "
            "not a StateGraph, a compiled graph or a function returning one"
        )

    def _build(self, factory: Any, config: dict[str, Any]) -> Any:
        """Call a factory as LangGraph's server does: with the config if it
        takes one, awaited if it is async; an async context manager is
        entered once and kept open for the life of the process."""
        made = factory(config) if inspect.signature(factory).parameters else factory()
        if inspect.isawaitable(made):
            made = run_on_graph_loop(made)
        if hasattr(made, "__aenter__"):
            made = run_on_graph_loop(_enter_for_good(made))
        elif hasattr(made, "__enter__") and not isinstance(made, Pregel | StateGraph):
            made = made.__enter__()
        return made


def _is_factory(obj: Any) -> bool:
    return callable(obj) and not isinstance(obj, Pregel | StateGraph) and not inspect.isclass(obj)


_entered: list[Any] = []  # async context managers kept open


async def _enter_for_good(manager: Any) -> Any:
    graph = await manager.__aenter__()
    _entered.append(manager)
    return graph


class Registry:
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.errors: list[str] = []
        # A file that names no graph at all (unreadable, not JSON, no
        # "graphs"): graphs.checks stops the server and the worker on it.
        self.config_error = ""
        self._specs: dict[str, GraphSpec] = {}
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self._fail(f"{config_path}: cannot be read as JSON: {exc}")
            return
        graphs = data.get("graphs") if isinstance(data, dict) else None
        if not isinstance(graphs, dict) or not graphs:
            self._fail(f'{config_path}: no "graphs" mapping of name to "path:attr"')
            return
        self._prepare(data, config_path.parent)
        descriptions = data.get("descriptions", {}) if isinstance(data, dict) else {}
        examples = data.get("examples") or {}
        if not isinstance(examples, dict):
            self.errors.append('"examples" must map graph names to input objects')
            examples = {}
        for name, target in graphs.items():
            if isinstance(target, dict):  # the CLI also allows {"path": ..., "description": ...}
                descriptions = {**descriptions, name: target.get("description", "")}
                target = target.get("path")
            if not isinstance(target, str):
                self.errors.append(f"graph {name!r}: target must be a 'path:attr' string")
                continue
            example = examples.get(name)
            if example is not None and not isinstance(example, dict):
                self.errors.append(f"graph {name!r}: its example must be an input object")
                example = None
            self._specs[name] = GraphSpec(
                name=name,
                target=target,
                base_dir=config_path.parent,
                description=str(descriptions.get(name, "")),
                example=example,
            )

    def _prepare(self, data: dict[str, Any], base_dir: Path) -> None:
        """What the LangGraph CLI does before loading graphs: local
        `dependencies` become importable (a graph may import the module
        beside it), and `env` (a .env file, or a mapping) fills in
        environment variables that are not set already."""
        for dependency in data.get("dependencies") or []:
            if isinstance(dependency, str) and dependency.startswith((".", "/")):
                path = str((base_dir / dependency).resolve())
                if path not in sys.path:
                    # After our own packages: a graph's folder can't shadow them.
                    sys.path.append(path)
        env = data.get("env")
        if isinstance(env, str):
            env_path = (base_dir / env).resolve()
            if env_path.is_file():
                dotenv.load_dotenv(env_path, override=False)
            else:
                self.errors.append(
                    f"{base_dir / env}: the env file named in langgraph.json is missing"
                )
        elif isinstance(env, dict):
            for key, value in env.items():
                os.environ.setdefault(str(key), str(value))

    def _fail(self, error: str) -> None:
        self.config_error = error
        self.errors.append(error)

    def specs(self) -> list[GraphSpec]:
        return list(self._specs.values())

    def get(self, name: str) -> GraphSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise GraphNotFound(f"no graph named {name!r} (known: {known})") from None


@cache
def _registry_for(path: Path) -> Registry:
    return Registry(path)


def get_registry() -> Registry:
    return _registry_for(Path(settings.HITL_GRAPHS_CONFIG))
