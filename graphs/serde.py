"""How checkpoints are decoded: LangGraph's serializer in its strict mode.

LangGraph's JSON-plus serializer rebuilds objects from msgpack records that
name a module, a callable and its arguments. Left permissive (its default),
it imports and calls whatever a stored record names, so anyone able to write
to the checkpoint tables could run code as the server. Strict, it rebuilds
only LangGraph's list of safe types (datetimes, UUIDs, sets, langchain
messages, Send, Interrupt, Command...) and the types a graph's schemas name;
any other record loads as its plain data, with a warning in LangGraph's log.
This is what `LANGGRAPH_STRICT_MSGPACK=true` does, without depending on the
variable being set before LangGraph is imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph._internal._serde import build_serde_allowlist
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer


def strict_serializer(allowed: Iterable[tuple[str, ...] | type] = ()) -> JsonPlusSerializer:
    """LangGraph's serializer rebuilding its safe types and `allowed` only."""
    # An empty allowlist (None) is LangGraph's strict mode: safe types only.
    return JsonPlusSerializer(allowed_msgpack_modules=tuple(allowed) or None)


def graph_types(graph: Any) -> set[tuple[str, ...]]:
    """(module, name) of the pydantic models, dataclasses and enums the
    compiled graph's schemas and channels name, its subgraphs' included: the
    list LangGraph's strict mode allows a graph to load."""
    graphs = [graph, *(sub for _, sub in graph.get_subgraphs(recurse=True))]
    allowed: set[tuple[str, ...]] = set()
    for compiled in graphs:
        builder = getattr(compiled, "builder", None)
        if builder is None:  # a Pregel graph built by hand: channels only
            allowed |= build_serde_allowlist(channels=getattr(compiled, "channels", None))
            continue
        # The schemas LangGraph's StateGraph.compile walks in strict mode.
        schemas = [
            builder.state_schema,
            builder.input_schema,
            builder.output_schema,
            builder.context_schema,
            *(node.input_schema for node in builder.nodes.values()),
            *(
                branch.input_schema
                for branches in builder.branches.values()
                for branch in branches.values()
            ),
        ]
        allowed |= build_serde_allowlist(schemas=schemas, channels=builder.channels)
    return allowed


def allow_graph_types(graph: Any) -> Any:
    """Let the graph's saver rebuild the types the graph's own schemas name.

    Subgraphs save through their parent's saver, so the parent's list covers
    theirs. A saver whose serializer LangGraph can't extend is left as is."""
    checkpointer = getattr(graph, "checkpointer", None)
    if checkpointer is None or checkpointer in (True, False):
        return graph
    if hasattr(checkpointer, "with_allowlist"):
        graph.checkpointer = checkpointer.with_allowlist(graph_types(graph))
    return graph
