"""Values in pages as JSON, the way LangGraph's server sends them: never a
Python repr ({'a': 1}, Interrupt(value=...))."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template

from graphs.interrupts import json_safe

register = template.Library()


# Characters a reader does not see, or that reorder what they see: C1
# controls, bidirectional overrides and isolates, zero-width and other
# format characters, line and paragraph separators. In an agent's call an
# override could show `"amount": 2400` as something else; shown as JSON
# escapes they read as what they are, and the JSON still parses to the
# same value.
_HIDDEN = re.compile(
    "[\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def json_text(value: Any, *, indent: int | None = None, line: bool = False) -> str:
    """JSON for people to read: non-ASCII text as itself, never a hidden
    character (see _HIDDEN). `line`: on one line, for table cells."""
    text = json.dumps(
        value, indent=indent, ensure_ascii=False, separators=(", ", ": ") if line else None
    )
    return _HIDDEN.sub(lambda m: json.dumps(m[0])[1:-1], text)


@register.filter
def as_json(value: Any) -> str:
    """Indented JSON text (the template escapes it like any other text)."""
    return json_text(json_safe(value), indent=2)


@register.filter
def as_json_line(value: Any) -> str:
    """One line of JSON, for table cells."""
    return json_text(json_safe(value), line=True)


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
