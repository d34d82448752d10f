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
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

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

    def load_object(self) -> Any:
        location, _, attr = self.target.rpartition(":")
        if not location or not attr:
            raise GraphLoadError(f"graph {self.name!r}: target {self.target!r} is not 'path:attr'")
        try:
            if location.endswith(".py") or "/" in location:
                path = (self.base_dir / location).resolve()
                if not path.is_file():
                    raise GraphLoadError(f"graph {self.name!r}: file {str(path)!r} not found")
                module_name = f"hitl_graphs.{self.name}"
                module = sys.modules.get(module_name)
                if module is None or getattr(module, "__file__", None) != str(path):
                    spec = importlib.util.spec_from_file_location(module_name, path)
                    assert spec and spec.loader
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[module_name] = module
                    spec.loader.exec_module(module)
            else:
                module = importlib.import_module(location)
        except GraphLoadError:
            raise
        except Exception as exc:
            raise GraphLoadError(
                f"graph {self.name!r}: importing {location!r} failed: {exc}"
            ) from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise GraphLoadError(f"graph {self.name!r}: {location!r} has no {attr!r}") from None

    def compile(self, checkpointer: BaseCheckpointSaver, **kwargs: Any) -> CompiledStateGraph:
        """The graph, compiled (or recompiled) with the given checkpointer,
        which may rebuild the types the graph's schemas name."""
        return allow_graph_types(self._compile(checkpointer, **kwargs))

    def _compile(self, checkpointer: BaseCheckpointSaver, **kwargs: Any) -> CompiledStateGraph:
        obj = self.load_object()
        if inspect.isfunction(obj):
            params = inspect.signature(obj).parameters
            obj = obj() if not params else obj({"configurable": {}})
        if isinstance(obj, StateGraph):
            return obj.compile(checkpointer=checkpointer, **kwargs)
        if isinstance(obj, CompiledStateGraph):
            # Recompile from the builder so the graph stores its checkpoints here.
            return obj.builder.compile(
                checkpointer=checkpointer,
                interrupt_before=kwargs.pop("interrupt_before", obj.interrupt_before_nodes),
                interrupt_after=kwargs.pop("interrupt_after", obj.interrupt_after_nodes),
                store=obj.store,
                name=obj.name,
                **kwargs,
            )
        raise GraphLoadError(
            f"graph {self.name!r}: {self.target!r} is a {type(obj).__name__}, "
            "not a StateGraph, a compiled graph or a function returning one"
        )


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
        descriptions = data.get("descriptions", {}) if isinstance(data, dict) else {}
        for name, target in graphs.items():
            if isinstance(target, dict):  # the CLI also allows {"path": ..., "description": ...}
                descriptions = {**descriptions, name: target.get("description", "")}
                target = target.get("path")
            if not isinstance(target, str):
                self.errors.append(f"graph {name!r}: target must be a 'path:attr' string")
                continue
            self._specs[name] = GraphSpec(
                name=name,
                target=target,
                base_dir=config_path.parent,
                description=str(descriptions.get(name, "")),
            )

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
