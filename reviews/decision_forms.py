"""The decision form of one review task: what the reviewer may choose, what
they typed, and the decision it makes (in graphs.interrupts' vocabulary)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphs.interrupts import APPROVALS, WITH_MESSAGE, Shape
from reviews.models import ReviewTask
from reviews.schema_forms import SchemaForm, parse_json

LABELS = {
    "approve": "Approve",
    "accept": "Accept",
    "edit": "Edit, then run",
    "reject": "Reject, telling the model why",
    "respond": "Respond instead of running the tool",
    "response": "Respond instead of running the tool",
    "ignore": "Ignore",
    "answer": "Answer",
    "continue": "Continue",
}


@dataclass
class DecisionForm:
    task: ReviewTask
    type: str = ""
    name: str = ""
    args_text: str = ""
    message: str = ""
    value_text: str = ""
    # The answer to a response_schema, as a form of its own.
    answer_form: SchemaForm | None = None
    error: str = ""

    @property
    def prefix(self) -> str:
        return f"t{self.task.pk}-"

    @property
    def choices(self) -> list[tuple[str, str]]:
        task = self.task
        if task.shape == Shape.BREAKPOINT:
            return [("continue", LABELS["continue"])]
        if task.shape in (Shape.SCHEMA, Shape.JSON):
            return [("answer", LABELS["answer"])]
        return [(d, LABELS.get(d, d)) for d in task.allowed]

    @property
    def shows_tool(self) -> bool:
        return bool(self.task.tool_name)

    @property
    def can_edit(self) -> bool:
        return "edit" in self.task.allowed

    @property
    def can_message(self) -> bool:
        return any(d in WITH_MESSAGE for d in self.task.allowed)

    @property
    def edited(self) -> bool:
        """Whether the editor holds something other than the proposed call
        (the same JSON written another way is no change)."""
        if self.name != self.task.tool_name:
            return True
        try:
            return parse_json(self.args_text) != (self.task.args or {})
        except ValueError:
            return True

    @property
    def proposed_args_text(self) -> str:
        """What the model proposed, whatever the reviewer typed since."""
        return json.dumps(self.task.args or {}, indent=2, ensure_ascii=False)

    @classmethod
    def initial(cls, task: ReviewTask) -> DecisionForm:
        form = cls(task=task)
        form.type = form.choices[0][0] if form.choices else ""
        form.name = task.tool_name
        form.args_text = json.dumps(task.args, indent=2, ensure_ascii=False) if task.args else "{}"
        if task.shape == Shape.SCHEMA:
            form.answer_form = SchemaForm(task.response_schema, prefix=f"{form.prefix}f")
        return form

    @classmethod
    def bound(cls, task: ReviewTask, data: Mapping[str, Any]) -> DecisionForm:
        form = cls.initial(task)
        p = form.prefix
        form.type = str(data.get(f"{p}type", form.type))
        form.name = str(data.get(f"{p}name", form.name)).strip()
        form.args_text = str(data.get(f"{p}args", form.args_text))
        form.message = str(data.get(f"{p}message", "")).strip()
        form.value_text = str(data.get(f"{p}value", ""))
        if task.shape == Shape.SCHEMA:
            form.answer_form = SchemaForm(task.response_schema, prefix=f"{p}f", data=data)
        return form

    def decision(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """The decision the bound form makes, or None with `error` set."""
        if self.type not in dict(self.choices):
            self.error = f"Choose one of: {', '.join(label for _, label in self.choices)}."
            return None
        if self.type == "continue":
            return {"type": "continue"}
        if self.type == "answer":
            return self._answer(data)
        if self.type in APPROVALS and self.can_edit and self.edited:
            # Approving runs the call as proposed: an edit left in the editor
            # would be thrown away without a word.
            self.error = (
                "You changed the call but chose “"
                + LABELS[self.type]
                + "”: choose “Edit, then run” to run your edit, or undo the change"
                " to run the call as proposed."
            )
            return None
        decision: dict[str, Any] = {"type": self.type}
        if self.type == "edit":
            try:
                decision["args"] = parse_json(self.args_text)
            except ValueError as exc:
                self.error = f"Arguments: {exc}"
                return None
            decision["name"] = self.name
        if self.type in WITH_MESSAGE:
            if not self.message:
                self.error = "Write the message the model will read."
                return None
            decision["message"] = self.message
        return decision

    def _answer(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.value_text.strip() or self.answer_form is None:
            try:
                return {"type": "answer", "value": parse_json(self.value_text)}
            except ValueError as exc:
                self.error = f"Answer: {exc}"
                return None
        # Each field says what is wrong with it (its type, then the schema's
        # rules for it); the task checks the whole answer again on deciding.
        if not self.answer_form.is_valid():
            self.error = "Some fields need attention."
            return None
        return {"type": "answer", "value": self.answer_form.value}
