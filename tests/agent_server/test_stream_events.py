"""A resumable run's kept events go RESUMABLE_STREAM_TTL_SECONDS after the run
ended, and not before, trimmed by the worker's side duties; a run still
going keeps all of its events."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from agent_server.models import StreamEvent
from graphs.duties import sweep
from graphs.models import Run


def _run_with_events(status: str, ended_ago: timedelta | None) -> Run:
    run = Run.enqueue(graph_name="support", kind=Run.Kind.START, payload={})
    finished_at = timezone.now() - ended_ago if ended_ago is not None else None
    Run.objects.filter(pk=run.pk).update(status=status, finished_at=finished_at)
    for seq, event in enumerate(["metadata", "values"], start=1):
        StreamEvent.objects.create(run=run, seq=seq, event=event, data="{}")
    return run


@override_settings(RESUMABLE_STREAM_TTL_SECONDS=60)
def test_events_are_kept_for_the_ttl_after_their_run_ended(db):
    expired = _run_with_events(Run.Status.SUCCEEDED, timedelta(seconds=61))
    recent = _run_with_events(Run.Status.INTERRUPTED, timedelta(seconds=59))
    running = _run_with_events(Run.Status.RUNNING, None)
    sweep("side-duties")
    kept = set(StreamEvent.objects.values_list("run_id", flat=True))
    assert kept == {recent.pk, running.pk} and expired.pk not in kept
