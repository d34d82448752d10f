"""The human side: what people are asked to decide."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, connections, models, transaction
from django.utils import timezone

from graphs.interrupts import DecisionError, check_value, resume_value, validate_decision
from graphs.models import Run, Thread
from reviews.graph_state import (
    GraphUnavailable,
    graph_for,
    module_tool_schema,
    tool_args_schemas,
)

CLAIM_FOR = timedelta(minutes=15)
# An assignment holds the claim for the assignee's working day.
ASSIGNED_FOR = timedelta(hours=8)
# Decisions that say no: final at once, whatever quorum a rule asks for.
REJECTIONS = ("reject", "respond", "response", "ignore")


def describe_decision(decision: dict[str, Any]) -> str:
    """A decision in words, for messages: "edit to refund(amount=9999)"."""
    type_ = decision.get("type", "")
    if type_ == "edit":
        args = decision.get("args") or {}
        shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
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


class ActionRefused(Exception):
    """An action refused as things stand: a decision someone else took first,
    a thread that moved on or has a run, a run that already stopped, a claim
    another holds. The message says which, for the person who asked."""

    @classmethod
    def while_running(cls, thread: Thread, action: str) -> None:
        """Refuse `action` ("decide", "replay"...) while a run has the thread:
        whatever it does would overlap the run's steps."""
        active = thread.active_run()
        if active is not None:
            raise cls(
                f"Run {active.pk} is {active.phase} on this thread; {action} once it has stopped."
            )


@dataclass
class DecisionsInvalid(Exception):
    """Decisions that don't fit their requests, by task id; nothing was written."""

    errors: dict[int, str]


class ReviewRule(models.Model):
    """Who may see, decide and administer the tasks of a graph, a tool, or a
    tool's calls whose arguments match a condition (a JSON schema, e.g. a
    refund with `amount` over 1000). The first matching rule by `order`
    applies; a task no rule matches is open to every signed-in reviewer."""

    name = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=100, help_text="lower applies first")
    graph_name = models.CharField(
        max_length=200, blank=True, default="", help_text="blank: any graph"
    )
    tool_name = models.CharField(
        max_length=200, blank=True, default="", help_text="blank: any task"
    )
    condition = models.JSONField(
        null=True,
        blank=True,
        help_text='a JSON schema the tool arguments must match, e.g. {"properties": '
        '{"amount": {"exclusiveMinimum": 1000}}, "required": ["amount"]}',
    )
    view_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    review_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    admin_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    deadline_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="a task is due this long after it is asked (blank: never)"
    )

    class OnExpiry(models.TextChoices):
        NOTIFY = "notify", "notify the reviewers"
        REASSIGN = "reassign", "reassign to the escalation group"
        REJECT = "reject", "reject with the message below"

    on_expiry = models.CharField(max_length=16, choices=OnExpiry.choices, default=OnExpiry.NOTIFY)
    escalate_to = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expiry_message = models.TextField(
        blank=True, default="No reviewer decided in time; the action was not taken."
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1, help_text="distinct eligible reviewers who must approve (any rejection rejects)"
    )

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return self.name

    def matches(self, graph_name: str, tool_name: str, args: Any) -> bool:
        if self.graph_name and self.graph_name != graph_name:
            return False
        if self.tool_name and self.tool_name != tool_name:
            return False
        if self.condition:
            return jsonschema.Draft202012Validator(self.condition).is_valid(args or {})
        return True

    @classmethod
    def for_call(
        cls, graph_name: str, tool_name: str, args: Any, rules: list[ReviewRule] | None = None
    ) -> ReviewRule | None:
        """The rule a call (or a request without one: tool_name "") falls under."""
        rules = list(cls.objects.all()) if rules is None else rules
        return next((rule for rule in rules if rule.matches(graph_name, tool_name, args)), None)

    @classmethod
    def for_task(cls, task: ReviewTask, rules: list[ReviewRule] | None = None) -> ReviewRule | None:
        return cls.for_call(task.graph_name, task.tool_name, task.args, rules)


class ReviewTaskQuerySet(models.QuerySet):
    def pending(self) -> ReviewTaskQuerySet:
        return self.filter(status=ReviewTask.Status.PENDING)

    def of_interrupt(self, task: ReviewTask) -> ReviewTaskQuerySet:
        """The tasks decided together with this one: the actions of one
        interrupt (a batched turn), in action order."""
        return self.filter(
            thread_id=task.thread_id,
            checkpoint_id=task.checkpoint_id,
            interrupt_id=task.interrupt_id,
        ).order_by("action_index")

    def create_for(
        self,
        *,
        thread_id: str,
        graph_name: str,
        checkpoint_id: str,
        requests: list,
        run: Run | None = None,
        new_checkpoint: bool = False,
    ) -> list[ReviewTask]:
        """One task per review request (graphs.interrupts.ReviewRequest) of a
        stopped thread. Returns the tasks created: none when this checkpoint's
        requests were asked already (a run that stopped again where it had
        stopped), since a checkpoint's tasks are only ever created together.

        `new_checkpoint`: the caller has just written this checkpoint, so no
        task can exist at it and the insert needs no savepoint to fall back
        on (one costs two round trips on PostgreSQL, on the way from
        interrupt() to the reviewers)."""
        if not requests:
            return []
        rules = list(ReviewRule.objects.all())
        # The live rows show the thread; the worker has read the run's already.
        thread = run.thread if run is not None else None
        tasks = [
            ReviewTask(
                thread_id=thread_id,
                run=run,
                graph_name=graph_name,
                checkpoint_id=checkpoint_id,
                interrupt_id=request.interrupt_id,
                action_index=request.action_index,
                shape=request.shape,
                kind=request.kind,
                tool_name=request.tool_name,
                args=request.args,
                description=request.description,
                allowed=request.allowed,
                response_schema=request.response_schema,
                payload=request.value,
                node=request.node,
                namespace=request.namespace,
            )
            for request in requests
        ]
        now = timezone.now()
        for task in tasks:
            if thread is not None:
                task.thread = thread
            task.rule = ReviewRule.for_task(task, rules)
            if task.rule and task.rule.deadline_minutes:
                task.due_at = now + timedelta(minutes=task.rule.deadline_minutes)
        if new_checkpoint:
            return self.bulk_create(tasks)  # with their ids, for the live rows
        try:
            with transaction.atomic(using=self.db):
                return self.bulk_create(tasks)
        except IntegrityError:  # the unique key: asked before, at this checkpoint
            return []

    def reopen(self, run: Run, *, refused_with: str = "") -> list[ReviewTask]:
        """Open again the tasks whose decisions a resume run was to take to the
        graph, when that run never ran them (it was cancelled while queued) or
        the graph refused them (`refused_with`: what it raised); their
        approvals go too. The audit trail keeps what was decided."""
        given = list(self.select_for_update().filter(resumed_by=run))
        if not given:
            return []
        Approval.objects.filter(task__in=given).delete()
        self.filter(pk__in=[t.pk for t in given]).update(
            status=ReviewTask.Status.PENDING,
            decision=None,
            decided_by=None,
            decided_at=None,
            resumed_by=None,
            refused_with=refused_with,
        )
        return list(self.filter(pk__in=[t.pk for t in given]).select_related("thread", "rule"))

    def supersede(self, thread_id: str, *, keep_checkpoint: str | None = None) -> list[int]:
        """Retire the pending tasks of a thread that has moved past their
        checkpoint; returns their ids (for the pages that show them).

        One conditional UPDATE ... RETURNING (SQLite 3.35+, PostgreSQL): every
        stop of every run asks this, on the way from interrupt() to the
        reviewers, and nearly always retires nothing."""
        connection = connections[self.db]
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(ReviewTask._meta.db_table)} SET status = %s"
            " WHERE thread_id = %s AND status = %s"
        )
        params = [ReviewTask.Status.SUPERSEDED, thread_id, ReviewTask.Status.PENDING]
        if keep_checkpoint:
            sql += " AND checkpoint_id <> %s"
            params.append(keep_checkpoint)
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} RETURNING id", params)
            return sorted(row[0] for row in cursor.fetchall())


class ReviewTask(models.Model):
    """One decision a person makes: an action of a pending interrupt, a
    question to answer, or a breakpoint to continue from."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DECIDED = "decided"
        SUPERSEDED = "superseded", "superseded (the thread moved on)"

    class Kind(models.TextChoices):
        APPROVAL = "approval"
        TOOL_EDIT = "tool_edit", "tool edit"
        FEEDBACK = "feedback"
        BREAKPOINT = "breakpoint"
        OTHER = "other"

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="review_tasks")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="review_tasks"
    )
    graph_name = models.CharField(max_length=200)
    # The checkpoint the graph stopped at: a decision only applies while it is
    # still the thread's latest.
    checkpoint_id = models.CharField(max_length=64)
    interrupt_id = models.CharField(max_length=64, blank=True, default="")
    action_index = models.PositiveIntegerField(default=0)
    shape = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    tool_name = models.CharField(max_length=200, blank=True, default="")
    args = models.JSONField(null=True, blank=True)
    description = models.TextField(blank=True, default="")
    allowed = models.JSONField(default=list, blank=True)
    response_schema = models.JSONField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    node = models.CharField(max_length=200, blank=True, default="")
    # The subgraph that asked ("" for the graph itself), as LangGraph names it.
    namespace = models.CharField(max_length=500, blank=True, default="")
    # The run that took this decision to the graph: until then it may be
    # given back (a cancelled resume), and it is never sent twice.
    resumed_by = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="resumed_tasks"
    )
    # What the graph raised when it was given the last decision, which it
    # refused: the task was opened again to be decided anew.
    refused_with = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.JSONField(null=True, blank=True)
    # A claim: the reviewer working on it, until the claim runs out by itself.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    # The rule that governs it, matched when it was created (and again when
    # rules change), so visibility is a join, not a per-row evaluation.
    rule = models.ForeignKey(
        ReviewRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    assigned_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ReviewTaskQuerySet.as_manager()

    class Meta:
        constraints = [
            # A worker that retries, or two that race, can't ask twice.
            models.UniqueConstraint(
                fields=["thread", "checkpoint_id", "interrupt_id", "action_index"],
                name="one_task_per_action",
            )
        ]
        indexes = [
            # The queue: tasks of a status in id (creation) order, either way,
            # and the keyset pages after a cursor; the pending count.
            models.Index(fields=["status", "id"], name="task_status_id_idx"),
            # Overdue tasks first: pending by due time.
            models.Index(fields=["status", "due_at"], name="task_status_due_idx"),
            # Visibility under rules: counting the pending tasks a reviewer may see.
            models.Index(fields=["status", "rule"], name="task_status_rule_idx"),
        ]

    def __str__(self) -> str:
        what = self.tool_name or self.node or self.kind
        return f"task {self.pk} {what} on {self.thread_id} ({self.status})"

    def as_request(self) -> dict:
        """The request in graphs.interrupts' terms, for validating decisions."""
        return {
            "shape": self.shape,
            "kind": self.kind,
            "interrupt_id": self.interrupt_id,
            "action_index": self.action_index,
            "tool_name": self.tool_name,
            "args": self.args,
            "description": self.description,
            "allowed": self.allowed,
            "response_schema": self.response_schema,
            "value": self.payload,
            "node": self.node,
            "namespace": self.namespace,
        }

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def overdue(self) -> bool:
        return bool(self.is_pending and self.due_at and self.due_at <= timezone.now())

    def held_by_other(self, user: Any) -> bool:
        return bool(
            self.claimed_by_id
            and self.claimed_by_id != getattr(user, "pk", None)
            and self.claim_expires_at
            and self.claim_expires_at > timezone.now()
        )

    @property
    def claim_text(self) -> str:
        if not self.claimed_by_id or not self.claim_expires_at:
            return ""
        left = self.claim_expires_at - timezone.now()
        if left.total_seconds() <= 0:
            return ""
        minutes = max(1, round(left.total_seconds() / 60))
        return f"claimed by {self.claimed_by.get_username()}, {minutes} minute{'s' if minutes != 1 else ''} left"

    @classmethod
    def claim_together(
        cls, tasks: list[ReviewTask], *, user: Any, client_address: str | None = None
    ) -> None:
        """Claim the pending actions of one interrupt for a while. Two claims at
        once: the conditional UPDATE lets one win; the other is refused with
        who holds it. Claiming again extends one's own claim."""
        now = timezone.now()
        with transaction.atomic():
            free = cls.objects.filter(
                pk__in=[t.pk for t in tasks], status=cls.Status.PENDING
            ).filter(
                models.Q(claimed_by__isnull=True)
                | models.Q(claim_expires_at__lte=now)
                | models.Q(claimed_by=user)
            )
            won = free.update(claimed_by=user, claim_expires_at=now + CLAIM_FOR)
            if won != len(tasks):
                held = cls.objects.select_related("claimed_by", "decided_by").filter(
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

    @classmethod
    def assign_together(
        cls,
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
            changed = cls.objects.filter(
                pk__in=[t.pk for t in tasks], status=cls.Status.PENDING
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

    @classmethod
    def release_together(
        cls, tasks: list[ReviewTask], *, user: Any, client_address: str | None = None
    ) -> int:
        """Give back one's own claim on these tasks; how many it held."""
        with transaction.atomic():
            released = list(
                cls.objects.filter(pk__in=[t.pk for t in tasks], claimed_by=user).values_list(
                    "pk", flat=True
                )
            )
            cls.objects.filter(pk__in=released, claimed_by=user).update(
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

    @classmethod
    def decide_together(
        cls,
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
                normalised[task.pk] = validate_decision(
                    task.as_request(), decisions.get(task.pk) or {}
                )
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

        check_decisions(user, tasks, normalised)

        first = tasks[0]
        with transaction.atomic():
            thread = Thread.objects.select_for_update().get(pk=first.thread_id)
            # Under the lock: someone who decided first is the reason to give,
            # even when their resume run is now active on the thread.
            taken = cls.objects.filter(pk__in=[t.pk for t in tasks]).exclude(
                status=cls.Status.PENDING
            )
            if taken:
                raise ActionRefused(taken[0].why_not_pending())
            held = [
                t
                for t in cls.objects.select_related("claimed_by").filter(
                    pk__in=[t.pk for t in tasks]
                )
                if user is not None and t.held_by_other(user)  # the system overrides claims
            ]
            if held:
                raise ActionRefused(f"This is {held[0].claim_text}; wait for the claim to end.")
            first.refuse_if_moved_on(thread)
            now = timezone.now()
            for task in tasks:
                if task.needs_quorum(normalised[task.pk]) and not task.approve(
                    user, normalised[task.pk], client_address=client_address
                ):
                    continue  # an approval recorded; more reviewers must agree
                won = cls.objects.filter(pk=task.pk, status=cls.Status.PENDING).update(
                    status=cls.Status.DECIDED,
                    decided_by=user,
                    decided_at=now,
                    decision=normalised[task.pk],
                    refused_with="",
                )
                if not won:
                    # Rolls back this call's other decisions too.
                    raise ActionRefused(task.why_not_pending())
                task.status, task.decided_by, task.decided_at = cls.Status.DECIDED, user, now
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
            return cls.resume_if_complete(first, user=user)

    @property
    def required_approvals(self) -> int:
        return self.rule.required_approvals if self.rule_id and self.rule else 1

    def required_for(self, decision: dict[str, Any]) -> int:
        """Approvals this decision needs: an edited call is judged as if it had
        been proposed, so its own rule's quorum counts too."""
        need = self.required_approvals
        if decision.get("type") == "edit":
            rule = ReviewRule.for_call(
                self.graph_name, decision.get("name") or self.tool_name, decision.get("args")
            )
            if rule is not None:
                need = max(need, rule.required_approvals)
        return need

    def needs_quorum(self, decision: dict[str, Any]) -> bool:
        """Approvals count towards a quorum; any rejection decides at once."""
        return decision.get("type") not in REJECTIONS and self.required_for(decision) > 1

    def approve(self, user: Any, decision: dict[str, Any], *, client_address: str | None) -> bool:
        """Record one reviewer's approval; True when it completes the quorum.
        Later approvals must approve the version the first one approved (edits
        included), and each reviewer counts once."""
        so_far = list(self.approvals.select_related("reviewer").order_by("pk"))
        need = self.required_for(so_far[0].decision if so_far else decision)
        if any(a.reviewer_id == user.pk for a in so_far):
            raise ActionRefused(f"You already approved this; it needs {need} different reviewers.")
        if so_far and so_far[0].decision != decision:
            raise ActionRefused(
                f"{so_far[0].reviewer.get_username()} approved a different version "
                f"({describe_decision(so_far[0].decision)}); approve that version, or reject."
            )
        Approval.objects.create(task=self, reviewer=user, decision=decision)
        count = len(so_far) + 1
        emit(
            "task.approved",
            actor=user,
            task=self,
            after={**decision, "approvals": count, "required": need},
            client_address=client_address,
        )
        # The claim was for making this approval: others may now add theirs.
        ReviewTask.objects.filter(pk=self.pk, claimed_by=user).update(
            claimed_by=None, claim_expires_at=None
        )
        return count >= need

    def refuse_if_moved_on(self, thread: Thread) -> None:
        if not self.is_pending:
            raise ActionRefused(self.why_not_pending())
        ActionRefused.while_running(thread, "decide")
        latest = thread.latest_checkpoint_id()
        if latest != self.checkpoint_id:
            raise ActionRefused(
                "The thread has moved on since this was asked "
                f"(it is now at checkpoint {latest}); this request no longer applies."
            )

    def why_not_pending(self) -> str:
        """In words, from the stored row: this instance may have been read
        before another reviewer's decision committed."""
        self.refresh_from_db(fields=["status", "decided_by", "decided_at"])
        if self.status == self.Status.DECIDED:
            who = self.decided_by.get_username() if self.decided_by else "the system"
            when = timezone.localtime(self.decided_at).strftime("%Y-%m-%d %H:%M:%S")
            return f"Already decided by {who} at {when}."
        if self.status == self.Status.SUPERSEDED:
            return "The thread has moved on; this request no longer applies."
        return "This task is still pending."

    @classmethod
    def resume_if_complete(cls, task: ReviewTask, *, user: Any) -> Run | None:
        """Queue the resume run once nothing is pending at the task's checkpoint.
        Callers hold the thread's lock, so only the last decision gets here."""
        at_checkpoint = cls.objects.filter(
            thread_id=task.thread_id, checkpoint_id=task.checkpoint_id
        )
        if at_checkpoint.pending().exists():
            return None
        # Only the interrupts pending now: a node that asks again (interrupt()
        # in a loop) stops at the same checkpoint, and the answers to its
        # earlier questions went with the run that asked the new one.
        decided = list(
            at_checkpoint.filter(status=cls.Status.DECIDED, resumed_by__isnull=True).order_by(
                "interrupt_id", "action_index"
            )
        )
        if all(t.shape == "breakpoint" for t in decided):
            run = Run.enqueue(
                graph_name=task.graph_name,
                kind=Run.Kind.CONTINUE,
                thread_id=task.thread_id,
                requested_by=user,
            )
        else:
            by_interrupt: dict[str, list[ReviewTask]] = {}
            for t in decided:
                by_interrupt.setdefault(t.interrupt_id, []).append(t)
            values = {
                interrupt_id: resume_value(
                    [t.as_request() for t in group], [t.decision for t in group]
                )
                for interrupt_id, group in by_interrupt.items()
            }
            payload = (
                {"value": next(iter(values.values()))}
                if len(values) == 1
                else {"by_interrupt_id": values}
            )
            run = Run.enqueue(
                graph_name=task.graph_name,
                kind=Run.Kind.RESUME,
                thread_id=task.thread_id,
                payload=payload,
                requested_by=user,
            )
        cls.objects.filter(pk__in=[t.pk for t in decided]).update(resumed_by=run)
        return run


class Approval(models.Model):
    """One reviewer's approval towards a task's quorum."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="approvals")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Two submissions from one reviewer at once still count once.
            models.UniqueConstraint(fields=["task", "reviewer"], name="one_approval_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} approved task {self.task_id}"


# Models kept in modules of their own; imported here so Django registers them.
from reviews.audit_log import (  # noqa: E402
    AUDIT_CHAIN_LOCK,
    AuditEvent,
    AuditImmutable,
    AuditQuerySet,
    json_roundtrip,
)
from reviews.emit import emit  # noqa: E402  (actions' effects: audit, webhooks, live)
from reviews.tokens import ApiToken  # noqa: E402
from reviews.webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402

__all__ = [
    "AUDIT_CHAIN_LOCK",
    "ActionRefused",
    "ApiToken",
    "Approval",
    "AuditEvent",
    "AuditImmutable",
    "AuditQuerySet",
    "DecisionsInvalid",
    "ReviewRule",
    "ReviewTask",
    "WebhookDelivery",
    "WebhookEndpoint",
    "json_roundtrip",
]
