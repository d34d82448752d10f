"""The human side: what people are asked to decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, connections, models, transaction
from django.utils import timezone

from graphs.interrupts import REFUSALS, Shape
from graphs.models import Run, Thread
from hitl_site.rows import Rows


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

    def matches(self, graph_name: str, tool_name: str, args: Any, *, lenient: bool = False) -> bool:
        """Whether a call falls under this rule; `lenient`: whatever its
        arguments (a call whose arguments can't be read)."""
        if self.graph_name and self.graph_name != graph_name:
            return False
        if self.tool_name and self.tool_name != tool_name:
            return False
        if self.condition and not lenient:
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
        """The first rule, in order, the task falls under: as the call it
        asks, or, for a question, as the request or any call it guards."""
        rules = list(cls.objects.all()) if rules is None else rules
        calls = [(task.tool_name, task.args, False)]
        if not task.tool_name:
            # A guarded call whose arguments no reading makes an object of
            # falls under every rule of its tool.
            calls += [
                (str(c.get("name", "")), c.get("args"), c.get("args") is None)
                for c in task.guards or ()
                if isinstance(c, dict)
            ]
        return next(
            (
                rule
                for rule in rules
                if any(rule.matches(task.graph_name, *call[:2], lenient=call[2]) for call in calls)
            ),
            None,
        )


_RULE_ROWS = Rows(ReviewRule)


def current_rules(using: str = "default") -> list[ReviewRule]:
    """Every rule in the order they apply, as the database holds them now.

    Asked at every stop of every run, and read each time in the caller's
    transaction (a rule another process has just changed counts), by one
    statement written once: building the same query through the ORM cost
    more than reading the rows, nearly always none or a few."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = ReviewRule._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_RULE_ROWS.columns(using)} FROM {quote(meta.db_table)}"
            f" ORDER BY {quote(meta.get_field('order').column)}, {quote(meta.pk.column)}"
        )
        return [_RULE_ROWS.make(using, row) for row in cursor.fetchall()]


def _seen_under(granted: set[int]) -> models.Q:
    return (models.Q(rule__isnull=True) | models.Q(rule_id__in=granted)) & (
        models.Q(edit_rule__isnull=True) | models.Q(edit_rule_id__in=granted)
    )


class ReviewTaskQuerySet(models.QuerySet):
    def pending(self) -> ReviewTaskQuerySet:
        return self.filter(status=ReviewTask.Status.PENDING)

    def under_rules(self) -> ReviewTaskQuerySet:
        """The tasks whose rules restrict who may see them: their own, or the
        one their edit fell under."""
        return self.filter(models.Q(rule__isnull=False) | models.Q(edit_rule__isnull=False))

    def seen_under(self, granted: set[int]) -> ReviewTaskQuerySet:
        """The tasks those with the right to view under the rules `granted` may see."""
        return self.filter(_seen_under(granted))

    def hidden_under(self, granted: set[int]) -> ReviewTaskQuerySet:
        """The tasks they may not see."""
        return self.exclude(_seen_under(granted))

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
        rules = current_rules(self.db)
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
                guards=request.guards,
            )
            for request in requests
        ]
        now = timezone.now()
        for task in tasks:
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
    shape = models.CharField(max_length=32, choices=Shape.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    tool_name = models.CharField(max_length=200, blank=True, default="")
    args = models.JSONField(null=True, blank=True)
    description = models.TextField(blank=True, default="")
    allowed = models.JSONField(default=list, blank=True)
    response_schema = models.JSONField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    # For a question that is no tool call: the calls answering it lets run.
    guards = models.JSONField(default=list, blank=True)
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
    # The rule the call as decided fell under, when an edit took it under
    # another: the thread then holds that call, so who may see the thread
    # and the task follows this rule too.
    edit_rule = models.ForeignKey(
        ReviewRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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

    def as_json(self) -> dict[str, Any]:
        """The task as the JSON API shows it and webhooks send it."""
        return {
            "id": self.pk,
            "thread_id": self.thread_id,
            "graph": self.graph_name,
            "kind": self.kind,
            "shape": self.shape,
            "status": self.status,
            "tool_name": self.tool_name,
            "args": self.args,
            "description": self.description,
            "allowed": self.allowed,
            "response_schema": self.response_schema,
            "node": self.node,
            "namespace": self.namespace,
            "payload": self.payload,
            "refused_with": self.refused_with,
            "checkpoint_id": self.checkpoint_id,
            "interrupt_id": self.interrupt_id,
            "action_index": self.action_index,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "decided_by": self.decided_by.get_username() if self.decided_by else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decision": self.decision,
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
        return decision.get("type") not in REFUSALS and self.required_for(decision) > 1

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
from reviews.tokens import ApiToken  # noqa: E402
from reviews.webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402

__all__ = [
    "AUDIT_CHAIN_LOCK",
    "ApiToken",
    "Approval",
    "AuditEvent",
    "AuditImmutable",
    "AuditQuerySet",
    "ReviewRule",
    "ReviewTask",
    "WebhookDelivery",
    "WebhookEndpoint",
    "json_roundtrip",
]
