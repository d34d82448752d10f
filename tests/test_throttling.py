"""Wrong passwords and wrong API tokens are throttled, through real requests."""

from __future__ import annotations

import ipaddress

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from reviews.models import ApiToken

PASSWORD = "pw-rita-123"


@pytest.fixture
def rita(transactional_db):
    return get_user_model().objects.create_user("rita", password=PASSWORD)


def sign_in(client: Client, password: str, **extra):
    return client.post("/accounts/login/", {"username": "rita", "password": password}, **extra)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_wrong_passwords_lock_the_sign_in_then_the_right_one_waits(rita):
    client = Client()
    for _ in range(2):
        response = sign_in(client, "guess")
        assert response.status_code == 200 and "didn't match" in response.text
    locked = sign_in(client, "guess")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text and "Wait, then try again" in locked.text
    assert "0:15:00" in locked.text  # how long, from AXES_COOLOFF_TIME

    # The right password no longer gets in from this address...
    again = sign_in(client, PASSWORD)
    assert again.status_code == 429 and "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302
    # ...while the same account from another address, and a test's
    # force_login, still work.
    elsewhere = Client()
    assert sign_in(elsewhere, PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302
    forced = Client()
    forced.force_login(rita)
    assert forced.get("/").status_code == 200

    # An administrator lifts the pause (axes_reset), and the right password works.
    AccessAttempt.objects.all().delete()
    assert sign_in(client, PASSWORD).status_code == 302


def test_a_right_password_resets_the_count(rita):
    client = Client()
    for _ in range(4):
        assert sign_in(client, "guess").status_code == 200
    assert sign_in(client, PASSWORD).status_code == 302
    other = Client()
    for _ in range(4):
        assert sign_in(other, "guess").status_code == 200
    assert sign_in(other, PASSWORD).status_code == 302


def api(key: str, address: str = "127.0.0.1"):
    return Client().get("/api/tasks", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address)


@override_settings(HITL_TOKEN_FAILURE_LIMIT=3)
def test_wrong_api_tokens_are_answered_429_per_address(rita):
    _, key = ApiToken.issue(rita, "tests")
    assert api(key).status_code == 200
    for _ in range(3):
        assert api("wrong-token").status_code == 401
    refused = api("wrong-token")
    assert refused.status_code == 429
    assert "Too many wrong API tokens from 127.0.0.1" in refused.json()["detail"]
    # The right token waits too: the address, not the token, is throttled.
    assert api(key).status_code == 429
    # Another address is not held up by this one.
    assert api(key, "198.51.100.7").status_code == 200
    # Requests without a token are not counted, and still get 401.
    assert Client().get("/api/tasks", REMOTE_ADDR="198.51.100.8").status_code == 401


@override_settings(AXES_FAILURE_LIMIT=2, HITL_TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")])
def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(rita):
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    guesser = Client()
    for _ in range(2):
        sign_in(guesser, "guess", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert (
        sign_in(guesser, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy).status_code == 429
    )
    # Another client through the same proxy signs in.
    colleague = Client()
    assert (
        sign_in(colleague, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy).status_code
        == 302
    )
    # A forged header from outside the proxy changes nothing: counted by its address.
    forger = Client()
    for _ in range(2):
        sign_in(forger, "guess", HTTP_X_FORWARDED_FOR="192.0.2.1", REMOTE_ADDR="198.51.100.99")
    assert sign_in(forger, PASSWORD, REMOTE_ADDR="198.51.100.99").status_code == 429
