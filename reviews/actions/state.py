"""Actions on a thread's state: edit it, or fork it from a past checkpoint
(LangGraph's update_state), through a checked reviews.state_editor.StateEdit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from graphs import written_calls
from graphs.interrupts import pending_requests
from graphs.models import Run, Thread
from reviews.access import check_state_write
from reviews.actions import ActionRefused, ValuesRefused
from reviews.actions.runs import calls_going_on, refuse_where_interrupt_waits, replay
from reviews.emit import emit
from reviews.graph_state import EDITED_AS_NODE, EDITED_BY, config_for, typed_values
from reviews.models import ReviewTask
from reviews.state_editor import StateEdit


@dataclass
class SaveResult:
    summary: str
    checkpoint_id: str
    run: Run | None = None


def edit(edit: StateEdit, *, user: Any, client_address: str | None = None) -> SaveResult:
    """Write a checked StateEdit as a new checkpoint, as if `as_node` wrote it,
    and queue the run's continuation if asked; from a past checkpoint this is
    a fork, a new branch of the thread. Refused, with nothing written, while a
    run is active or when the state changed after the form was made."""
    if edit.fork_from and edit.continue_run and not (edit.changes or edit.mark_only):
        # Continuing a past point unchanged is running again from there: a
        # replay, judged and audited as one (not a continuation of the latest).
        run = replay(edit.thread, edit.fork_from, user=user, client_address=client_address)
        return SaveResult(
            summary=f"Nothing changed; run {run.pk} runs the graph again from point "
            f"{edit.fork_from[-8:]}.",
            checkpoint_id=edit.fork_from,
            run=run,
        )
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=edit.thread.pk)
        ActionRefused.while_running(thread, "edit its state")
        latest = thread.latest_checkpoint_id()
        if not edit.fork_from and latest != edit.base_checkpoint:
            raise ActionRefused(
                f"The state changed since this form was made (now at checkpoint {latest}); "
                "reload the editor and make the edit again."
            )
        written = latest
        if edit.changes or edit.mark_only:
            metadata = {EDITED_BY: getattr(user, "username", ""), EDITED_AS_NODE: edit.as_node}
            try:
                config = edit.graph.update_state(
                    {**config_for(thread, edit.fork_from or None), "metadata": metadata},
                    typed_values(edit.graph, edit.changes) if edit.changes else None,
                    as_node=edit.as_node or None,
                )
            except ValueError as exc:  # a reducer refused a value (add_messages' coercion)
                raise ValuesRefused(f"The graph can't take these values: {exc}") from None
            written = config["configurable"]["checkpoint_id"]
        # Judged on the state as written (reducers applied), before any open
        # request is retired; a refusal undoes the write with the transaction.
        # The written point is the thread's latest: what it waits for is read
        # from the same state below.
        after = edit.graph.get_state(config_for(thread), subgraphs=True)
        check_state_write(
            user,
            thread,
            written_calls.written(edit.changes)
            + written_calls.last_turn(after.values)
            # Continuing also lets a subgraph stopped at a breakpoint go on.
            + (calls_going_on(after) if edit.continue_run else []),
        )
        if edit.continue_run:
            refuse_where_interrupt_waits(thread, after)
        stale = ReviewTask.objects.supersede(thread.pk, keep_checkpoint=written)
        run, created = None, []
        if edit.continue_run:
            run = Run.enqueue(
                graph_name=thread.graph_name,
                kind=Run.Kind.CONTINUE,
                thread_id=thread.pk,
                checkpoint_id=written,
                requested_by=user,
            )
        else:
            # Whatever the new checkpoint waits for is asked again, so
            # the thread never sits stopped with nothing in the queue.
            created = ReviewTask.objects.create_for(
                thread_id=thread.pk,
                graph_name=thread.graph_name,
                checkpoint_id=written,
                requests=pending_requests(after),
            )
        emit(
            "thread.forked" if edit.fork_from else "state.edited",
            actor=user,
            tasks=created,
            removed=stale,
            thread_id=thread.pk,
            graph_name=thread.graph_name,
            checkpoint_id=written,
            before={k: edit.values.get(k) for k in edit.changes},
            after={
                "values": edit.changes,
                "as_node": edit.as_node or None,
                **({"forked_from": edit.fork_from} if edit.fork_from else {}),
            },
            client_address=client_address,
        )
    # Points are named as the timeline names them: by their last 8 characters.
    keys = ", ".join(edit.changes) or "nothing"
    summary = f"Wrote {keys} as a new point {written[-8:]}" if edit.changes else "No edit"
    if edit.fork_from and edit.changes:
        summary += f", a branch from {edit.fork_from[-8:]}"
    if run is not None:
        summary += f"; run {run.pk} continues the graph"
    return SaveResult(summary=summary + ".", checkpoint_id=written, run=run)
