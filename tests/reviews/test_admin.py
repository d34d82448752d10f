"""Admin shows tasks and the audit trail but does not change them."""

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from reviews.models import AuditEvent


def test_audit_trail_is_read_only_in_admin(transactional_db, rita):
    event = AuditEvent.record("task.decided", actor=rita, thread_id="t-1", after={"type": "accept"})
    admin = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    client = Client()
    client.force_login(admin)
    listing = client.get(reverse("admin:reviews_auditevent_changelist")).content.decode()
    assert "task.decided" in listing and "rita" in listing
    delete = reverse("admin:reviews_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:reviews_auditevent_add")).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
