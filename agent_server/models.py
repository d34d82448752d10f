"""What LangGraph's Agent Server keeps beside a graph's checkpoints and runs:
assistants, a graph with its own config, context and metadata, each change a
new version. (A thread's metadata is graphs.models.Thread.metadata.)"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

# LangGraph's server names each graph's own assistant uuid5(NAMESPACE_GRAPH,
# graph_id): the same ids here, so a client that stored one keeps working.
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def system_assistant_id(graph_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE_GRAPH, graph_id)


class Assistant(models.Model):
    """A graph with its config, context and metadata: the latest version's
    copy (or the one set as latest), so reads need no join."""

    assistant_id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    graph_id = models.CharField(max_length=200)
    name = models.CharField(max_length=300)
    description = models.TextField(null=True, blank=True)  # noqa: DJ001  (LangGraph sends null)
    config = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="assistant_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.graph_id} v{self.version})"

    def add_version(self) -> None:
        """Keep what the assistant says now as its version row."""
        AssistantVersion.objects.create(
            created_at=self.updated_at,
            assistant=self,
            version=self.version,
            graph_id=self.graph_id,
            name=self.name,
            description=self.description,
            config=self.config,
            context=self.context,
            metadata=self.metadata,
        )


class AssistantVersion(models.Model):
    """One version of an assistant, as it was made; never changed."""

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    graph_id = models.CharField(max_length=200)
    name = models.CharField(max_length=300)
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    config = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assistant", "version"], name="assistant_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.assistant_id} v{self.version}"


class StreamEvent(models.Model):
    """One event of a resumable run's stream (`stream_resumable=True`), kept
    so a client that lost its connection gets what it missed after the
    `Last-Event-ID` it saw. `seq` counts the run's events from 1 (its
    "metadata" event), in the order they were sent; the worker writes each one
    before sending it. Kept for RESUMABLE_STREAM_TTL_SECONDS after the run ends
    (agent_server.streaming.trim_stream_events)."""

    run = models.ForeignKey("graphs.Run", on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveIntegerField()
    event = models.CharField(max_length=300)
    data = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="stream_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.event}"
