"""What a run may ask of LangGraph besides its input: a config and a context.

The same checks for every way a run starts (the start page, the JSON API,
`manage.py startrun`), so a bad value is refused before anything is queued.
"""

from __future__ import annotations

from typing import Any

import jsonschema

# The parts of LangGraph's RunnableConfig a run may set; the thread and the
# checkpoint are the dashboard's to choose.
CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "configurable": dict,
    "recursion_limit": int,
    "tags": list,
    "metadata": dict,
    "run_name": str,
}
RESERVED_CONFIGURABLE = ("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map")


def langgraphs_own(key: str) -> bool:
    """A `configurable` key that is not a run's to set: where it reads and
    writes, LangGraph's runtime keys (`__pregel_*`; its resume map alone
    would answer a thread's interrupts without a review), and the identity
    LangGraph's server gives an authenticated caller (`langgraph_auth_user`,
    `_user_id`, `_permissions`), which graphs trust as the server's word."""
    return key in RESERVED_CONFIGURABLE or key.startswith("__") or key.startswith("langgraph_auth_")


def without_langgraphs_own(configurable: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in configurable.items() if not langgraphs_own(k)}


def config_problems(config: Any) -> list[str]:
    """Why this config can't be a run's, in words (none: it can)."""
    if not isinstance(config, dict):
        return ["config must be a JSON object (configurable, recursion_limit, tags, metadata)."]
    problems = []
    for key, value in config.items():
        kind = CONFIG_KEYS.get(key)
        if kind is None:
            problems.append(f"config has no {key!r}; a run may set {', '.join(CONFIG_KEYS)}.")
        elif not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"config {key!r} must be {_word(kind)}.")
    limit = config.get("recursion_limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit < 1:
        problems.append("config 'recursion_limit' must be at least 1.")
    if isinstance(config.get("tags"), list) and not all(isinstance(t, str) for t in config["tags"]):
        problems.append("config 'tags' must be a list of strings.")
    configurable = config.get("configurable")
    configurable = configurable if isinstance(configurable, dict) else {}
    reserved = [k for k in configurable if langgraphs_own(k)]
    if reserved:
        problems.append(
            f"config 'configurable' may not set {', '.join(reserved)}: "
            "the dashboard and LangGraph set them."
        )
    return problems


def context_problems(graph, context: Any) -> list[str]:
    """Why this context can't be given to the graph (none: it can)."""
    if context is None:
        return []
    if not isinstance(context, dict):
        return ["context must be a JSON object."]
    if getattr(graph, "context_schema", None) is None:
        return ["This graph takes no context (it has no context_schema)."]
    try:
        schema = graph.get_context_jsonschema()
    except Exception:  # a schema pydantic can't describe: LangGraph checks it at run time
        return []
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(context), key=str)
    return [f"context{_where(e)}: {e.message}" for e in errors[:5]]


def _where(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f" at {path}" if path else ""


def _word(kind: type | tuple[type, ...]) -> str:
    return {dict: "an object", int: "a whole number", list: "a list", str: "a string"}[kind]
