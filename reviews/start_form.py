"""Starting a run from a page: a form from the graph's input schema."""

from __future__ import annotations

import json
from typing import Any

from django.forms import BoundField

from graphs.interrupts import DecisionError, check_value
from graphs.registry import GraphLoadError, GraphNotFound, get_registry
from graphs.run_settings import config_problems, context_problems
from graphs.worker import compiled_graph
from reviews.graph_state import GraphUnavailable, merged_keys, node_names
from reviews.schema_forms import SchemaForm, parse_json


class StartForm:
    def __init__(self, graph_name: str, graph) -> None:
        self.graph_name, self.graph = graph_name, graph
        spec = get_registry().get(graph_name)
        self.description = spec.description
        try:
            self.schema: dict[str, Any] | None = graph.get_input_jsonschema()
            self.schema_error = ""
        except Exception as exc:  # a schema pydantic can't read: raw JSON still works
            self.schema, self.schema_error = None, f"{type(exc).__name__}: {exc}"
        self.message_keys = _message_keys(graph, self.schema)
        self.merged = merged_keys(graph)
        self.inputs = self._inputs()
        self.example = (
            json.dumps(spec.example, ensure_ascii=False)
            if spec.example
            else _example(self.schema, self.message_keys)
        )
        self.nodes = node_names(graph)
        self.title = ""
        self.raw = ""
        self.interrupt_before: list[str] = []
        self.interrupt_after: list[str] = []
        self.errors: list[str] = []
        # What was wrong with the input, by its key: shown beside the field
        # when the form's fields were used, and for the API to name the key.
        self.field_errors: dict[str, str] = {}
        self.from_fields = False
        self.value: dict[str, Any] = {}
        # LangGraph's per-run config and runtime context (a context_schema's).
        self.config: dict[str, Any] = {}
        self.context: dict[str, Any] | None = None
        self.config_text = self.context_text = ""
        try:
            self.context_schema = (
                graph.get_context_jsonschema() if graph.context_schema is not None else None
            )
        except Exception:  # not describable: the context is still checked at run time
            self.context_schema = {}

    def _inputs(self, data=None) -> SchemaForm:
        """The input schema as a form. A reducer's key (add_messages, say)
        takes more shapes than its schema lists: is_valid asks the reducer."""
        form = SchemaForm(
            self.schema,
            prefix="in",
            message_keys=self.message_keys,
            unchecked=self.merged,
            data=data,
        )
        for key in self.message_keys:
            form.fields[
                key
            ].help_text = (
                "Write a sentence: it goes in as a person's message. Or a JSON list of messages."
            )
        return form

    @property
    def input_fields(self) -> list[BoundField]:
        """What a person starts the graph with: the required keys and message
        lists. The other keys of a state that doubles as input are the
        graph's own working state (a draft, a counter), offered apart."""
        fields = list(self.inputs)
        main = [f for f in fields if f.field.required or f.name in self.message_keys]
        return main or fields

    @property
    def state_fields(self) -> list[BoundField]:
        main = {f.name for f in self.input_fields}
        return [f for f in self.inputs if f.name not in main]

    @classmethod
    def open(cls, graph_name: str) -> StartForm:
        try:
            return cls(graph_name, compiled_graph(graph_name))
        except (GraphNotFound, GraphLoadError) as exc:
            raise GraphUnavailable(str(exc)) from exc

    def bind(self, data) -> None:
        self.title = str(data.get("title", "")).strip()[:300]
        self.raw = str(data.get("raw", ""))
        self.interrupt_before = [n for n in data.getlist("interrupt_before") if n in self.nodes]
        self.interrupt_after = [n for n in data.getlist("interrupt_after") if n in self.nodes]
        self.config_text = str(data.get("config", ""))
        self.context_text = str(data.get("context", ""))
        for name, text in (("config", self.config_text), ("context", self.context_text)):
            if text.strip():
                try:
                    setattr(self, name, parse_json(text))
                except ValueError as exc:
                    self.errors.append(f"{name.capitalize()}: {exc}")
        if self.raw.strip():
            try:
                self.value = parse_json(self.raw)
            except ValueError as exc:
                self.errors.append(f"Raw JSON: {exc}")
                return
            if not isinstance(self.value, dict):
                self.errors.append("Raw JSON must be an object: the graph's input.")
        else:
            self.inputs = self._inputs(data)
            self.from_fields = True
            if self.inputs.is_valid():
                self.value = self.inputs.value

    def bind_values(
        self,
        value: dict[str, Any],
        *,
        title: str = "",
        interrupt_before: list[str] = (),
        interrupt_after: list[str] = (),
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """The API's way in: the input as JSON."""
        self.value, self.title = value, title[:300]
        self.config, self.context = config or {}, context
        for name, nodes in (
            ("interrupt_before", interrupt_before),
            ("interrupt_after", interrupt_after),
        ):
            unknown = [n for n in nodes if n not in self.nodes]
            if unknown:
                self.errors.append(
                    f"{name}: {', '.join(unknown)} not among the nodes ({', '.join(self.nodes)})."
                )
            setattr(self, name, [n for n in nodes if n in self.nodes])

    def is_valid(self) -> bool:
        self.errors += config_problems(self.config) + context_problems(self.graph, self.context)
        if self.errors or (self.from_fields and self.inputs.errors):
            return False
        properties = (self.schema or {}).get("properties")
        if properties is not None:
            defs = {"$defs": self.schema["$defs"]} if "$defs" in self.schema else {}
            for key, value in self.value.items():
                if key not in properties:
                    self._refuse(key, f"The input of {self.graph_name} has no key {key!r}.")
                elif key in self.merged:
                    # A reducer (add_messages, say) takes more shapes than its
                    # schema lists: ask the reducer itself, as the run would.
                    problem = self._merge_problem(key, value)
                    if problem:
                        self._refuse(key, f"{key}: {problem}")
                elif not self.from_fields:  # the form's fields checked their own
                    try:
                        check_value(value, {**properties[key], **defs}, key)
                    except DecisionError as exc:
                        self._refuse(key, str(exc))
        return not self.errors and not (self.from_fields and self.inputs.errors)

    def _merge_problem(self, key: str, value: Any) -> str:
        """Why the key's reducer refuses `value`, or "" if it takes it. The
        reducer runs on an empty copy of the channel: nothing is saved."""
        channel = self.graph.channels[key].copy()
        try:
            channel.update([value])
        except Exception as exc:  # each reducer raises its own kinds
            lines = str(exc).strip().splitlines()
            return lines[0] if lines else type(exc).__name__
        return ""

    def _refuse(self, key: str, message: str) -> None:
        self.field_errors[key] = message
        if self.from_fields and key in self.inputs.fields:
            self.inputs.error_at(key, message)
        else:
            self.errors.append(message)

    @property
    def start_args(self) -> dict[str, Any]:
        """What the checked form asks to start, for reviews.actions.runs.start."""
        return {
            "graph_name": self.graph_name,
            "input": self.value,
            "title": self.title,
            "interrupt_before": self.interrupt_before,
            "interrupt_after": self.interrupt_after,
            "config": self.config,
            "context": self.context,
        }


def _message_keys(graph, schema: dict[str, Any] | None) -> set[str]:
    """Input keys that hold a message list (a channel merged by add_messages)."""
    keys = set()
    properties = (schema or {}).get("properties") or {}
    for key in merged_keys(graph) & set(properties):
        reducer = getattr(graph.channels[key], "operator", None)
        if getattr(reducer, "__name__", "") in ("add_messages", "_add_messages"):
            keys.add(key)
    return keys


def _example(schema: dict[str, Any] | None, message_keys: set[str]) -> str:
    """An example input for the start form when langgraph.json gives none:
    the schema's own examples when it gives them, else one built from its
    required keys."""
    if not schema:
        return ""
    if schema.get("examples"):
        return json.dumps(schema["examples"][0], ensure_ascii=False)
    properties = schema.get("properties") or {}
    example: dict[str, Any] = {}
    for key in schema.get("required") or list(properties)[:1]:
        prop = properties.get(key) or {}
        if key in message_keys:
            example[key] = [{"role": "user", "content": "Hello! Please help me with…"}]
        elif prop.get("examples"):
            example[key] = prop["examples"][0]
        elif "default" in prop:
            example[key] = prop["default"]
        else:
            example[key] = {
                "string": "…",
                "integer": 1,
                "number": 1.0,
                "boolean": True,
                "array": [],
                "object": {},
            }.get(prop.get("type"), "…")
    return json.dumps(example, ensure_ascii=False) if example else ""
