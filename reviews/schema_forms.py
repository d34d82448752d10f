"""Django forms made from a JSON schema: one field per property.

Used by the feedback form (`interrupt(..., response_schema=...)`), the start
form (the graph's input schema) and the state editor (its state schema).
Simple properties get real inputs; what a form can't express (lists, objects,
messages) gets a JSON box. Values keep their JSON types: an integer field
gives an int, a JSON box gives whatever JSON it holds, never a string that
looks like one. The schema itself is the last word: `clean` checks each value
against its property with jsonschema and says what is wrong at the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms

from graphs.interrupts import DecisionError, check_value
from reviews import json_input
from reviews.templatetags.as_json import json_text

# An empty optional input: the key is left out of the value.
EMPTY = object()


def parse_json(raw: str) -> Any:
    """JSON text to a value, with an error a person can act on."""
    return json_input.parse_json(raw)


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


class _Value(forms.Field):
    """A schema property's input. `kind` names the input (text, textarea,
    integer, number, checkbox, select, json) for the page; an empty optional
    input cleans to EMPTY (or None where the schema allows null)."""

    kind = "json"

    def __init__(self, *, schema: dict[str, Any], nullable: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema, self.nullable, self.merged = schema, nullable, False
        if self.required:
            # The server says what is missing, at the field; the browser's own
            # check would stop the form before a person sees why.
            self.widget.attrs["aria-required"] = "true"

    def to_python(self, value: Any) -> Any:
        text = "" if value is None else str(value)
        if not text.strip():
            return EMPTY
        try:
            return self.read(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None

    def read(self, text: str) -> Any:
        return parse_json(text)

    def shown(self, value: Any) -> Any:
        """A value as its input shows it (JSON for a JSON box)."""
        return json_text(value, indent=2)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial) != self.to_python(data)
        except forms.ValidationError:
            return True

    def validate(self, value: Any) -> None:
        if value is EMPTY and self.required:
            raise forms.ValidationError("This field is required.", code="required")


class _Text(_Value):
    kind = "text"

    def to_python(self, value: Any) -> Any:
        return super().to_python(value.strip() if isinstance(value, str) else value)

    def read(self, text: str) -> Any:
        return text

    def shown(self, value: Any) -> Any:
        return str(value)


class _LongText(_Text):
    kind = "textarea"

    def to_python(self, value: Any) -> Any:  # kept as typed: line breaks and indents count
        return _Value.to_python(self, value)


class _Integer(_Text):
    kind = "integer"

    def read(self, text: str) -> Any:
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number.") from None
        # Past 64 bits no database column or checkpoint encoding takes it.
        if not json_input.INT_MIN <= number <= json_input.INT_MAX:
            raise ValueError(f"{text} is too large a number.")
        return number


class _Number(_Text):
    kind = "number"

    def read(self, text: str) -> Any:
        try:
            value = parse_json(text)  # keeps 3 an int and 2.5 a float
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{text!r} is not a number.")
        return value


class _Choice(_Text):
    kind = "select"

    def read(self, text: str) -> Any:
        try:
            value = parse_json(text)
        except ValueError:
            value = text
        if value not in self.schema["enum"]:
            raise ValueError(f"Choose one of: {', '.join(map(str, self.schema['enum']))}.")
        return value

    def shown(self, value: Any) -> Any:
        return json.dumps(value)


class _Checkbox(_Value):
    kind = "checkbox"

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() not in ("", "false", "0", "off")
        return bool(value)

    def validate(self, value: Any) -> None:
        pass  # unticked is false, an answer like any other

    def shown(self, value: Any) -> Any:
        return bool(value)


class _Messages(_Value):
    """A message list: a plain sentence goes in as a person's message."""

    def read(self, text: str) -> Any:
        if text.strip()[0] not in "[{":
            return [{"role": "user", "content": text.strip()}]
        return parse_json(text)


def _field_for(prop: dict[str, Any], current: Any, *, messages: bool) -> type[_Value]:
    if messages:
        return _Messages
    if "enum" in prop:
        return _Choice
    type_ = prop.get("type")
    if type_ == "string":
        long = isinstance(current, str) and ("\n" in current or len(current) > 80)
        return _LongText if long or prop.get("maxLength", 0) > 200 else _Text
    return {"integer": _Integer, "number": _Number, "boolean": _Checkbox}.get(type_, _Value)


WIDGETS: dict[str, type[forms.Widget]] = {
    "text": forms.TextInput,
    "textarea": forms.Textarea,
    "integer": forms.NumberInput,
    "number": forms.NumberInput,
    "checkbox": forms.CheckboxInput,
    "select": forms.Select,
    "json": forms.Textarea,
}
WIDGET_ATTRS = {
    "textarea": {"rows": 4},
    "integer": {"step": "1"},
    "number": {"step": "any"},
    "json": {"rows": 6, "class": "json", "title": "JSON"},
}


class JSONBox(forms.Field):
    """A box of JSON text, read by the bounded parser. A problem is told with
    the box's label in front (`Arguments: Not valid JSON...`), so the same
    sentence reads right beside the box and in the API's answer. An empty box
    cleans to EMPTY; `shape` (dict, say) refuses other kinds of values."""

    kind = "json"

    def __init__(self, *, shape: type | None = None, shape_error: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "class": "json"}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.shape, self.shape_error = shape, shape_error

    def to_python(self, value: Any) -> Any:
        text = "" if value is None else str(value)
        if not text.strip():
            return EMPTY
        try:
            parsed = parse_json(text)
        except ValueError as exc:
            raise forms.ValidationError(f"{self.label}: {exc}", code="invalid") from None
        if self.shape is not None and not isinstance(parsed, self.shape):
            raise forms.ValidationError(self.shape_error, code="shape")
        return parsed

    def validate(self, value: Any) -> None:
        if value is EMPTY and self.required:
            raise forms.ValidationError(f"{self.label}: write it as JSON.", code="required")


def as_text(value: Any) -> str:
    """A value for a JSON box: what the API sent goes through the same parser
    and the same checks as what a person typed."""
    return json.dumps(value, ensure_ascii=False)


def messages_by_field(form: forms.Form) -> dict[str, str]:
    """The form's problems, one sentence per field ("__all__": the form's own)."""
    return {name: " ".join(errors) for name, errors in form.errors.items()}


class SchemaForm(forms.Form):
    """The properties of an object schema as a form, filled with `values`.
    `keys` adds properties the schema doesn't list (shown as JSON boxes);
    `message_keys` are message lists, which also take a plain sentence;
    `unchecked` keys are not checked against the schema here."""

    use_required_attribute = False

    def __init__(
        self,
        schema: Mapping[str, Any] | None,
        values: Mapping[str, Any] | None = None,
        *,
        prefix: str,
        keys: list[str] | None = None,
        message_keys: set[str] = frozenset(),
        unchecked: set[str] = frozenset(),
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(data=data, prefix=prefix)
        self.schema = dict(schema or {})
        root = self.schema
        properties = resolve(root, root).get("properties") or {}
        required = set(resolve(root, root).get("required") or [])
        self.defs = {"$defs": root["$defs"]} if "$defs" in root else {}
        # Keys whose values the graph checks itself (a reducer such as
        # add_messages takes more shapes than the schema of what it stores).
        self.unchecked = set(unchecked) | set(message_keys)
        values = values or {}
        for key in [*properties, *[k for k in keys or [] if k not in properties]]:
            prop, nullable = _base(properties.get(key, {}), root)
            current = values.get(key)
            kind = _field_for(prop, current, messages=key in message_keys)
            widget_kind = kind.kind
            widget = WIDGETS[widget_kind](attrs=dict(WIDGET_ATTRS.get(widget_kind, {})))
            if widget_kind == "select":
                blank = [] if key in required else [("", "—")]
                widget.choices = blank + [(json.dumps(c), str(c)) for c in prop["enum"]]
            field = self.fields[key] = kind(
                schema=prop,
                nullable=nullable,
                required=key in required,
                label=str(prop.get("title") or key.replace("_", " ").capitalize()),
                help_text=str(prop.get("description") or ""),
                widget=widget,
            )
            if current is not None:
                field.initial = field.shown(current)
            elif "default" in prop and widget_kind != "json":
                # (A default object or list is the graph's to fill in.)
                field.initial = field.shown(prop["default"])

    def clean(self) -> dict[str, Any]:
        """What the inputs hold, by key. Each value a person changed is
        checked against its property, and any problem told at its field (the
        fields already read each input's own type); what the form showed
        unchanged is the graph's own, not the person's to answer for."""
        cleaned = super().clean()
        for key, value in list(cleaned.items()):
            if key not in self.changed_data:
                continue
            field = self.fields[key]
            if value is EMPTY or (value is None and field.nullable) or key in self.unchecked:
                continue
            if not field.schema:
                continue
            try:
                check_value(value, {**field.schema, **self.defs}, field.label)
            except DecisionError as exc:
                self.add_error(key, str(exc).removeprefix(f"{field.label}: "))
        return cleaned

    @property
    def value(self) -> dict[str, Any]:
        """The values the form holds, by key; empty optional inputs are left
        out, or are None where the schema allows null and the input was sent."""
        out: dict[str, Any] = {}
        for key, value in self.cleaned_data.items():
            if value is EMPTY:
                if self.fields[key].nullable and self.add_prefix(key) in self.data:
                    out[key] = None
                continue
            out[key] = value
        return out

    def error_at(self, key: str, message: str) -> None:
        """A problem found later (by the graph's reducer, say), shown at its field."""
        self.add_error(key if key in self.fields else None, message)
