"""API tokens: expiry, last use, issue from the command line, admin."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.models import ApiToken, AuditEvent


def tasks(key: str) -> int:
    return Client().get("/api/tasks", HTTP_AUTHORIZATION=f"Bearer {key}").status_code


def test_an_expired_token_is_refused(rita):
    token, key = ApiToken.issue(rita, "nightly", expires_in=timedelta(days=1))
    assert token.expires_at > timezone.now() and not token.expired
    assert ApiToken.user_for(key) == rita and tasks(key) == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ApiToken.user_for(key) is None and tasks(key) == 401
    token.refresh_from_db()
    assert token.expired


def test_a_token_without_expiry_works_until_revoked_and_records_its_use(rita):
    token, key = ApiToken.issue(rita, "forever")
    assert token.expires_at is None and token.last_used_at is None
    assert tasks(key) == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    with CaptureQueriesContext(connection) as queries:  # used again within the minute
        assert ApiToken.user_for(key) == rita
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert ApiToken.user_for(key) is None


def test_create_api_token_prints_a_key_that_expires(rita):
    out, err = io.StringIO(), io.StringIO()
    earliest = timezone.now() + timedelta(days=30)
    call_command(
        "create_api_token", "rita", "--name=ci", "--expires-in=30d", stdout=out, stderr=err
    )
    latest = timezone.now() + timedelta(days=30)
    key = out.getvalue().strip()
    token = ApiToken.objects.get(name="ci")
    assert earliest <= token.expires_at <= latest and "It expires at" in err.getvalue()
    assert ApiToken.user_for(key) == rita and key.startswith(token.prefix)
    # A working key for someone is in the trail, its issuer the system.
    (issued,) = AuditEvent.objects.filter(action="token.changed")
    assert (issued.actor_name, issued.before) == ("", None)
    assert issued.after["user"] == "rita" and issued.after["prefix"] == token.prefix

    call_command("create_api_token", "rita", stdout=io.StringIO(), stderr=io.StringIO())
    assert ApiToken.objects.get(name="script").expires_at is None
    for bad in ("30", "0d", "30x", "-1d"):
        with pytest.raises(CommandError, match=r"--expires-in: .* is not a duration"):
            call_command("create_api_token", "rita", f"--expires-in={bad}")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("create_api_token", "nobody", "--expires-in=12h")


def test_admin_lists_tokens_and_can_end_one(rita):
    token, key = ApiToken.issue(rita, "deploy bot", expires_in=timedelta(weeks=2))
    ApiToken.user_for(key)  # used once
    admin = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
    client = Client()
    client.force_login(admin)
    listing = client.get(reverse("admin:reviews_apitoken_changelist")).content.decode()
    for column in ("Prefix", "Created at", "Last used at", "Expires at", "Revoked at"):
        assert column in listing
    assert token.prefix in listing and "deploy bot" in listing
    assert client.get(reverse("admin:reviews_apitoken_add")).status_code == 403

    change = reverse("admin:reviews_apitoken_change", args=[token.pk])
    assert 'name="expires_at_0"' in client.get(change).content.decode()
    yesterday = timezone.localtime() - timedelta(days=1)
    response = client.post(
        change,
        {
            "expires_at_0": yesterday.strftime("%Y-%m-%d"),
            "expires_at_1": yesterday.strftime("%H:%M:%S"),
            "revoked_at_0": "",
            "revoked_at_1": "",
        },
    )
    assert response.status_code == 302
    assert ApiToken.user_for(key) is None
