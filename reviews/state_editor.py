"""The state editor: a thread's state as a form, written back with update_state."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404
from langgraph.constants import END

from graphs.interrupts import DecisionError, check_value, json_safe
from graphs.models import Checkpoint, Thread
from reviews.graph_state import (
    config_for,
    graph_for,
    merged_keys,
    node_names,
    state_schema,
)
from reviews.schema_forms import EMPTY, JSONBox, SchemaForm, as_text


class StateEditForm(forms.Form):
    """What a person (or the API) asks of one edit: the new values (the
    state's fields, or raw JSON), the node to write as, whether to continue.
    Each problem is told at its field; the values' own fields are the nested
    `values_form`. Cleaned, it leaves `changes` and `key_errors` (a problem
    with a value, by its key, for the API to name the key)."""

    use_required_attribute = False

    checkpoint = forms.CharField(required=False, widget=forms.HiddenInput)
    raw = JSONBox(
        label="Raw JSON",
        help_text="An object of keys to new values, used instead of the fields above when filled.",
        shape=dict,
        shape_error="Raw JSON must be an object of state keys to new values.",
        widget=forms.Textarea(attrs={"rows": 6, "class": "json"}),
    )
    as_node = forms.ChoiceField(
        required=False,
        label="Write as node",
        help_text="The graph continues from the edges after this node.",
    )

    def __init__(self, edit: StateEdit, data=None, *, from_api: bool = False) -> None:
        super().__init__(data=data, initial={"checkpoint": edit.checkpoint_id})
        self.edit, self.from_api = edit, from_api
        self.fields["continue"] = forms.BooleanField(
            required=False, label="continue the run after saving"
        )
        self.fields["continue"].kind, self.fields["as_node"].kind = "checkbox", "select"
        self.initial |= {"as_node": edit.as_node, "continue": edit.continue_run}
        # No values with a node is a mark, not an edit: as "__end__" it
        # closes what the thread waits for (Agent Inbox's "ignore"). No values
        # at a past point is a bare fork, a new branch from there, as
        # LangGraph's update_state writes it.
        self.mark_only = (
            from_api
            and bool(data)
            and not data.get("raw")
            and bool(data.get("as_node") or edit.fork_from)
        )
        nodes = [*edit.nodes, END] if self.mark_only else edit.nodes
        self.fields["as_node"].choices = [("", "as LangGraph decides (the last node to run)")] + [
            (n, n) for n in nodes
        ]
        self.fields["as_node"].error_messages["invalid_choice"] = (
            f"'%(value)s' is not a node of {edit.thread.graph_name} "
            f"(its nodes: {', '.join(edit.nodes)})."
        )
        self.from_fields = self.is_bound and not from_api and not str(data.get("raw", "")).strip()
        self.values_form = edit.values_form(data if self.from_fields else None)
        self.changes: dict[str, Any] = {}
        self.key_errors: dict[str, str] = {}

    def clean_checkpoint(self) -> str:
        return self.cleaned_data["checkpoint"] or self.edit.checkpoint_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.from_fields:
            if not self.values_form.is_valid():
                self.add_error(None, "Some values need attention: see their fields.")
                return cleaned
            proposed = self.values_form.value
        elif "raw" in cleaned:
            proposed = {} if cleaned["raw"] is EMPTY else cleaned["raw"]
        else:
            return cleaned  # the raw box's own problem is told at it
        values = self.edit.values
        self.changes = {k: v for k, v in proposed.items() if values.get(k, None) != v}
        if not self.changes and not cleaned.get("continue") and not self.mark_only:
            self.add_error(
                None,
                "Nothing changed: every value given is the state's already."
                if self.from_api
                else "Nothing changed: edit a value, or tick “continue the run”.",
            )
        if not self.from_fields:
            for key, message in self._problems(self.changes).items():
                self.key_errors[key] = message
                self.add_error("raw", message)
        return cleaned

    def _problems(self, changes: dict[str, Any]) -> dict[str, str]:
        """What the schema says of each changed value, by key (the fields
        checked their own)."""
        edit, problems = self.edit, {}
        properties = (edit.schema or {}).get("properties")
        if properties is None:
            return {}
        defs = {"$defs": edit.schema["$defs"]} if "$defs" in edit.schema else {}
        for key, value in changes.items():
            if key not in properties:
                problems[key] = f"The state of {edit.thread.graph_name} has no key {key!r}."
            elif not (key in edit.merged and key == "messages"):  # LangGraph checks messages
                try:
                    check_value(value, {**properties[key], **defs}, key)
                except DecisionError as exc:
                    problems[key] = str(exc)
        return problems


class StateEdit:
    """One edit of a thread's state: the state it starts from, the form that
    asks for the edit, and, once checked, what to write (for
    reviews.actions.state.edit)."""

    def __init__(self, thread: Thread, graph, params) -> None:
        self.thread, self.graph = thread, graph
        # Editing a past checkpoint forks the thread from there.
        self.fork_from = str(params.get("from", ""))
        # Only a point of this thread's own timeline: LangGraph reads any other
        # id as an empty state and would write an orphan branch from it.
        if (
            self.fork_from
            and not Checkpoint.objects.filter(
                thread_id=thread.pk, checkpoint_ns="", checkpoint_id=self.fork_from
            ).exists()
        ):
            raise Http404(f"Checkpoint {self.fork_from!r} is not a point of this thread.")
        snapshot = graph.get_state(config_for(thread, self.fork_from or None))
        self.values: dict[str, Any] = json_safe(snapshot.values or {})
        self.next = list(snapshot.next)
        self.checkpoint_id = (
            (snapshot.config or {}).get("configurable", {}).get("checkpoint_id", "")
        )
        self.schema, self.schema_error = state_schema(graph)
        self.merged = merged_keys(graph)
        self.nodes = node_names(graph)
        # What a link asks for (a breakpoint's "edit this node's output").
        self.as_node = params.get("as_node", "") if params.get("as_node") in self.nodes else ""
        self.continue_run = params.get("continue") == "1"
        # The edit's form; `form` is its values' fields (what the page lists).
        self.edit_form = StateEditForm(self)
        self.refusal = ""
        # Set from the checked form.
        self.base_checkpoint = self.checkpoint_id
        self.changes: dict[str, Any] = {}
        self.mark_only = False

    @classmethod
    def open(cls, thread: Thread, params) -> StateEdit:
        return cls(thread, graph_for(thread), params)

    def values_form(self, data=None) -> SchemaForm:
        """The state as a form, its values filled in. add_messages takes more
        shapes than the schema of what it stores: LangGraph checks those."""
        form = SchemaForm(
            self.schema,
            self.values,
            prefix="s",
            keys=list(self.values),
            unchecked={"messages"} & self.merged,
            data=data,
        )
        for key, field in form.fields.items():
            field.merged = key in self.merged
        return form

    def bind(self, data) -> None:
        """The page's way in: the posted form."""
        self.edit_form = StateEditForm(self, data)

    def bind_values(
        self,
        values: dict[str, Any] | None,
        *,
        as_node: str = "",
        continue_run: bool = False,
        base_checkpoint: str = "",
    ) -> None:
        """The API's way in: values as JSON instead of the state's fields,
        through the same form and checks as the page's raw JSON. No values
        with an `as_node` writes a checkpoint as if that node ran (or, as
        "__end__", as if the graph ended)."""
        data = {
            "raw": as_text(values) if values else "",
            "as_node": as_node,
            "continue": continue_run,
            "checkpoint": base_checkpoint,
        }
        self.edit_form = StateEditForm(self, data, from_api=True)

    def is_valid(self) -> bool:
        if not self.edit_form.is_valid():
            return False
        cleaned = self.edit_form.cleaned_data
        self.as_node, self.continue_run = cleaned["as_node"], cleaned["continue"]
        self.base_checkpoint = cleaned["checkpoint"]
        self.changes, self.mark_only = self.edit_form.changes, self.edit_form.mark_only
        return True

    @property
    def errors(self) -> list[str]:
        """Every problem of the form as sentences, but those of a value named
        by its key (`field_errors`)."""
        form, told = self.edit_form, set(self.edit_form.key_errors.values())
        return [m for errors in form.errors.values() for m in errors if m not in told]

    @property
    def field_errors(self) -> dict[str, str]:
        """A problem with a value the API sent, by its key."""
        return self.edit_form.key_errors

    @property
    def form(self) -> SchemaForm:
        """The state's values as fields, filled in (or as posted)."""
        return self.edit_form.values_form
