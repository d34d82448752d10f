"""The audit trail: who may see it, filters, streamed exports, and proof that
nothing was changed after the fact."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.models import AuditEvent, AuditImmutable
from tests.reviews.conftest import pending, start

TRIGGER = "reviews_auditevent_immutable"
REFUND = {"messages": [{"role": "user", "content": "Please refund order A-1001, $120"}]}


@pytest.fixture
def as_admin(transactional_db) -> Client:
    admin = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    client = Client()
    client.force_login(admin)
    return client


def trail(rita, sam) -> list[AuditEvent]:
    return [
        AuditEvent.record("run.started", actor=rita, thread_id="t-1", graph_name="support"),
        AuditEvent.record(
            "task.decided",
            actor=sam,
            thread_id="t-1",
            graph_name="support",
            before={"tool": "refund", "args": {"amount": 120}},
            after={"type": "edit", "args": {"amount": 99}},
            client_address="10.0.0.7",
        ),
        AuditEvent.record("interrupt.raised", thread_id="t-2", graph_name="drafting"),
    ]


def test_reviewers_without_the_permission_are_refused(as_rita, client):
    assert as_rita.get(reverse("audit")).status_code == 403
    assert as_rita.get(reverse("audit_csv")).status_code == 403
    assert client.get(reverse("audit")).status_code == 302  # anonymous: sign in first


def test_filters_and_links(as_admin, rita, sam):
    first, decided, system = trail(rita, sam)
    get = lambda **q: as_admin.get(reverse("audit"), q).content.decode()  # noqa: E731
    html = get()
    assert all(f'id="audit-{e.pk}"' in html for e in (first, decided, system))
    assert html.index(f'id="audit-{system.pk}"') < html.index(f'id="audit-{first.pk}"')
    assert f'id="audit-{decided.pk}"' in get(actor="sam") and f'id="audit-{first.pk}"' not in get(
        actor="sam"
    )
    assert f'id="audit-{system.pk}"' in get(actor="system")
    assert f'id="audit-{first.pk}"' not in get(graph="drafting")
    assert f'id="audit-{system.pk}"' not in get(thread="t-1")
    assert f'id="audit-{decided.pk}"' in get(action="task.decided")
    assert f'id="audit-{decided.pk}"' in get(q="10.0.0.7") or f'id="audit-{decided.pk}"' in get(
        q="99"
    )
    today = timezone.localdate()
    assert f'id="audit-{first.pk}"' in get(since=str(today), until=str(today))
    assert f'id="audit-{first.pk}"' not in get(since=str(today + timedelta(days=1)))
    bad = as_admin.get(reverse("audit"), {"since": "yesterday"})
    assert bad.status_code == 422 and "is not a date" in bad.content.decode()
    assert reverse("thread", args=["t-1"]) in html


def test_exports_stream_the_filtered_view(as_admin, rita, sam):
    _, decided, _ = trail(rita, sam)
    response = as_admin.get(reverse("audit_csv"), {"graph": "support"})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["run.started", "task.decided"]
    assert json.loads(rows[1]["after"]) == {"args": {"amount": 99}, "type": "edit"}
    assert rows[1]["hash"] == decided.hash

    response = as_admin.get(reverse("audit_jsonl"), {"actor": "sam"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [decided.pk]
    assert json.loads(lines[0])["before"] == {"tool": "refund", "args": {"amount": 120}}
    assert as_admin.get(reverse("audit_csv"), {"until": "nope"}).status_code == 400


def test_the_orm_refuses_changes(rita, sam):
    event = trail(rita, sam)[0]
    event.action = "something.else"
    with pytest.raises(AuditImmutable):
        event.save()
    with pytest.raises(AuditImmutable):
        event.delete()
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "run.started"


def test_verify_audit_names_the_first_tampered_row(rita, sam):
    start("support", REFUND)  # the worker's stop adds to the chain too
    trail(rita, sam)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "verifies: 4 event(s)" in out.getvalue()
    decided = AuditEvent.objects.get(action="task.decided")
    with connection.cursor() as cursor:  # past the ORM (and the trigger), as an intruder would
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE reviews_auditevent DISABLE TRIGGER {TRIGGER}")
        cursor.execute(
            "UPDATE reviews_auditevent SET after = %s WHERE id = %s",
            ['{"type": "approve"}', decided.pk],
        )
    with pytest.raises(
        CommandError, match=f"audit event {decided.pk} does not verify: its content"
    ):
        call_command("verify_audit")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reviews_auditevent WHERE id = %s", [decided.pk])
    with pytest.raises(CommandError, match="link to the previous row is broken"):
        call_command("verify_audit")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE reviews_auditevent ENABLE TRIGGER {TRIGGER}")


@pytest.mark.postgres
def test_postgresql_trigger_refuses_update_and_delete(pg_alias, django_db_blocker):
    from django.db import DatabaseError, transaction

    from tests.conftest import _allow_queries

    with django_db_blocker.unblock(), _allow_queries(pg_alias):
        event = AuditEvent(action="run.started", thread_id="t-9", prev_hash="0" * 64, hash="x")
        event.save(using=pg_alias)
        for sql in (
            "UPDATE reviews_auditevent SET action = 'x' WHERE id = %s",
            "DELETE FROM reviews_auditevent WHERE id = %s",
        ):
            with (
                pytest.raises(DatabaseError, match="audit events are only ever added"),
                transaction.atomic(using=pg_alias),
                connections[pg_alias].cursor() as cursor,
            ):
                cursor.execute(sql, [event.pk])
        assert AuditEvent.objects.using(pg_alias).get(pk=event.pk).action == "run.started"
        with connections[pg_alias].cursor() as cursor:
            cursor.execute("TRUNCATE reviews_auditevent")


def test_decisions_are_in_the_trail_with_their_page(as_rita):
    thread = start("support", REFUND)
    (task,) = pending(thread)
    as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [("interrupt.raised", ""), ("task.decided", "rita")]
