"""The state editor: a thread's state as a form, written back with update_state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import Http404
from langgraph.constants import END

from graphs.interrupts import DecisionError, check_value, json_safe, pending_requests
from graphs.models import Checkpoint, Run, Thread
from reviews.emit import emit
from reviews.graph_state import (
    EDITED_AS_NODE,
    EDITED_BY,
    config_for,
    graph_for,
    merged_keys,
    node_names,
    state_schema,
    typed_values,
)
from reviews.models import ActionRefused, ReviewTask
from reviews.schema_forms import SchemaField, fields_for, parse_fields, parse_json


@dataclass
class SaveResult:
    summary: str
    checkpoint_id: str
    run: Run | None = None


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
        merged = merged_keys(graph)
        self.fields: list[SchemaField] = fields_for(
            self.schema, self.values, prefix="s-", keys=list(self.values)
        )
        for item in self.fields:
            item.merged = item.key in merged
        self.nodes = node_names(graph)
        self.as_node = params.get("as_node", "") if params.get("as_node") in self.nodes else ""
        self.continue_run = params.get("continue") == "1"
        self.raw = ""
        self.base_checkpoint = self.checkpoint_id
        self.errors: list[str] = []
        self.refusal = ""
        self.changes: dict[str, Any] = {}
        # A write of no values as if `as_node` ran (LangGraph's
        # update_state(None, as_node=...)); as "__end__" it closes what the
        # thread waits for: Agent Inbox's "ignore".
        self.mark_only = False

    @classmethod
    def open(cls, thread: Thread, params) -> StateEdit:
        return cls(thread, graph_for(thread), params)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.error for f in self.fields)

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
            proposed = parse_fields(self.fields, data)
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
            merged = merged_keys(self.graph)
            for key, value in self.changes.items():
                if key not in properties:
                    self.errors.append(f"The state of {self.thread.graph_name} has no key {key!r}.")
                    continue
                if key in merged and key == "messages":
                    continue  # add_messages takes more shapes than it stores; LangGraph checks
                try:
                    check_value(value, {**properties[key], **defs}, key)
                except DecisionError as exc:
                    message = str(exc)
                    field = next((f for f in self.fields if f.key == key), None)
                    if field is not None and not self.raw.strip():
                        field.error = message
                    else:
                        self.errors.append(message)
        return not self.has_errors

    def save(self, *, user: Any, client_address: str | None) -> SaveResult:
        """Write the edit as a new checkpoint (and queue the run's continuation).
        Refused, with nothing written, while a run is active or when the state
        changed after the form was made."""
        with transaction.atomic():
            thread = Thread.objects.select_for_update().get(pk=self.thread.pk)
            ActionRefused.while_running(thread, "edit its state")
            latest = thread.latest_checkpoint_id()
            if not self.fork_from and latest != self.base_checkpoint:
                raise ActionRefused(
                    f"The state changed since this form was made (now at checkpoint {latest}); "
                    "reload the editor and make the edit again."
                )
            written = latest
            if self.changes or self.mark_only:
                metadata = {EDITED_BY: getattr(user, "username", ""), EDITED_AS_NODE: self.as_node}
                config = self.graph.update_state(
                    {**config_for(thread, self.fork_from or None), "metadata": metadata},
                    typed_values(self.graph, self.changes) if self.changes else None,
                    as_node=self.as_node or None,
                )
                written = config["configurable"]["checkpoint_id"]
            stale = ReviewTask.objects.supersede(thread.pk, keep_checkpoint=written)
            run, created = None, []
            if self.continue_run:
                run = Run.enqueue(
                    graph_name=thread.graph_name,
                    kind=Run.Kind.CONTINUE,
                    thread_id=thread.pk,
                    requested_by=user,
                )
            else:
                # Whatever the new checkpoint waits for is asked again, so
                # the thread never sits stopped with nothing in the queue.
                state = self.graph.get_state(config_for(thread), subgraphs=True)
                created = ReviewTask.objects.create_for(
                    thread_id=thread.pk,
                    graph_name=thread.graph_name,
                    checkpoint_id=written,
                    requests=pending_requests(state),
                )
            emit(
                "thread.forked" if self.fork_from else "state.edited",
                actor=user,
                tasks=created,
                removed=stale,
                thread_id=thread.pk,
                graph_name=thread.graph_name,
                checkpoint_id=written,
                before={k: self.values.get(k) for k in self.changes},
                after={
                    "values": self.changes,
                    "as_node": self.as_node or None,
                    **({"forked_from": self.fork_from} if self.fork_from else {}),
                },
                client_address=client_address,
            )
        keys = ", ".join(self.changes) or "nothing"
        summary = f"Wrote {keys} as a new checkpoint {written}" if self.changes else "No edit"
        if self.fork_from and self.changes:
            summary += f", a branch from {self.fork_from}"
        if run is not None:
            summary += f"; run {run.pk} continues the graph."
        return SaveResult(summary=summary + ".", checkpoint_id=written, run=run)
