"""Actions on runs: start, cancel, retry, and replay from a past checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from graphs import written_calls
from graphs.interrupts import Shape, pending_requests
from graphs.models import Checkpoint, Run, Thread
from reviews.access import ADMINISTER, can_graph, check_calls, check_shaping, check_state_write
from reviews.actions import ActionRefused, ValuesRefused
from reviews.emit import emit
from reviews.graph_state import GraphUnavailable, config_for, graph_for
from reviews.models import ReviewTask


def start(
    graph_name: str,
    input: Any,
    *,
    user: Any,
    client_address: str | None = None,
    thread_id: str | None = None,
    kind: str = Run.Kind.START,
    via: str = "",
    thread: Thread | None = None,
    **fields: Any,
) -> Run:
    """Queue a run of the graph: a start with `input` (checked by the caller
    against the graph's input schema) on a new thread or on `thread_id`, a
    command (`input` holds its update and goto) or a continue. `fields` go to
    the run (title, interrupt_before/after, config, context, metadata...)."""
    if not fields.get("assistant_id"):
        # An assistant's config was judged when it was made (or changed, by
        # the graph's administrators): the Agent Server API judges the
        # request's own part (agent_server.runs.create).
        check_shaping(user, graph_name, fields.get("config"))
    if kind == Run.Kind.COMMAND and thread_id:
        # Judged on the state where it is asked: it runs only from there.
        fields["checkpoint_id"] = _check_command(
            user, thread or Thread.objects.get(pk=thread_id), input or {}
        )
    elif kind == Run.Kind.CONTINUE and thread_id and not fields.get("checkpoint_id"):
        fields["checkpoint_id"] = check_going_on(user, thread or Thread.objects.get(pk=thread_id))
    elif kind == Run.Kind.START and input is not None:
        # Input can hold an AI message of its own, for a later write to run.
        check_calls(user, graph_name, written_calls.written(input))
    # Joins the caller's transaction where there is one, without a savepoint
    # (two more round trips on PostgreSQL): a failure undoes the caller's too.
    with transaction.atomic(savepoint=False):
        run = Run.enqueue(
            graph_name=graph_name,
            kind=kind,
            thread_id=thread_id,
            payload=input,
            requested_by=user,
            thread=thread,
            **fields,
        )
        emit(
            "run.started",
            actor=user,
            run=run,
            after={
                "input": input if kind == Run.Kind.START else None,
                **({"command": input} if kind == Run.Kind.COMMAND else {}),
                "interrupt_before": run.interrupt_before,
                "interrupt_after": run.interrupt_after,
                **({"config": run.config} if run.config else {}),
                **({"context": run.context} if run.context is not None else {}),
                **({"via": via} if via else {}),
            },
            client_address=client_address,
        )
    return run


def check_going_on(
    user: Any,
    thread: Thread,
    checkpoint_id: str | None = None,
    *,
    approved: Sequence[dict[str, Any]] = (),
) -> str:
    """A run that goes on from a point with no new input (a continue, a
    replay) lets the graph run the calls waiting there, a stop's that no
    task asks yet included (one a cancelled run left, or one a run has just
    reached): judged as if its asker approved each, but for those its
    reviewers `approved` already. Returns the point's id
    (the thread's newest, Thread.newest_checkpoint_id, unless told)."""
    # Read before the state judged: a checkpoint written in between makes
    # the run refused when it comes to run, never judged on an older state.
    point = checkpoint_id or thread.newest_checkpoint_id()
    if not point:
        raise ActionRefused(f"Thread {thread.pk} has not started yet: nothing to go on from.")
    try:
        state = graph_for(thread).get_state(config_for(thread, checkpoint_id), subgraphs=True)
    except GraphUnavailable as exc:
        raise ActionRefused(str(exc)) from None
    if checkpoint_id is None or checkpoint_id == thread.latest_checkpoint_id():
        refuse_where_interrupt_waits(thread, state)
    calls = calls_going_on(state)
    check_calls(user, thread.graph_name, [c for c in calls if c not in approved])
    return point


def refuse_where_interrupt_waits(thread: Thread, state) -> None:
    """Going on from where interrupt() waits, without an answer, runs the
    node again: what it did before asking is done a second time, and an
    answer LangGraph still holds there would be read unreviewed. (From a
    past point it is a replay: LangGraph asks again on a branch of its own.)"""
    if state.interrupts:
        raise ActionRefused(
            f"Thread {thread.pk} waits for an answer to its interrupt: decide its review "
            "task (or send command.resume); going on without one would only run the node "
            "again up to the same question."
        )


def calls_going_on(state) -> list[dict[str, Any]]:
    """The calls going on from a stopped state (a `subgraphs=True` snapshot)
    lets the graph run: the last AI message's, and those of every graph in
    it stopped at a breakpoint. Where interrupt() waits, going on asks
    again: the calls it guards don't run."""
    if not state.next:
        return []
    calls = [] if state.interrupts else written_calls.last_turn(state.values)
    return calls + [
        {"name": request.tool_name, "args": request.args}
        for request in pending_requests(state)
        if request.shape == Shape.BREAKPOINT and request.tool_name
    ]


def _check_command(user: Any, thread: Thread, command: dict[str, Any]) -> str:
    """A command's update is a state write, and its goto moves the graph past
    its own edges: judged as an edit would be (access.check_state_write), on
    the calls it writes and on every call in the thread's state, since it
    may remove the messages after any of them. Returns the checkpoint it was
    judged at."""
    point = thread.newest_checkpoint_id()  # before the state judged, as check_going_on
    update = command.get("update")
    keys = list(update) if isinstance(update, dict) else [key for key, _ in _pairs(update)]
    own = sorted(str(k) for k in keys if str(k).startswith(("__", "branch:")))
    if own:
        # LangGraph's own channels: "__resume__" would answer an interrupt
        # unreviewed, "branch:to:NODE" is a goto by another name.
        raise ValuesRefused(
            f"A command's update writes the graph's state, not LangGraph's own channels "
            f"({', '.join(own)})."
        )
    goto = bool(command.get("goto"))
    if goto and user is not None and not can_graph(user, ADMINISTER, thread.graph_name):
        raise PermissionDenied(
            "goto jumps past the graph's own edges, and past any review they lead to: "
            f"it needs the right to administer {thread.graph_name} graphs."
        )
    state = graph_for(thread).get_state(config_for(thread))
    check_state_write(
        user, thread, written_calls.written(command) + written_calls.written(state.values)
    )
    return point


def _pairs(update: Any) -> list[tuple[Any, Any]]:
    """The [key, value] pairs of an update given as a list (LangGraph writes
    each to its channel as it stands)."""
    if not isinstance(update, list | tuple):
        return []
    return [tuple(p) for p in update if isinstance(p, list | tuple) and len(p) == 2]


def cancel(run: Run, *, user: Any, client_address: str | None = None) -> Run:
    """Stop a queued or running run (see Run.cancel), audited; refused
    (ActionRefused) once it has stopped.

    A queued resume never ran, so the thread still waits where its
    reviewers decided: their review is given back (the tasks open again,
    approvals towards a quorum included) instead of being lost with the run."""
    reopened: list[ReviewTask] = []
    with transaction.atomic():
        before = run.cancel(by=user)
        if before is None:
            run.refresh_from_db()
            raise ActionRefused(f"Run {run.pk} has already stopped: it is {run.status}.")
        if before == Run.Status.QUEUED:
            reopened = ReviewTask.objects.reopen(run)
        emit(
            "run.cancelled",
            actor=user,
            tasks=reopened,
            run=run,
            before={"status": before},
            after={
                "status": run.status,
                **({"reopened": [t.pk for t in reopened]} if reopened else {}),
            },
            client_address=client_address,
        )
    return run


def retry(run: Run, *, user: Any, client_address: str | None = None) -> Run:
    """Queue the thread's newest run again after it failed; returns the new run.

    A run that wrote checkpoints continues from the thread's latest one (the
    step that failed runs again, with any resume value already saved there);
    a start that failed before its first checkpoint is sent its input again.
    Refused (ActionRefused) for a run that did not fail, or that a newer run
    of the thread has followed.
    """
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=run.thread_id)
        run.refresh_from_db()
        if run.status != Run.Status.FAILED:
            raise ActionRefused(f"Run {run.pk} is {run.phase}; only a failed run is retried.")
        waiting = ReviewTask.objects.pending().filter(thread_id=thread.pk).first()
        if waiting is not None:
            # A refused answer opened its review again: retrying would only
            # ask the same question, and never resends the refused answer.
            raise ActionRefused(
                f"The thread waits for review (task {waiting.pk}); decide it instead of retrying."
            )
        newest = thread.runs.order_by("-pk").first()
        if newest.pk != run.pk:
            raise ActionRefused(
                f"Run {newest.pk} came after run {run.pk}: retry the thread's newest run."
            )
        started = Checkpoint.objects.filter(thread_id=thread.pk).exists()
        if started:
            # Going on again runs what the failed run would have: the calls
            # its reviewers approved, and any it reached after them, which
            # no one has (a run may fail just past a model's new calls).
            check_going_on(user, thread, approved=_approved_by_reviewers(run))
        again = Run.enqueue(
            graph_name=run.graph_name,
            kind=Run.Kind.CONTINUE if started else run.kind,
            thread_id=thread.pk,
            payload=None if started else run.payload,
            checkpoint_id=thread.newest_checkpoint_id() if started else run.checkpoint_id,
            interrupt_before=run.interrupt_before,
            interrupt_after=run.interrupt_after,
            requested_by=user,
        )
        emit(
            "run.retried",
            actor=user,
            run=again,
            before={"run": run.pk, "error": run.error},
            after={"run": again.pk, "kind": again.kind},
            client_address=client_address,
        )
    return again


def _approved_by_reviewers(run: Run) -> list[dict[str, Any]]:
    """The calls the decisions a run carried let run, as decided."""
    approved = []
    for task in ReviewTask.objects.filter(resumed_by=run, status=ReviewTask.Status.DECIDED):
        decision = task.decision or {}
        if decision.get("type") == "edit":
            approved.append(
                {"name": decision.get("name") or task.tool_name, "args": decision.get("args")}
            )
        elif task.tool_name:
            approved.append({"name": task.tool_name, "args": task.args})
    return approved


def replay(
    thread: Thread,
    checkpoint_id: str,
    *,
    user: Any,
    client_address: str | None = None,
    **fields: Any,
) -> Run:
    """Queue a run that re-executes the graph from a past root checkpoint; the
    old branch stays. Refused (ActionRefused) for a checkpoint that isn't
    the thread's, or while a run is active on it."""
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread.pk)
        if not Checkpoint.objects.filter(
            thread_id=thread.pk, checkpoint_ns="", checkpoint_id=checkpoint_id
        ).exists():
            raise ActionRefused(f"Checkpoint {checkpoint_id!r} is not a point of this thread.")
        ActionRefused.while_running(locked, "replay")
        check_going_on(user, thread, checkpoint_id)
        run = Run.enqueue(
            graph_name=thread.graph_name,
            kind=Run.Kind.REPLAY,
            thread_id=thread.pk,
            checkpoint_id=checkpoint_id,
            requested_by=user,
            **fields,
        )
        emit(
            "thread.replayed",
            actor=user,
            checkpoint_id=checkpoint_id,
            run=run,
            client_address=client_address,
        )
    return run


def delete(run: Run, *, user: Any, client_address: str | None = None) -> None:
    """Remove a run from its thread's runs (its checkpoints stay), cancelling
    it first if it is queued or running."""
    with transaction.atomic():
        if run.status in Run.ACTIVE:
            cancel(run, user=user, client_address=client_address)
        emit(
            "run.deleted",
            actor=user,
            run=run,
            before={"status": run.status, "kind": run.kind},
            client_address=client_address,
        )
        Run.objects.filter(pk=run.pk).delete()
