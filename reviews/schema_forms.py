"""HTML form fields made from a JSON schema, and values parsed back from a POST.

Used by the feedback form (`interrupt(..., response_schema=...)`) and the state
editor (the graph's state schema). Simple properties get real inputs; what a
form can't express (lists, objects, messages) gets a JSON box. Values keep
their JSON types: an integer field gives an int, a JSON box gives whatever
JSON it holds, never a string that looks like one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reviews import json_input

MISSING = object()


@dataclass
class SchemaField:
    key: str
    name: str  # the input's name in the form
    label: str
    widget: str  # text, textarea, integer, number, checkbox, select, json
    schema: dict[str, Any]
    required: bool = False
    nullable: bool = False
    choices: list[Any] = field(default_factory=list)
    help: str = ""
    text: str = ""  # the value as the input shows it
    checked: bool = False
    error: str = ""
    merged: bool = False  # state editor: the channel merges updates (a reducer)

    @property
    def dom_id(self) -> str:
        """The input's id, which its label, help and error point at; the name
        holds the form's prefix, so fields of two forms on a page differ."""
        return "field-" + re.sub(r"\s", "_", self.name)

    @property
    def choice_texts(self) -> list[tuple[str, str]]:
        return [(json.dumps(c), str(c)) for c in self.choices]


def resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (`#/$defs/...`), as pydantic writes them."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 10:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _base(schema: dict[str, Any], root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The property's schema without a `null` alternative, and whether it had one."""
    schema = resolve(schema, root)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        rest = [o for o in options if resolve(o, root).get("type") != "null"]
        if len(rest) == 1 and len(rest) < len(options):
            return resolve(rest[0], root), True
    type_ = schema.get("type")
    if isinstance(type_, list) and "null" in type_:
        others = [t for t in type_ if t != "null"]
        if len(others) == 1:
            return {**schema, "type": others[0]}, True
    return schema, False


def _widget(schema: dict[str, Any], current: Any) -> str:
    if "enum" in schema:
        return "select"
    type_ = schema.get("type")
    if type_ == "string":
        long = isinstance(current, str) and ("\n" in current or len(current) > 80)
        return "textarea" if long or schema.get("maxLength", 0) > 200 else "text"
    if type_ in ("integer", "number", "boolean"):
        return "checkbox" if type_ == "boolean" else type_
    return "json"


def fields_for(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, Any] | None = None,
    *,
    prefix: str = "f-",
    keys: list[str] | None = None,
) -> list[SchemaField]:
    """One field per property of an object schema, filled with `values`.
    `keys` adds properties the schema doesn't list (shown as JSON boxes)."""
    schema = dict(schema or {})
    root = schema
    properties = resolve(schema, root).get("properties") or {}
    required = set(resolve(schema, root).get("required") or [])
    values = values or {}
    out = []
    for key in [*properties, *[k for k in keys or [] if k not in properties]]:
        prop, nullable = _base(properties.get(key, {}), root)
        current = values.get(key, MISSING)
        widget = _widget(prop, None if current is MISSING else current)
        item = SchemaField(
            key=key,
            name=f"{prefix}{key}",
            label=str(prop.get("title") or key.replace("_", " ").capitalize()),
            widget=widget,
            schema=prop,
            required=key in required,
            nullable=nullable,
            choices=list(prop.get("enum") or []),
            help=str(prop.get("description") or ""),
        )
        if current is not MISSING and current is not None:
            if widget == "checkbox":
                item.checked = bool(current)
            elif widget == "json":
                item.text = json.dumps(current, indent=2, ensure_ascii=False)
            elif widget == "select":
                item.text = json.dumps(current)
            else:
                item.text = str(current)
        elif "default" in prop and widget != "json":
            default = prop["default"]
            item.checked = bool(default) if widget == "checkbox" else False
            item.text = json.dumps(default) if widget == "select" else str(default)
        out.append(item)
    return out


def parse_fields(fields: list[SchemaField], data: Mapping[str, Any]) -> dict[str, Any]:
    """The values the form holds, by key; empty optional inputs are left out.
    Sets `error` on fields it can't read (check `any(f.error for f in fields)`)."""
    out: dict[str, Any] = {}
    for item in fields:
        if item.widget == "checkbox":
            item.checked = item.name in data
            out[item.key] = item.checked
            continue
        raw = (
            str(data.get(item.name, "")).strip()
            if item.widget != "textarea"
            else str(data.get(item.name, ""))
        )
        item.text = raw
        if raw.strip() == "":
            if item.required:
                item.error = "This field is required."
            elif item.nullable and item.name in data:
                out[item.key] = None
            continue
        try:
            out[item.key] = _read(item, raw)
        except ValueError as exc:
            item.error = str(exc)
    return out


def _read(item: SchemaField, raw: str) -> Any:
    if item.widget in ("text", "textarea"):
        return raw
    if item.widget == "integer":
        try:
            number = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number.") from None
        # Past 64 bits no database column or checkpoint encoding takes it.
        if not json_input.INT_MIN <= number <= json_input.INT_MAX:
            raise ValueError(f"{raw} is too large a number.")
        return number
    if item.widget == "number":
        try:
            value = json_input.parse_json(raw)  # keeps 3 an int and 2.5 a float
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{raw!r} is not a number.")
        return value
    if item.widget == "select":
        try:
            value = json_input.parse_json(raw)
        except ValueError:
            value = raw
        if value not in item.choices:
            raise ValueError(f"Choose one of: {', '.join(map(str, item.choices))}.")
        return value
    return parse_json(raw)


def parse_json(raw: str) -> Any:
    """JSON text to a value, with an error a person can act on."""
    return json_input.parse_json(raw)
