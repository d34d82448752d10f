"""Where LangGraph's checkpoints live.

The layout follows LangGraph's own Postgres saver: a checkpoint row holds the
small parts of a checkpoint, each channel value is stored once per
(thread, namespace, channel, version) so a step does not rewrite channels that
did not change, and pending writes hang off the checkpoint they belong to.
The saver (graphs.checkpoint) writes these tables with plain SQL for speed;
pages read them through the ORM.
"""

from django.db import models


class Thread(models.Model):
    """One LangGraph thread_id. The saver creates the row on the first write."""

    thread_id = models.CharField(max_length=255, primary_key=True)
    graph_name = models.CharField(max_length=200, blank=True, default="")
    title = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The home page lists the newest threads first.
        indexes = [models.Index(fields=["-created_at"], name="thread_created_idx")]

    def __str__(self) -> str:
        return self.title or self.thread_id


class Checkpoint(models.Model):
    pk = models.CompositePrimaryKey("thread", "checkpoint_ns", "checkpoint_id")
    # No database constraint: the saver writes the thread row in the same
    # transaction, and a foreign-key check on every step would cost a lookup.
    thread = models.ForeignKey(
        Thread,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key starts with thread_id
        related_name="checkpoints",
    )
    checkpoint_ns = models.CharField(max_length=500, default="", blank=True)
    checkpoint_id = models.CharField(max_length=64)
    # NULL, not "", for "no parent": the saver and LangGraph both use None.
    parent_checkpoint_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The checkpoint without its stored channel values, in the serde's format.
    type = models.CharField(max_length=32)
    checkpoint = models.BinaryField()
    # Plain JSON so lists can filter on it (source, step, run_id, custom keys).
    metadata = models.JSONField(default=dict)
    # channel -> version, also inside `checkpoint`; as JSON the database can join
    # a checkpoint to its blobs, so get_tuple is one statement.
    versions = models.JSONField(default=dict)

    class Meta:
        indexes = [
            # list() over every namespace of a thread, newest first (the timeline);
            # the primary key serves one namespace, get_tuple's latest and by-id.
            models.Index(fields=["thread", "-checkpoint_id"], name="checkpoint_thread_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.thread_id}/{self.checkpoint_ns or '-'}/{self.checkpoint_id}"


class CheckpointBlob(models.Model):
    """One channel value at one version; shared by every checkpoint that has it."""

    # The primary key serves get_tuple's fetch of a checkpoint's channel values.
    pk = models.CompositePrimaryKey("thread_id", "checkpoint_ns", "channel", "version")
    thread_id = models.CharField(max_length=255)
    checkpoint_ns = models.CharField(max_length=500, default="", blank=True)
    channel = models.CharField(max_length=255)
    version = models.CharField(max_length=64)
    type = models.CharField(max_length=32)
    blob = models.BinaryField(null=True)

    def __str__(self) -> str:
        return f"{self.thread_id}/{self.channel}@{self.version}"


class CheckpointWrite(models.Model):
    """A pending write of one task, saved before the next checkpoint."""

    # The primary key serves the pending writes of a checkpoint, and makes a
    # repeated (task, idx) an upsert or a no-op instead of a duplicate.
    pk = models.CompositePrimaryKey("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx")
    thread_id = models.CharField(max_length=255)
    checkpoint_ns = models.CharField(max_length=500, default="", blank=True)
    checkpoint_id = models.CharField(max_length=64)
    task_id = models.CharField(max_length=255)
    idx = models.IntegerField()
    task_path = models.CharField(max_length=500, default="", blank=True)
    channel = models.CharField(max_length=255)
    type = models.CharField(max_length=32)
    blob = models.BinaryField()

    def __str__(self) -> str:
        return f"{self.thread_id}/{self.checkpoint_id}/{self.task_id}[{self.idx}]"
