"""The decision form of one review task: what the reviewer may choose, what
they typed, and the decision it makes (in graphs.interrupts' vocabulary)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from graphs.interrupts import APPROVALS, WITH_MESSAGE, Shape
from reviews.models import ReviewTask
from reviews.schema_forms import EMPTY, JSONBox, SchemaForm, as_text, parse_json
from reviews.templatetags.as_json import json_text

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


class DecisionForm(forms.Form):
    """One call's decision: its type (the request's own vocabulary), and the
    edited call, the message or the answer that type needs. Each problem is
    told at its field. The API binds the same form with a decision in JSON
    (`api_data`), so a refusal says the same on the page and in its 422.
    Cleaned, `decision` is what to record; reviews.actions.tasks.decide
    checks it again against the request, and `refuse` shows its answer."""

    use_required_attribute = False

    type = forms.ChoiceField(label="Decision", widget=forms.RadioSelect)
    name = forms.CharField(required=False, label="Tool name")
    args = JSONBox(
        label="Arguments",
        help_text="JSON: numbers stay numbers.",
        widget=forms.Textarea(attrs={"rows": 8, "class": "json"}),
    )
    message = forms.CharField(
        required=False,
        label="Message to the model",
        help_text="What the model reads when you reject the call or respond instead.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    value = JSONBox(
        label="Answer",
        help_text="Any JSON: a string needs quotes.",
        widget=forms.Textarea(attrs={"rows": 4, "class": "json"}),
    )

    def __init__(
        self, task: ReviewTask, data: Mapping[str, Any] | None = None, *, from_api: bool = False
    ) -> None:
        self.task, self.from_api = task, from_api
        prefix = f"t{task.pk}"
        choices = self.choices
        if data is not None and not from_api and f"{prefix}-type" not in data and len(choices) == 1:
            # Nothing to choose (an answer, a breakpoint's continue): the page may omit it.
            data = data.copy()
            data[f"{prefix}-type"] = choices[0][0]
        super().__init__(
            data=data,
            prefix=prefix,
            initial={
                "type": choices[0][0] if choices else "",
                "name": task.tool_name,
                "args": self.proposed_args_text if task.args else "{}",
            },
        )
        allowed = ", ".join(value for value, _ in choices)
        type_field = self.fields["type"]
        type_field.choices = choices
        type_field.error_messages |= {
            "required": f"Choose a decision (allowed: {allowed}).",
            "invalid_choice": f"'%(value)s' is not allowed here (allowed: {allowed}).",
        }
        if task.shape == Shape.SCHEMA:
            self.fields["value"].help_text = "Used instead of the fields above when filled."
        # The answer to a response_schema, as a form of its own.
        self.answer_form = (
            SchemaForm(task.response_schema, prefix=f"{prefix}-f", data=data)
            if task.shape == Shape.SCHEMA and not from_api
            else None
        )
        self.decision: dict[str, Any] | None = None

    @staticmethod
    def api_data(task: ReviewTask, decision: Mapping[str, Any]) -> dict[str, Any]:
        """A decision in the API's JSON as the form's data: its arguments and
        answer as the JSON boxes' text, read as what a person types."""
        data = {"type": decision.get("type"), "name": decision.get("name") or ""}
        if "args" in decision:
            data["args"] = as_text(decision["args"])
        if "message" in decision:
            data["message"] = decision["message"]
        if "value" in decision:
            data["value"] = as_text(decision["value"])
        return {f"t{task.pk}-{key}": value for key, value in data.items() if value is not None}

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
        return bool(self.message_types)

    @property
    def message_types(self) -> list[str]:
        """The choices the model reads a message with: the page shows the box
        only while one of them is chosen."""
        return [d for d in self.task.allowed if d in WITH_MESSAGE]

    @property
    def chosen(self) -> str:
        """The type the form shows chosen (as posted, or the first)."""
        return str(self["type"].value() or "")

    @property
    def proposed_args_text(self) -> str:
        """What the model proposed, whatever the reviewer typed since."""
        return json_text(self.task.args or {}, indent=2)

    def _edited(self, name: str) -> bool:
        """Whether the editor holds something other than the proposed call
        (the same JSON written another way is no change)."""
        if name != self.task.tool_name:
            return True
        args = self["args"].value()
        if args is None:  # not sent: the call as proposed
            return False
        try:
            return parse_json(str(args)) != (self.task.args or {})
        except ValueError:
            return True

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip() or self.task.tool_name

    def clean_message(self) -> str:
        return self.cleaned_data["message"].strip()

    def clean_args(self) -> Any:
        if self.add_prefix("args") not in self.data:  # not sent: the call as proposed
            return self.task.args or {}
        return self.cleaned_data["args"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        type_ = cleaned.get("type")
        if type_ != "edit":
            # Only an edit reads the arguments; a slip in them refuses nothing else.
            self._errors.pop("args", None)
        if type_ != "answer":
            self._errors.pop("value", None)
        if not type_:
            return cleaned  # told at the choice
        if type_ == "continue":
            decision: dict[str, Any] | None = {"type": "continue"}
        elif type_ == "answer":
            decision = self._answer(cleaned)
        else:
            decision = self._tool_decision(type_, cleaned)
        if not self._errors:
            self.decision = decision
        return cleaned

    def _tool_decision(self, type_: str, cleaned: dict[str, Any]) -> dict[str, Any] | None:
        if type_ in APPROVALS and self.can_edit and self._edited(cleaned.get("name", "")):
            # Approving runs the call as proposed: an edit left in the editor
            # would be thrown away without a word.
            self.add_error(
                "type",
                "You changed the call but chose “"
                + LABELS[type_]
                + "”: choose “Edit, then run” to run your edit, or undo the change"
                " to run the call as proposed.",
            )
            return None
        decision: dict[str, Any] = {"type": type_}
        if type_ == "edit":
            if "args" not in cleaned:
                return None  # told at the box
            if not isinstance(cleaned["args"], dict):
                self.add_error("args", "Arguments: an edit needs them as a JSON object.")
                return None
            decision |= {"args": cleaned["args"], "name": cleaned["name"]}
        if type_ in WITH_MESSAGE:
            if not cleaned.get("message"):
                self.add_error("message", "Write the message the model will read.")
                return None
            decision["message"] = cleaned["message"]
        return decision

    def _answer(self, cleaned: dict[str, Any]) -> dict[str, Any] | None:
        if "value" not in cleaned:
            return None  # told at the box
        if cleaned["value"] is not EMPTY:
            return {"type": "answer", "value": cleaned["value"]}
        if self.answer_form is None:
            self.add_error("value", "Answer: write it as JSON (a string needs quotes).")
            return None
        # Each field says what is wrong with it (its type, then the schema's
        # rules for it); the task checks the whole answer again on deciding.
        if not self.answer_form.is_valid():
            self.add_error(None, "Some fields need attention.")
            return None
        return {"type": "answer", "value": self.answer_form.value}

    def refuse(self, message: str) -> None:
        """Show what the task said of the decision at the field it concerns."""
        chosen = self.cleaned_data.get("type") if hasattr(self, "cleaned_data") else None
        if chosen == "edit":
            field = "args"
        elif chosen == "answer" and self["value"].value():
            field = "value"
        else:
            field = None
        self.add_error(field, message)
        self.decision = None
