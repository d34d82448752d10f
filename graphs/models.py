"""Where LangGraph's checkpoints live.

The layout follows LangGraph's own Postgres saver: a checkpoint row holds the
small parts of a checkpoint, each channel value is stored once per
(thread, namespace, channel, version) so a step does not rewrite channels that
did not change, and pending writes hang off the checkpoint they belong to.
The saver (graphs.checkpoint) writes these tables with plain SQL for speed;
pages read them through the ORM.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, models, transaction
from django.utils import timezone
from langchain_core.utils.uuid import uuid7

from graphs import events
from graphs.signals import run_finished, run_queued


def new_run_id() -> uuid.UUID:
    """Time-ordered, as LangGraph's server makes run ids (UUID v7)."""
    return uuid7()


class Thread(models.Model):
    """One LangGraph thread_id. The saver creates the row on the first write."""

    thread_id = models.CharField(max_length=255, primary_key=True)
    graph_name = models.CharField(max_length=200, blank=True, default="")
    title = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # LangGraph's thread metadata (the Agent Server API's threads.create and
    # update, and the graph_id and assistant_id a run adds). NULL where the
    # saver made the row: it writes threads with plain SQL.
    metadata = models.JSONField(null=True, blank=True)

    class Meta:
        # The home page lists the newest threads first.
        indexes = [models.Index(fields=["-created_at"], name="thread_created_idx")]

    def __str__(self) -> str:
        return self.title or self.thread_id

    def latest_checkpoint_id(self, using: str | None = None) -> str | None:
        """The newest checkpoint of the root graph (ids sort by time)."""
        return (
            Checkpoint.objects.using(using or self._state.db)
            .filter(thread_id=self.thread_id, checkpoint_ns="")
            .order_by("-checkpoint_id")
            .values_list("checkpoint_id", flat=True)
            .first()
        )

    def newest_checkpoint_id(self) -> str:
        """The newest checkpoint of any graph in the thread, a subgraph's
        included: where the thread stands as a whole (a subgraph that stops
        writes checkpoints in its own namespace only)."""
        return (
            Checkpoint.objects.using(self._state.db)
            .filter(thread_id=self.thread_id)
            .order_by("-checkpoint_id")
            .values_list("checkpoint_id", flat=True)
            .first()
        ) or ""

    def active_run(self) -> Run | None:
        """The run that has the thread now or next: running, stopping after a
        cancel, or queued."""
        runs = self.runs.filter(models.Q(status__in=Run.ACTIVE) | Run.stopping_q())
        return runs.order_by("pk").first()


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


# The claim: queued runs whose thread has no earlier queued run and none
# running (or still stopping, see Run.cancel), so a thread's runs execute one
# at a time, in the order they were asked for. run_status_idx finds the
# queued runs oldest first, run_thread_status_idx answers both NOT EXISTS.
_CLAIM_SQL = """
UPDATE {table} SET status = %s, worker_id = %s, lease_expires_at = %s,
    started_at = COALESCE(started_at, %s), attempts = attempts + 1
WHERE id = (
    SELECT candidate.id FROM {table} candidate
    WHERE candidate.status = %s
      AND NOT EXISTS (
        SELECT 1 FROM {table} earlier WHERE earlier.thread_id = candidate.thread_id
          AND earlier.status = %s AND earlier.id < candidate.id)
      AND NOT EXISTS (
        SELECT 1 FROM {table} busy WHERE busy.thread_id = candidate.thread_id
          AND (busy.status = %s OR (busy.status = %s AND busy.lease_expires_at > %s)))
    ORDER BY candidate.id LIMIT 1 {lock}
) AND status = %s
RETURNING *
"""


class RunQuerySet(models.QuerySet):
    def claim_next(self, worker_id: str, lease: timedelta) -> Run | None:
        """Take the oldest claimable run for this worker, or None.

        Safe with any number of workers on any number of machines: the UPDATE
        only succeeds while the row is still queued, and a partial unique index
        refuses a second running run on one thread. On PostgreSQL the candidate
        is locked with SKIP LOCKED so workers don't queue on the same row.

        One UPDATE ... RETURNING statement (the rules above written out
        in SQL): a worker claims once per run, and building the same query
        through the ORM cost more than the graph's own steps.
        """
        connection = connections[self.db]
        lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
        sql = _CLAIM_SQL.format(table=Run._meta.db_table, lock=lock)
        now = timezone.now()
        params = [
            Run.Status.RUNNING,
            worker_id,
            connection.ops.adapt_datetimefield_value(now + lease),
            connection.ops.adapt_datetimefield_value(now),
            Run.Status.QUEUED,
            Run.Status.QUEUED,
            Run.Status.RUNNING,
            Run.Status.CANCELLED,
            connection.ops.adapt_datetimefield_value(now),
            Run.Status.QUEUED,
        ]
        for _ in range(5):
            try:
                with transaction.atomic(using=self.db):
                    claimed = list(Run.objects.using(self.db).raw(sql, params))
            except IntegrityError:
                continue  # another worker started a run of this thread first
            return claimed[0] if claimed else None
        return None

    def expired(self) -> RunQuerySet:
        return self.filter(status=Run.Status.RUNNING, lease_expires_at__lt=timezone.now())

    def requeue_expired(self) -> int:
        """Put runs whose worker stopped renewing the lease back in the queue."""
        return self.expired().update(status=Run.Status.QUEUED, worker_id="", lease_expires_at=None)


class Run(models.Model):
    """One request to execute a graph on a thread. The row is the truth;
    channel messages only wake workers up."""

    class Kind(models.TextChoices):
        START = "start", "start with input"
        RESUME = "resume", "resume an interrupt"
        CONTINUE = "continue", "continue after a breakpoint or edit"
        REPLAY = "replay", "replay from a checkpoint"
        COMMAND = "command", "a command (update, goto)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        INTERRUPTED = "interrupted"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="runs")
    graph_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # What the run sends the graph: input for START, the resume value for
    # RESUME, a command for COMMAND.
    payload = models.JSONField(null=True, blank=True)
    # START: the past point a new branch starts from (blank: the latest).
    # REPLAY: the point replayed. CONTINUE, RESUME, COMMAND: the thread's
    # newest checkpoint (Thread.newest_checkpoint_id) when the run was asked
    # and judged; it starts only while that is still the newest, never past
    # a stop made after it was asked.
    checkpoint_id = models.CharField(max_length=64, blank=True, default="")
    as_node = models.CharField(max_length=200, blank=True, default="")
    interrupt_before = models.JSONField(default=list, blank=True)
    interrupt_after = models.JSONField(default=list, blank=True)
    # LangGraph's per-run config (configurable, recursion_limit, tags,
    # metadata) and the runtime context for a graph with a context_schema. A
    # run that continues a thread takes them from the thread's last run.
    config = models.JSONField(default=dict, blank=True)
    context = models.JSONField(null=True, blank=True)
    # As LangGraph's Agent Server API knows the run (agent_server): its id,
    # the assistant it ran, its metadata, the request as that API echoes it
    # back ("kwargs") and how it was to share the thread with other runs.
    run_id = models.UUIDField(unique=True, default=new_run_id, editable=False)
    assistant_id = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    kwargs = models.JSONField(null=True, blank=True)
    multitask_strategy = models.CharField(max_length=16, blank=True, default="")
    # The stream modes a client is listening for (LangGraph's names, e.g.
    # "values", "messages-tuple"); empty when nobody streams the run, which
    # then streams only what the worker itself needs.
    stream_mode = models.JSONField(default=list, blank=True)
    stream_subgraphs = models.BooleanField(default=False)
    # A stateless run's thread: deleted with its checkpoints once the run ends.
    temporary = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    objects = RunQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread"],
                condition=models.Q(status="running"),
                name="one_running_run_per_thread",
            ),
        ]
        indexes = [
            # The claim query: queued runs oldest first, and the per-thread checks.
            models.Index(fields=["status", "id"], name="run_status_idx"),
            models.Index(fields=["thread", "status"], name="run_thread_status_idx"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} {self.kind} {self.graph_name}/{self.thread_id} ({self.status})"

    @classmethod
    def enqueue(
        cls,
        *,
        graph_name: str,
        kind: str,
        thread_id: str | None = None,
        payload: Any = None,
        requested_by: Any = None,
        title: str = "",
        using: str = "default",
        thread: Thread | None = None,
        **fields: Any,
    ) -> Run:
        """Queue a run (creating its thread) and wake a worker once committed.
        `requested_by`: the person asking; anyone else (an anonymous user, a
        script without one) is recorded as nobody. `thread`: the thread's row,
        when the caller has it already (locked or just created in its
        transaction)."""
        if not getattr(requested_by, "is_authenticated", False):
            requested_by = None
        # Joins the caller's transaction without a savepoint (two more round
        # trips on PostgreSQL): a failure here undoes the caller's work too.
        with transaction.atomic(using=using, savepoint=False):
            threads = Thread.objects.using(using)
            if thread is not None:
                created = False
            elif thread_id is None:  # a new thread: nothing to look up
                thread = threads.create(
                    thread_id=str(uuid.uuid4()), graph_name=graph_name, title=title
                )
                created = True
            else:
                thread, created = threads.get_or_create(
                    thread_id=thread_id, defaults={"graph_name": graph_name, "title": title}
                )
            if not created and not thread.graph_name:
                Thread.objects.using(using).filter(pk=thread.pk, graph_name="").update(
                    graph_name=graph_name
                )
            if not created and "config" not in fields and "context" not in fields:
                # A resume or a continue runs under the config the thread ran with.
                last = thread.runs.order_by("-pk").values("config", "context").first()
                if last:
                    fields |= last
            run = cls.objects.using(using).create(
                thread=thread,
                graph_name=graph_name,
                kind=kind,
                payload=payload,
                requested_by=requested_by,
                **fields,
            )
            transaction.on_commit(lambda: run_queued.send(sender=cls, run=run), using=using)
        return run

    @staticmethod
    def stopping_q() -> models.Q:
        """Cancelled while running, and its worker may still be on its step:
        the run keeps its lease until the worker lets go (or the lease runs out)."""
        return models.Q(status=Run.Status.CANCELLED, lease_expires_at__gt=timezone.now())

    @property
    def active(self) -> bool:
        return self.status in Run.ACTIVE

    @property
    def phase(self) -> str:
        """The status, or "stopping" for a run cancelled mid-step (for messages)."""
        return "stopping" if self.stopping else self.status

    @property
    def stopping(self) -> bool:
        return (
            self.status == Run.Status.CANCELLED
            and self.lease_expires_at is not None
            and self.lease_expires_at > timezone.now()
        )

    def cancel(self, *, by: Any = None) -> str | None:
        """Stop a queued or running run; returns the status it stopped from
        (read by the UPDATE itself: a worker may claim it meanwhile), None if
        it had already stopped.

        A queued run never starts. A running run's worker learns of it at
        once: in this process from the announcement (graphs.worker listens),
        in another from a message to every worker process; should that be
        lost, when it next renews its lease (a third of the lease, ten seconds
        by default). It stops before the graph's next step, recording
        nothing. Until then the run keeps its lease, and with it the thread.
        """
        name = by.get_username() if getattr(by, "is_authenticated", False) else "the system"
        db = self._state.db or "default"
        fields = {
            "status": Run.Status.CANCELLED,
            "finished_at": timezone.now(),
            "error": f"Cancelled by {name}.",
        }
        for before in Run.ACTIVE:  # queued first: one that never ran
            if Run.objects.using(db).filter(pk=self.pk, status=before).update(**fields):
                break
        else:
            return None
        self.refresh_from_db(using=db)

        def announce() -> None:
            run_finished.send(sender=Run, run=self, status=Run.Status.CANCELLED)
            events.publish_run(self, Run.Status.CANCELLED)
            if self.worker_id:  # claimed: a worker may be running it now
                events.stop_run(self)

        transaction.on_commit(announce, using=db)
        return before

    def free_thread(self, worker_id: str) -> bool:
        """The worker of a run cancelled mid-step has stopped: the thread is free."""
        mine = Run.objects.using(self._state.db).filter(
            pk=self.pk, status=Run.Status.CANCELLED, worker_id=worker_id
        )
        return bool(mine.update(lease_expires_at=None))

    def renew_lease(self, worker_id: str, lease: timedelta) -> bool:
        """Extend the lease; False when the run is no longer ours (it expired
        and another worker took it, or it was cancelled)."""
        mine = Run.objects.using(self._state.db).filter(
            pk=self.pk, status=Run.Status.RUNNING, worker_id=worker_id
        )
        return bool(mine.update(lease_expires_at=timezone.now() + lease))

    def finish(self, worker_id: str, status: str, *, error: str = "", traceback: str = "") -> bool:
        """Record how the run ended, if this worker still holds it; the
        instance then says so too (receivers of run_finished read it)."""
        mine = Run.objects.using(self._state.db).filter(
            pk=self.pk, status=Run.Status.RUNNING, worker_id=worker_id
        )
        fields = {
            "status": status,
            "finished_at": timezone.now(),
            "lease_expires_at": None,
            "error": error,
            "traceback": traceback,
        }
        if not mine.update(**fields):
            return False
        for name, value in fields.items():
            setattr(self, name, value)
        return True
