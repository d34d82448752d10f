"""Values in pages as JSON, the way LangGraph's server sends them: never a
Python repr ({'a': 1}, Interrupt(value=...))."""

from __future__ import annotations

import json
from typing import Any

from django import template

from graphs.interrupts import json_safe

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Indented JSON text (the template escapes it like any other text)."""
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False)


@register.filter
def as_json_line(value: Any) -> str:
    """One line of JSON, for table cells."""
    return json.dumps(json_safe(value), ensure_ascii=False, separators=(", ", ": "))


@register.filter
def plain_fields(value: Any) -> list[tuple[str, str]]:
    """A question's payload that is a flat object of text and numbers (as
    `interrupt({"question": ..., "draft": ...})` sends) as labelled lines to
    read; anything nested gets [] and is shown as JSON."""
    if not isinstance(value, dict) or not value:
        return []
    if not all(isinstance(v, str | int | float | bool) or v is None for v in value.values()):
        return []
    return [
        (str(key).replace("_", " ").capitalize(), v if isinstance(v, str) else json.dumps(v))
        for key, v in value.items()
    ]
