"""Run claims, per-thread ordering and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.utils import timezone

from graphs.models import Run, Thread
from graphs.signals import run_queued

LEASE = timedelta(seconds=30)


def queue(alias: str, thread_id: str | None = None, **fields) -> Run:
    return Run.enqueue(
        graph_name="drafting", kind=Run.Kind.START, thread_id=thread_id, using=alias, **fields
    )


def test_enqueue_creates_the_thread_and_wakes_after_commit(db_alias):
    woken: list[int] = []

    def receiver(sender, run, **kwargs):
        woken.append(run.pk)

    run_queued.connect(receiver)
    try:
        run = queue(db_alias, payload={"topic": "x"}, title="A draft")
    finally:
        run_queued.disconnect(receiver)
    assert woken == [run.pk]
    thread = Thread.objects.using(db_alias).get(pk=run.thread_id)
    assert (thread.graph_name, thread.title) == ("drafting", "A draft")
    assert run.status == Run.Status.QUEUED and run.payload == {"topic": "x"}


def test_a_run_asked_for_by_nobody_in_particular_records_nobody(db_alias):
    assert queue(db_alias, requested_by=AnonymousUser()).requested_by is None
    stored = Run.objects.using(db_alias).get(requested_by__isnull=True)
    assert stored.kind == Run.Kind.START


def test_claims_oldest_first_and_one_run_per_thread_at_a_time(db_alias):
    runs = Run.objects.using(db_alias)
    first = queue(db_alias, thread_id="t-1")
    second = queue(db_alias, thread_id="t-1")
    other = queue(db_alias, thread_id="t-2")

    claimed = runs.claim_next("w1", LEASE)
    assert claimed.pk == first.pk and claimed.status == Run.Status.RUNNING
    assert claimed.worker_id == "w1" and claimed.attempts == 1 and claimed.started_at
    # t-1 is busy, so its second run waits; t-2's run is next.
    assert runs.claim_next("w2", LEASE).pk == other.pk
    assert runs.claim_next("w3", LEASE) is None

    assert claimed.finish("w1", Run.Status.SUCCEEDED)
    assert runs.claim_next("w3", LEASE).pk == second.pk
    assert runs.get(pk=first.pk).finished_at is not None


def test_concurrent_workers_claim_each_run_exactly_once(db_alias):
    runs = Run.objects.using(db_alias)
    queued = {queue(db_alias, thread_id=f"c-{i}").pk for i in range(12)}
    # Two runs on one thread: only one of them may run at a time.
    queued |= {queue(db_alias, thread_id="shared").pk, queue(db_alias, thread_id="shared").pk}
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        try:
            start.wait()
            while (run := runs.claim_next(name, LEASE)) is not None:
                with lock:
                    claims.append((name, run.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [pk for _, pk in claims]
    assert len(claimed) == len(set(claimed)) == len(queued) - 1
    waiting = runs.get(status=Run.Status.QUEUED)
    assert waiting.thread_id == "shared"
    assert runs.filter(thread_id="shared", status=Run.Status.RUNNING).count() == 1


def test_expired_lease_is_requeued_and_the_old_worker_loses_it(db_alias):
    runs = Run.objects.using(db_alias)
    run = queue(db_alias)
    claimed = runs.claim_next("dead-worker", LEASE)
    assert runs.requeue_expired() == 0  # lease still valid
    runs.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runs.requeue_expired() == 1

    again = runs.claim_next("live-worker", LEASE)
    assert again.pk == run.pk and again.attempts == 2
    assert not claimed.renew_lease("dead-worker", LEASE)
    assert not claimed.finish("dead-worker", Run.Status.SUCCEEDED)
    assert again.renew_lease("live-worker", LEASE)
    assert runs.get(pk=run.pk).status == Run.Status.RUNNING


def test_a_cancelled_queued_run_never_starts(db_alias):
    run = queue(db_alias)
    assert run.cancel()
    assert not run.cancel()  # already stopped: nothing changes
    stored = Run.objects.using(db_alias).get(pk=run.pk)
    assert (stored.status, stored.error) == (Run.Status.CANCELLED, "Cancelled by the system.")
    assert stored.finished_at is not None and not stored.stopping
    assert Run.objects.using(db_alias).claim_next("w1", LEASE) is None


def test_a_run_cancelled_mid_step_keeps_its_thread_until_its_worker_lets_go(db_alias):
    runs = Run.objects.using(db_alias)
    first = queue(db_alias, thread_id="busy")
    second = queue(db_alias, thread_id="busy")
    claimed = runs.claim_next("w1", LEASE)
    assert claimed.pk == first.pk
    assert claimed.cancel()
    claimed.refresh_from_db()
    assert claimed.stopping and not claimed.renew_lease("w1", LEASE)
    # Its worker may still be on a step: the thread is not free for the next run.
    assert Thread.objects.using(db_alias).get(pk="busy").active_run().pk == first.pk
    assert runs.claim_next("w2", LEASE) is None
    assert claimed.free_thread("w1")
    assert not runs.get(pk=first.pk).stopping
    assert runs.claim_next("w2", LEASE).pk == second.pk


def test_a_stopping_run_whose_worker_died_frees_its_thread_when_the_lease_ends(db_alias):
    runs = Run.objects.using(db_alias)
    first = queue(db_alias, thread_id="orphan")
    second = queue(db_alias, thread_id="orphan")
    runs.claim_next("dead-worker", LEASE).cancel()
    assert runs.claim_next("w2", LEASE) is None
    runs.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runs.requeue_expired() == 0  # a cancelled run is never run again
    assert runs.claim_next("w2", LEASE).pk == second.pk


def test_a_stopping_run_says_so(db_alias):
    run = queue(db_alias, thread_id="says")
    claimed = Run.objects.using(db_alias).claim_next("w1", LEASE)
    assert claimed.phase == "running"
    claimed.cancel()
    assert claimed.phase == "stopping"
    claimed.free_thread("w1")
    claimed.refresh_from_db()
    assert claimed.phase == "cancelled" and run.pk == claimed.pk
