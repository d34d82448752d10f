"""Starting a run from a page: a form from the graph's input schema."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms import BoundField
from django.utils.html import format_html, format_html_join

from graphs.interrupts import DecisionError, check_value
from graphs.registry import GraphLoadError, GraphNotFound, get_registry
from graphs.run_settings import config_problems, context_problems
from graphs.worker import compiled_graph
from reviews.graph_state import GraphUnavailable, merged_keys, node_names
from reviews.schema_forms import EMPTY, JSONBox, SchemaForm, as_text


class StartForm(forms.Form):
    """The options of a new run (title, breakpoints, config, context) and its
    input: the input schema's fields (`inputs`), or raw JSON. The API binds
    the same form (`from_api`), its input as the raw JSON, so a refusal says
    the same on the page and in the API's 422. Cleaned, `key_errors` holds
    the input's problems by key and `start_args` what to start."""

    use_required_attribute = False

    title = forms.CharField(
        required=False,
        max_length=300,
        label="Thread title (optional)",
        error_messages={"max_length": "Title: at most %(limit_value)d characters."},
    )
    raw = JSONBox(
        label="Raw JSON",
        help_text="The graph's input as a JSON object, used instead of the fields above when filled.",
        shape=dict,
        shape_error="Raw JSON must be an object: the graph's input.",
        widget=forms.Textarea(attrs={"rows": 6, "class": "json"}),
    )
    interrupt_before = forms.MultipleChoiceField(required=False)
    interrupt_after = forms.MultipleChoiceField(required=False)
    config = JSONBox(
        label="Config",
        help_text="Optional: configurable, recursion_limit, tags, metadata.",
        shape=dict,
        shape_error="Config must be a JSON object (configurable, recursion_limit, tags, metadata).",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "class": "json",
                "placeholder": '{"configurable": {"user_id": "u-1"}, "recursion_limit": 50}',
            }
        ),
    )
    context = JSONBox(
        label="Context",
        widget=forms.Textarea(attrs={"rows": 3, "class": "json"}),
    )

    def __init__(self, graph_name: str, graph, data=None, *, from_api: bool = False) -> None:
        super().__init__(data=data)
        self.graph_name, self.graph, self.from_api = graph_name, graph, from_api
        spec = get_registry().get(graph_name)
        self.description = spec.description
        try:
            self.schema: dict[str, Any] | None = graph.get_input_jsonschema()
            self.schema_error = ""
        except Exception as exc:  # a schema pydantic can't read: raw JSON still works
            self.schema, self.schema_error = None, f"{type(exc).__name__}: {exc}"
        self.message_keys = _message_keys(graph, self.schema)
        self.merged = merged_keys(graph)
        self.example = (
            json.dumps(spec.example, ensure_ascii=False)
            if spec.example
            else _example(self.schema, self.message_keys)
        )
        if self.example:
            self.fields["raw"].widget.attrs["placeholder"] = self.example
        self.nodes = node_names(graph)
        for name in ("interrupt_before", "interrupt_after"):
            self.fields[name].choices = [(n, n) for n in self.nodes]
            self.fields[name].error_messages["invalid_choice"] = (
                f"{name}: %(value)s is not among the nodes ({', '.join(self.nodes)})."
            )
        try:
            self.context_schema = (
                graph.get_context_jsonschema() if graph.context_schema is not None else None
            )
        except Exception:  # not describable: the context is still checked at run time
            self.context_schema = {}
        keys = (self.context_schema or {}).get("properties") or {}
        self.fields["context"].help_text = format_html(
            "A JSON object{}: the graph's context_schema.",
            format_html(" with {}", format_html_join(", ", "<code>{}</code>", ((k,) for k in keys)))
            if keys
            else "",
        )
        # The input's fields, read when the raw box is empty.
        self.from_fields = self.is_bound and not from_api and not str(data.get("raw", "")).strip()
        self.inputs = self._inputs(data if self.from_fields else None)
        # What was wrong with the input, by its key: for the API to name the key.
        self.key_errors: dict[str, str] = {}
        self.value: dict[str, Any] = {}

    def _inputs(self, data=None) -> SchemaForm:
        """The input schema as a form. A reducer's key (add_messages, say)
        takes more shapes than its schema lists: clean asks the reducer."""
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

    @property
    def shows_settings(self) -> bool:
        """Whether the run settings start open: filled in, or a context to give."""
        filled = self.is_bound and (self["config"].value() or self["context"].value())
        return bool(filled or self.context_schema is not None)

    @classmethod
    def open(cls, graph_name: str, data=None, *, from_api: bool = False) -> StartForm:
        try:
            graph = compiled_graph(graph_name)
        except (GraphNotFound, GraphLoadError) as exc:
            raise GraphUnavailable(str(exc)) from exc
        return cls(graph_name, graph, data, from_api=from_api)

    @staticmethod
    def api_data(
        value: dict[str, Any],
        *,
        title: str = "",
        interrupt_before: list[str] = (),
        interrupt_after: list[str] = (),
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The API's JSON as the form's data: its values as the JSON boxes'
        text, read by the same parser and checks as what a person types."""
        return {
            "title": title,
            "raw": as_text(value),
            "interrupt_before": list(interrupt_before),
            "interrupt_after": list(interrupt_after),
            "config": as_text(config) if config else "",
            "context": "" if context is None else as_text(context),
        }

    def clean_title(self) -> str:
        return self.cleaned_data["title"].strip()

    def clean_config(self) -> dict[str, Any]:
        config = self.cleaned_data["config"]
        config = {} if config is EMPTY else config
        problems = config_problems(config)
        if problems:
            raise forms.ValidationError(problems)
        return config

    def clean_context(self) -> Any:
        context = self.cleaned_data["context"]
        context = None if context is EMPTY else context
        problems = context_problems(self.graph, context)
        if problems:
            raise forms.ValidationError(problems)
        return context

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.from_fields:
            if not self.inputs.is_valid():
                self.add_error(None, "Some fields need attention: see below.")
                return cleaned
            self.value = self.inputs.value
        elif "raw" in cleaned:
            self.value = {} if cleaned["raw"] is EMPTY else cleaned["raw"]
        else:
            return cleaned  # the raw box's own problem is told at it
        for key, message in self._problems(self.value).items():
            self.key_errors[key] = message
            if self.from_fields and key in self.inputs.fields:
                self.inputs.error_at(key, message)
            else:
                self.add_error("raw", message)
        if self.from_fields and self.inputs.errors:
            self.add_error(None, "Some fields need attention: see below.")
        return cleaned

    def _problems(self, value: dict[str, Any]) -> dict[str, str]:
        """What the graph's input says of each key of `value`: its schema (the
        form's fields checked their own), or the key's reducer."""
        properties = (self.schema or {}).get("properties")
        if properties is None:
            return {}
        defs = {"$defs": self.schema["$defs"]} if "$defs" in self.schema else {}
        problems = {}
        for key, item in value.items():
            if key not in properties:
                problems[key] = f"The input of {self.graph_name} has no key {key!r}."
            elif key in self.merged:
                # A reducer (add_messages, say) takes more shapes than its
                # schema lists: ask the reducer itself, as the run would.
                problem = self._merge_problem(key, item)
                if problem:
                    problems[key] = f"{key}: {problem}"
            elif not self.from_fields:
                try:
                    check_value(item, {**properties[key], **defs}, key)
                except DecisionError as exc:
                    problems[key] = str(exc)
        return problems

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

    @property
    def start_args(self) -> dict[str, Any]:
        """What the checked form asks to start, for reviews.actions.runs.start."""
        cleaned = self.cleaned_data
        return {
            "graph_name": self.graph_name,
            "input": self.value,
            "title": cleaned["title"],
            "interrupt_before": cleaned["interrupt_before"],
            "interrupt_after": cleaned["interrupt_after"],
            "config": cleaned["config"],
            "context": cleaned["context"],
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
