"""What changed between two states: keys added, removed and changed, and
message lists compared message by message (by id, else by position)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MessageChange:
    kind: str  # added, removed, changed
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def label(self) -> str:
        message = self.new or self.old or {}
        content = message.get("content")
        calls = message.get("tool_calls") or []
        text = content if isinstance(content, str) else str(content)
        if calls:
            text = (
                (text + " " if text else "") + "→ " + ", ".join(c.get("name", "?") for c in calls)
            )
        return f"{message.get('type', 'message')}: {text}"


@dataclass
class KeyChange:
    key: str
    kind: str  # added, removed, changed
    old: Any = None
    new: Any = None
    messages: list[MessageChange] = field(default_factory=list)
    unchanged_messages: int = 0


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "type" in m and "content" in m for m in value)
    )


def _message_key(message: dict[str, Any], index: int) -> str:
    return str(message.get("id") or f"#{index}")


def diff_messages(old: list[dict], new: list[dict]) -> tuple[list[MessageChange], int]:
    before = {_message_key(m, i): m for i, m in enumerate(old)}
    after = {_message_key(m, i): m for i, m in enumerate(new)}
    changes: list[MessageChange] = []
    same = 0
    for key, message in after.items():
        if key not in before:
            changes.append(MessageChange("added", None, message))
        elif before[key] != message:
            changes.append(MessageChange("changed", before[key], message))
        else:
            same += 1
    changes += [MessageChange("removed", m, None) for k, m in before.items() if k not in after]
    return changes, same


def diff_states(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[KeyChange]:
    old, new = old or {}, new or {}
    changes: list[KeyChange] = []
    for key in [*new, *[k for k in old if k not in new]]:
        if key not in old:
            changes.append(KeyChange(key, "added", new=new[key]))
        elif key not in new:
            changes.append(KeyChange(key, "removed", old=old[key]))
        elif old[key] != new[key]:
            change = KeyChange(key, "changed", old=old[key], new=new[key])
            if _is_messages(old[key]) or _is_messages(new[key]):
                change.messages, change.unchanged_messages = diff_messages(
                    old[key] or [], new[key] or []
                )
            changes.append(change)
    return changes
