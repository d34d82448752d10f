"""The state editor: a thread's state as a form, written back with update_state."""

from __future__ import annotations

from typing import Any

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
from reviews.schema_forms import SchemaForm, parse_json


class StateEdit:
    """One edit of a thread's latest state: the form, its checks, the write."""

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
        self.form = self._form()
        self.from_fields = False
        self.nodes = node_names(graph)
        self.as_node = params.get("as_node", "") if params.get("as_node") in self.nodes else ""
        self.continue_run = params.get("continue") == "1"
        self.raw = ""
        self.base_checkpoint = self.checkpoint_id
        self.errors: list[str] = []
        # What was wrong with a value the API sent, by its key.
        self.field_errors: dict[str, str] = {}
        self.refusal = ""
        self.changes: dict[str, Any] = {}
        # A write of no values as if `as_node` ran (LangGraph's
        # update_state(None, as_node=...)); as "__end__" it closes what the
        # thread waits for: Agent Inbox's "ignore".
        self.mark_only = False

    @classmethod
    def open(cls, thread: Thread, params) -> StateEdit:
        return cls(thread, graph_for(thread), params)

    def _form(self, data=None) -> SchemaForm:
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

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.field_errors or self.form.errors)

    def bind(self, data) -> None:
        self.as_node = str(data.get("as_node", ""))
        self.continue_run = "continue" in data
        self.raw = str(data.get("raw", ""))
        self.base_checkpoint = str(data.get("checkpoint", ""))
        if self.as_node and self.as_node not in self.nodes:
            self.errors.append(
                f"{self.as_node!r} is not a node of {self.thread.graph_name} "
                f"(its nodes: {', '.join(self.nodes)})."
            )
        if self.raw.strip():
            try:
                proposed = parse_json(self.raw)
            except ValueError as exc:
                self.errors.append(f"Raw JSON: {exc}")
                return
            if not isinstance(proposed, dict):
                self.errors.append("Raw JSON must be an object of state keys to new values.")
                return
        else:
            self.form, self.from_fields = self._form(data), True
            proposed = self.form.value if self.form.is_valid() else {}
        self.changes = {k: v for k, v in proposed.items() if self.values.get(k, None) != v}

    def bind_values(
        self,
        values: dict[str, Any] | None,
        *,
        as_node: str = "",
        continue_run: bool = False,
        base_checkpoint: str = "",
    ) -> None:
        """The API's way in: values as JSON instead of form fields. No values
        with an `as_node` writes a checkpoint as if that node ran (or, as
        "__end__", as if the graph ended)."""
        self.as_node, self.continue_run = as_node, continue_run
        self.base_checkpoint = base_checkpoint or self.checkpoint_id
        self.mark_only = not values and bool(as_node)
        nodes = [*self.nodes, END] if self.mark_only else self.nodes
        if as_node and as_node not in nodes:
            self.errors.append(
                f"{as_node!r} is not a node of {self.thread.graph_name} "
                f"(its nodes: {', '.join(self.nodes)})."
            )
        self.changes = {k: v for k, v in (values or {}).items() if self.values.get(k, None) != v}

    def is_valid(self) -> bool:
        if self.has_errors:
            return False
        if not self.changes and not self.continue_run and not self.mark_only:
            self.errors.append("Nothing changed: edit a value, or tick “continue the run”.")
            return False
        properties = (self.schema or {}).get("properties")
        if properties is not None:
            defs = {"$defs": self.schema.get("$defs", {})} if "$defs" in self.schema else {}
            for key, value in self.changes.items():
                if key not in properties:
                    self.errors.append(f"The state of {self.thread.graph_name} has no key {key!r}.")
                    continue
                if self.from_fields or (key in self.merged and key == "messages"):
                    continue  # the form's fields checked their own; LangGraph checks messages
                try:
                    check_value(value, {**properties[key], **defs}, key)
                except DecisionError as exc:
                    if self.raw.strip():
                        self.errors.append(str(exc))
                    else:  # the API's values: told by key
                        self.field_errors[key] = str(exc)
        return not self.has_errors
