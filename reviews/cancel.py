"""Cancelling a run (pages and API)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from graphs.models import Run
from reviews.models import AuditEvent, DecisionRefused


def cancel_run(run: Run, *, user: Any, client_address: str | None = None) -> Run:
    """Stop a queued or running run (see Run.cancel), audited; refused
    (DecisionRefused) once it has stopped."""
    before = run.status
    with transaction.atomic():
        if not run.cancel(by=user):
            run.refresh_from_db()
            raise DecisionRefused(f"Run {run.pk} has already stopped: it is {run.status}.")
        AuditEvent.record(
            "run.cancelled",
            actor=user,
            thread_id=run.thread_id,
            graph_name=run.graph_name,
            run=run,
            before={"status": before},
            after={"status": run.status},
            client_address=client_address,
        )
    return run
