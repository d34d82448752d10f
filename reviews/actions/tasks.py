"""Actions on review tasks: claim, release, assign, decide (with the quorum
an approval may need) and the resume a last decision queues. Each checks,
takes its lock, writes, then emits (reviews.emit) inside its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils import timezone

from graphs.interrupts import (
    DecisionError,
    Shape,
    check_value,
    quick_decision,
    resume_value,
    validate_decision,
)
from graphs.models import Run, Thread
from reviews import mail
from reviews.actions import ActionRefused, DecisionsInvalid
from reviews.emit import emit
from reviews.graph_state import GraphUnavailable, graph_for, module_tool_schema, tool_args_schemas
from reviews.models import Approval, ReviewRule, ReviewTask
from reviews.templatetags.as_json import json_text

CLAIM_FOR = timedelta(minutes=15)
# An assignment holds the claim for the assignee's working day.
ASSIGNED_FOR = timedelta(hours=8)


def describe_decision(decision: dict[str, Any]) -> str:
    """A decision in words, for messages: "edit to refund(amount=9999)"."""
    type_ = decision.get("type", "")
    if type_ == "edit":
        args = decision.get("args") or {}
        shown = ", ".join(f"{json_text(k)[1:-1]}={json_text(v)}" for k, v in args.items())
        return f"edit to {decision.get('name', '')}({shown})"
    if decision.get("message"):
        return f"{type_}: “{decision['message']}”"
    return str(type_)


def _tool_args_schemas(task: ReviewTask) -> dict[str, dict[str, Any]]:
    """The argument schemas of the tools the task's graph runs ({} when the
    graph can't be loaded here: edits are then checked as JSON only)."""
    try:
        return tool_args_schemas(graph_for(task.thread))
    except GraphUnavailable:
        return {}


def check_rename(
    task: ReviewTask, name: str, tools: dict[str, Any], turn: list[ReviewTask]
) -> None:
    """An edit may call another tool only where the payload lets the reviewer
    edit, the graph has that tool (when its tools can be read), and the
    turn doesn't propose that tool with edits forbidden."""
    if name == task.tool_name:
        return
    if tools and name not in tools:
        raise DecisionError(
            f"the graph has no tool {name!r} (it has {', '.join(sorted(tools))}); "
            "an edit may only call one of its tools"
        )
    for other in turn:
        if other.tool_name == name and "edit" not in other.allowed:
            raise DecisionError(f"{name} calls may not be edited here, so nothing may become one")


def claim(tasks: list[ReviewTask], *, user: Any, client_address: str | None = None) -> None:
    """Claim the pending actions of one interrupt for a while. Two claims at
    once: the conditional UPDATE lets one win; the other is refused with
    who holds it. Claiming again extends one's own claim."""
    now = timezone.now()
    with transaction.atomic():
        free = ReviewTask.objects.filter(
            pk__in=[t.pk for t in tasks], status=ReviewTask.Status.PENDING
        ).filter(
            models.Q(claimed_by__isnull=True)
            | models.Q(claim_expires_at__lte=now)
            | models.Q(claimed_by=user)
        )
        won = free.update(claimed_by=user, claim_expires_at=now + CLAIM_FOR)
        if won != len(tasks):
            held = ReviewTask.objects.select_related("claimed_by", "decided_by").filter(
                pk__in=[t.pk for t in tasks]
            )
            for task in held:
                if not task.is_pending:
                    raise ActionRefused(task.why_not_pending())
                if task.held_by_other(user):
                    raise ActionRefused(f"Already {task.claim_text}.")
            raise ActionRefused("This task can't be claimed now; reload and try again.")
        emit(
            "task.claimed",
            actor=user,
            task=tasks[0],
            tasks=tasks,
            after={"tasks": [t.pk for t in tasks], "until": (now + CLAIM_FOR).isoformat()},
            client_address=client_address,
        )


def assign(
    tasks: list[ReviewTask],
    *,
    by: Any,
    to_user: Any = None,
    to_group: Group | None = None,
    client_address: str | None = None,
) -> None:
    """An administrator hands the tasks of one interrupt to a person (who
    then holds the claim) or a group; audited, and mailed to them."""
    now = timezone.now()
    fields: dict[str, Any] = {"assigned_to": to_user, "assigned_group": to_group}
    if to_user is not None:
        fields |= {"claimed_by": to_user, "claim_expires_at": now + ASSIGNED_FOR}
    with transaction.atomic():
        changed = ReviewTask.objects.filter(
            pk__in=[t.pk for t in tasks], status=ReviewTask.Status.PENDING
        ).update(**fields)
        if not changed:
            raise ActionRefused(tasks[0].why_not_pending())
        emit(
            "task.assigned",
            actor=by,
            task=tasks[0],
            tasks=tasks,
            after={
                "tasks": [t.pk for t in tasks],
                "to_user": to_user.get_username() if to_user else None,
                "to_group": to_group.name if to_group else None,
            },
            client_address=client_address,
        )
        mail.assigned(tasks[0], to_user=to_user, to_group=to_group)


def release(tasks: list[ReviewTask], *, user: Any, client_address: str | None = None) -> int:
    """Give back one's own claim on these tasks; how many it held."""
    with transaction.atomic():
        released = list(
            ReviewTask.objects.filter(pk__in=[t.pk for t in tasks], claimed_by=user).values_list(
                "pk", flat=True
            )
        )
        ReviewTask.objects.filter(pk__in=released, claimed_by=user).update(
            claimed_by=None, claim_expires_at=None
        )
        if released:
            emit(
                "task.released",
                actor=user,
                task=tasks[0],
                tasks=[t for t in tasks if t.pk in released],
                after={"tasks": released},
                client_address=client_address,
            )
    return len(released)


def decide(
    tasks: list[ReviewTask],
    decisions: Mapping[int, dict[str, Any]],
    *,
    user: Any,
    client_address: str | None = None,
) -> Run | None:
    """Record decisions on the tasks of one interrupt, all or none.

    Checked before anything is written: every decision against its
    request (DecisionsInvalid), then, under the thread's lock, that the
    thread still waits at the tasks' checkpoint and that nobody decided
    them first (ActionRefused). Each decision writes an AuditEvent in the
    same transaction. When it was the last decision the checkpoint waited
    for, the resume run is queued, once. Returns that run, or None.
    """
    if not tasks:
        raise ActionRefused("There is nothing to decide.")
    errors: dict[int, str] = {}
    normalised: dict[int, dict[str, Any]] = {}
    args_schemas: dict[str, dict[str, Any]] | None = None
    for task in tasks:
        try:
            normalised[task.pk] = validate_decision(task.as_request(), decisions.get(task.pk) or {})
        except DecisionError as exc:
            errors[task.pk] = str(exc)
            continue
        edit = normalised[task.pk]
        if edit["type"] != "edit":
            continue
        if args_schemas is None:  # read from the graph once, only when editing
            args_schemas = _tool_args_schemas(task)
        try:
            check_rename(task, edit["name"], args_schemas, tasks)
            schema = args_schemas.get(edit["name"]) or module_tool_schema(
                task.graph_name, edit["name"]
            )
            if schema:
                check_value(edit["args"], schema, f"the arguments of {edit['name']}")
        except DecisionError as exc:
            errors[task.pk] = str(exc)
    if errors:
        raise DecisionsInvalid(errors)
    # Who may decide each call, as decided (an edit as if proposed): asked
    # here, so every route that decides is held to it.
    from reviews.access import check_decisions

    edited = check_decisions(user, tasks, normalised)

    first = tasks[0]
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=first.thread_id)
        # Under the lock: someone who decided first is the reason to give,
        # even when their resume run is now active on the thread.
        taken = ReviewTask.objects.filter(pk__in=[t.pk for t in tasks]).exclude(
            status=ReviewTask.Status.PENDING
        )
        if taken:
            raise ActionRefused(taken[0].why_not_pending())
        held = [
            t
            for t in ReviewTask.objects.select_related("claimed_by").filter(
                pk__in=[t.pk for t in tasks]
            )
            if user is not None and t.held_by_other(user)  # the system overrides claims
        ]
        if held:
            raise ActionRefused(f"This is {held[0].claim_text}; wait for the claim to end.")
        _refuse_if_moved_on(first, thread)
        now = timezone.now()
        for task in tasks:
            # The rule of the call as decided, when an edit took it under another.
            edit_rule = edited.get(task.pk)
            if edit_rule is not None and edit_rule.pk == task.rule_id:
                edit_rule = None
            if task.needs_quorum(normalised[task.pk]) and not _approve(
                task, user, normalised[task.pk], edit_rule, client_address=client_address
            ):
                continue  # an approval recorded; more reviewers must agree
            won = ReviewTask.objects.filter(pk=task.pk, status=ReviewTask.Status.PENDING).update(
                status=ReviewTask.Status.DECIDED,
                decided_by=user,
                decided_at=now,
                decision=normalised[task.pk],
                refused_with="",
                edit_rule=edit_rule,
            )
            if not won:
                # Rolls back this call's other decisions too.
                raise ActionRefused(task.why_not_pending())
            task.status, task.decided_by, task.decided_at = ReviewTask.Status.DECIDED, user, now
            task.decision = normalised[task.pk]
            emit(
                "task.decided",
                actor=user,
                task=task,
                before={"tool": task.tool_name, "args": task.args}
                if task.tool_name
                else task.payload,
                after=normalised[task.pk],
                client_address=client_address,
            )
        return resume_if_complete(first, user=user)


def escalate(task: ReviewTask, now: datetime) -> bool:
    """Apply the rule of a task that ran out of time, once: reject it with
    the rule's message, reassign it to the escalation group, or only mail
    its reviewers, as the rule says; the system is the actor. False when
    another worker got there first."""
    if not ReviewTask.objects.filter(
        pk=task.pk, status=ReviewTask.Status.PENDING, escalated_at__isnull=True
    ).update(escalated_at=now):
        return False
    rule = task.rule
    policy = outcome = rule.on_expiry if rule else ReviewRule.OnExpiry.NOTIFY
    if policy == ReviewRule.OnExpiry.REJECT:
        turn = list(ReviewTask.objects.of_interrupt(task).pending())
        try:
            decisions = {
                t.pk: quick_decision(t.as_request(), "reject", rule.expiry_message) for t in turn
            }
            decide(turn, decisions, user=None)
        except (DecisionError, ActionRefused, DecisionsInvalid) as exc:
            outcome = f"notify (could not reject: {exc})"
            policy = ReviewRule.OnExpiry.NOTIFY
    with transaction.atomic():
        if policy == ReviewRule.OnExpiry.REASSIGN and rule.escalate_to_id:
            ReviewTask.objects.filter(pk=task.pk).update(assigned_group=rule.escalate_to)
        emit(
            "task.escalated",
            task=task,
            after={"policy": outcome, "due_at": task.due_at.isoformat(), "rule": str(rule or "")},
        )
        mail.overdue(task, policy)
    return True


def outcome_words(tasks: list[ReviewTask], run: Run | None) -> str:
    """What to tell the person once `decide` returned `run`: an approval may
    still wait for a quorum, a call for its own reviewers."""
    fresh = list(ReviewTask.objects.select_related("rule").filter(pk__in=[t.pk for t in tasks]))
    waiting = [t for t in fresh if t.is_pending]
    if waiting:
        task = waiting[0]
        given, _ = standing_approvals(task)
        have, need = len(given), task.required_for(given[0].decision if given else {})
        return (
            f"Your approval is recorded ({have} of {need}); the graph resumes once "
            f"{need - have} more reviewer{'s' if need - have != 1 else ''} approve."
        )
    if run is not None:
        return f"Decision recorded; run {run.pk} resumes the graph."
    return "Decision recorded; the graph resumes when the other requests of this step are decided."


def standing_approvals(
    task: ReviewTask, given: list[Approval] | None = None
) -> tuple[list[Approval], list[Approval]]:
    """The task's approvals that count towards its quorum, and those that no
    longer do, each in order. An approval counts while its reviewer may still
    give it: one taken out of the rule's groups, or deactivated, since then
    no longer does."""
    from reviews.access import may_still_approve

    if given is None:
        given = list(task.approvals.select_related("reviewer").order_by("pk"))
    standing: list[Approval] = []
    lapsed: list[Approval] = []
    for approval in given:
        counts = may_still_approve(approval.reviewer, task, approval.decision)
        (standing if counts else lapsed).append(approval)
    return standing, lapsed


def _approve(
    task: ReviewTask,
    user: Any,
    decision: dict[str, Any],
    edit_rule: ReviewRule | None,
    *,
    client_address: str | None,
) -> bool:
    """Record one reviewer's approval; True when it completes the quorum.
    Later approvals must approve the version the first one approved (edits
    included), and each reviewer counts once. The first also sets the rule
    its edit falls under (`edit_rule`): the task holds that call from now."""
    so_far, lapsed = standing_approvals(task)
    need = task.required_for(so_far[0].decision if so_far else decision)
    if any(a.reviewer_id == user.pk for a in so_far + lapsed):
        raise ActionRefused(f"You already approved this; it needs {need} different reviewers.")
    if so_far and so_far[0].decision != decision:
        raise ActionRefused(
            f"{so_far[0].reviewer.get_username()} approved a different version "
            f"({describe_decision(so_far[0].decision)}); approve that version, or reject."
        )
    Approval.objects.create(task=task, reviewer=user, decision=decision)
    if not so_far:
        ReviewTask.objects.filter(pk=task.pk).update(edit_rule=edit_rule)
    count = len(so_far) + 1
    emit(
        "task.approved",
        actor=user,
        task=task,
        after={**decision, "approvals": count, "required": need},
        client_address=client_address,
    )
    # The claim was for making this approval: others may now add theirs.
    ReviewTask.objects.filter(pk=task.pk, claimed_by=user).update(
        claimed_by=None, claim_expires_at=None
    )
    return count >= need


def _refuse_if_moved_on(task: ReviewTask, thread: Thread) -> None:
    if not task.is_pending:
        raise ActionRefused(task.why_not_pending())
    ActionRefused.while_running(thread, "decide")
    latest = thread.latest_checkpoint_id()
    if latest != task.checkpoint_id:
        raise ActionRefused(
            "The thread has moved on since this was asked "
            f"(it is now at checkpoint {latest}); this request no longer applies."
        )


def resume_if_complete(task: ReviewTask, *, user: Any) -> Run | None:
    """Queue the resume run once nothing is pending at the task's checkpoint.
    Callers hold the thread's lock, so only the last decision gets here."""
    at_checkpoint = ReviewTask.objects.filter(
        thread_id=task.thread_id, checkpoint_id=task.checkpoint_id
    )
    if at_checkpoint.pending().exists():
        return None
    # Only the interrupts pending now: a node that asks again (interrupt()
    # in a loop) stops at the same checkpoint, and the answers to its
    # earlier questions went with the run that asked the new one.
    decided = list(
        at_checkpoint.filter(status=ReviewTask.Status.DECIDED, resumed_by__isnull=True).order_by(
            "interrupt_id", "action_index"
        )
    )
    # Where the thread stands as a whole, a subgraph's stop included.
    point = Thread(pk=task.thread_id).newest_checkpoint_id()
    # A breakpoint is passed by the run that goes on: with interrupts beside
    # it (a parallel subgraph stopped at one), by the resume that answers them.
    answers = [t for t in decided if t.shape != Shape.BREAKPOINT]
    if not answers:
        run = Run.enqueue(
            graph_name=task.graph_name,
            kind=Run.Kind.CONTINUE,
            thread_id=task.thread_id,
            checkpoint_id=point,
            requested_by=user,
        )
    else:
        by_interrupt: dict[str, list[ReviewTask]] = {}
        for t in answers:
            by_interrupt.setdefault(t.interrupt_id, []).append(t)
        values = {
            interrupt_id: resume_value([t.as_request() for t in group], [t.decision for t in group])
            for interrupt_id, group in by_interrupt.items()
        }
        # Always by interrupt id: LangGraph keeps a plain resume value at the
        # checkpoint and hands it to the next interrupt() that finds no
        # answer of its own, a later call's of the same node included.
        payload = {"by_interrupt_id": values}
        run = Run.enqueue(
            graph_name=task.graph_name,
            kind=Run.Kind.RESUME,
            thread_id=task.thread_id,
            checkpoint_id=point,
            payload=payload,
            requested_by=user,
        )
    ReviewTask.objects.filter(pk__in=[t.pk for t in decided]).update(resumed_by=run)
    return run
