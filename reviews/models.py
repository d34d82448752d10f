"""The human side: what people are asked to decide."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from graphs.models import Run, Thread


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
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            # A worker that retries, or two that race, can't ask twice.
            models.UniqueConstraint(
                fields=["thread", "checkpoint_id", "interrupt_id", "action_index"],
                name="one_task_per_action",
            )
        ]
        indexes = [
            # The queue: pending tasks, oldest first.
            models.Index(fields=["status", "created_at"], name="task_status_created_idx"),
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
        }
