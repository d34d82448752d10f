"""Actions on the Agent Server API's assistants: change one (a new version),
set an earlier version as its latest, delete it. Every run that names an
assistant runs with what it says, so each change is audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agent_server import shapes
from agent_server.models import Assistant, AssistantVersion
from reviews.emit import emit

FIELDS = ("graph_id", "name", "description", "config", "context", "metadata")


def change(
    row: Assistant, changes: dict[str, Any], *, user: Any, client_address: str | None = None
) -> Assistant:
    """A new version with these fields changed; the others stay as they were."""
    with transaction.atomic():
        row = Assistant.objects.select_for_update().get(pk=row.pk)
        before = _audited(row)
        latest = row.versions.order_by("-version").values_list("version", flat=True).first()
        for name, value in changes.items():
            setattr(row, name, value)
        row.version = (latest or 0) + 1
        row.updated_at = timezone.now()
        row.save()
        row.add_version()
        _emit(row, before, _audited(row), user, client_address)
    return row


def set_latest(
    row: Assistant, version: AssistantVersion, *, user: Any, client_address: str | None = None
) -> Assistant:
    with transaction.atomic():
        row = Assistant.objects.select_for_update().get(pk=row.pk)
        before = _audited(row)
        for name in FIELDS:
            setattr(row, name, getattr(version, name))
        row.version = version.version
        row.updated_at = timezone.now()
        row.save()
        _emit(row, before, _audited(row), user, client_address)
    return row


def delete(row: Assistant, *, user: Any, client_address: str | None = None) -> None:
    with transaction.atomic():
        _emit(row, _audited(row), None, user, client_address)
        row.delete()


def _audited(row: Assistant) -> dict[str, Any]:
    """The assistant as the API shows it, but for its times (the row's own)."""
    return {k: v for k, v in shapes.assistant(row).items() if not k.endswith("_at")}


def _emit(row: Assistant, before, after, user: Any, client_address: str | None) -> None:
    emit(
        "assistant.changed",
        actor=user,
        graph_name=row.graph_id,
        before=before,
        after=after,
        client_address=client_address,
    )
