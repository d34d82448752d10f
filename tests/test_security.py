"""What every response carries and what input is refused before any view runs:
the Content-Security-Policy, plain error pages, the client's address behind a
trusted proxy, bodies that are too large and NUL characters."""

from __future__ import annotations

import ipaddress
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory, override_settings
from django.views.defaults import server_error

from graphs.models import Run
from reviews.models import ApiToken, AuditEvent


@pytest.fixture
def rita(transactional_db):
    return get_user_model().objects.create_user("rita", password="pw-rita-123")


@pytest.fixture
def as_rita(rita) -> Client:
    client = Client()
    client.force_login(rita)
    return client


@pytest.fixture
def bearer(rita) -> dict[str, str]:
    _, key = ApiToken.issue(rita, "tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_every_response_carries_a_script_policy_without_inline_or_eval(as_rita, bearer):
    anonymous = Client()
    for response in (
        anonymous.get("/accounts/login/"),
        anonymous.get("/no-such-page/"),
        anonymous.get("/static/css/site.css"),
        as_rita.get("/"),
        as_rita.get("/queue/"),
        Client().get("/api/tasks", **bearer),
    ):
        assert response.status_code in (200, 404), response
        directives = policy(response)
        assert directives["script-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]


def test_pages_hold_no_inline_script_or_event_handler(as_rita):
    page = as_rita.get("/").text
    assert "<script>" not in page and "hx-on" not in page and " onclick=" not in page
    assert '"allowEval": false' in page


def test_a_404_names_no_urls_and_a_500_shows_no_settings(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Not found (404)" in response.text
    for leak in ("urlpatterns", "URLconf", "admin/", "api/", "queue/"):
        assert leak not in response.text

    failed = server_error(RequestFactory().get("/"))
    assert failed.status_code == 500
    text = failed.content.decode()
    assert "Something went wrong (500)" in text
    assert "SECRET_KEY" not in text and "Traceback" not in text and "SELECT" not in text


def start_run(headers: dict, **extra):
    body = json.dumps({"graph": "drafting", "input": {"topic": "proxied"}})
    return Client().post("/api/runs", body, content_type="application/json", **headers, **extra)


@pytest.mark.parametrize(
    ("peer", "forwarded", "recorded"),
    [
        # The proxy's peer is the client; hops further left are the client's say.
        ("10.0.0.5", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        # A chain of trusted proxies is walked through.
        ("10.0.0.5", "203.0.113.9, 10.0.0.7", "203.0.113.9"),
        # Not from a trusted proxy: the header is anyone's, and ignored.
        ("198.51.100.4", "203.0.113.9", "198.51.100.4"),
        # A hop that is not an address stops the walk at the last good one.
        ("10.0.0.5", "203.0.113.9, bogus", "10.0.0.5"),
    ],
)
def test_the_audit_trail_records_the_client_behind_a_trusted_proxy(
    bearer, peer, forwarded, recorded
):
    with override_settings(HITL_TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")]):
        response = start_run(bearer, REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert response.status_code == 201, response.content
    event = AuditEvent.objects.get(action="run.started")
    assert event.client_address == recorded


def test_no_trusted_proxy_by_default(bearer):
    response = start_run(bearer, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 201
    assert AuditEvent.objects.get(action="run.started").client_address == "10.0.0.5"


def test_a_body_over_the_limit_gets_413_and_changes_nothing(as_rita, bearer):
    big = json.dumps({"graph": "drafting", "input": {"topic": "x" * 3_000_000}})
    response = Client().post("/api/runs", big, content_type="application/json", **bearer)
    assert response.status_code == 413
    assert "at most 2,621,440" in response.json()["detail"]

    page = as_rita.post("/graphs/drafting/start/", {"title": "t", "raw": "x" * 3_000_000})
    assert page.status_code == 413
    assert "Request too large (413)" in page.text
    assert not Run.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/queue/?q=%00", None),
        ("get", "/threads/a%00b/", None),
        ("post", "/graphs/drafting/start/", {"title": "a\x00b", "in-topic": "t"}),
        ("post", "/queue/bulk/", {"tasks": "1", "action": "appro\x00ve"}),
    ],
)
def test_nul_in_a_page_request_is_refused_with_400(as_rita, method, url, data):
    response = getattr(as_rita, method)(url, data) if data else getattr(as_rita, method)(url)
    assert response.status_code == 400
    assert "NUL character" in response.text
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/api/threads/%00", None, 400),
        ("/api/tasks?q=%00", None, 400),
        ("/api/runs", '{"graph": "drafting", "input": {"topic": "a\\u0000b"}}', 422),
        ("/api/runs", '{"graph": "drafting", "input": {"topic": "' + "\x00" + '"}}', 422),
        ("/api/runs", '{"graph": "drafting", "title": ' + "[" * 100_000, 422),
        ("/api/runs", '{"graph": "drafting", "input": {"n": 99999999999999999999999}}', 422),
    ],
)
def test_api_input_a_database_would_refuse_gets_a_4xx_with_a_detail(bearer, url, body, status):
    client = Client()
    if body is None:
        response = client.get(url, **bearer)
    else:
        response = client.post(url, body, content_type="application/json", **bearer)
    assert response.status_code == status
    assert response.json()["detail"]
    assert not Run.objects.exists()


def test_an_escaped_backslash_before_u0000_is_not_a_nul(bearer):
    body = json.dumps({"graph": "drafting", "input": {"topic": "C:\\u0000dir"}})
    assert "\\\\u0000" in body
    assert (
        Client().post("/api/runs", body, content_type="application/json", **bearer).status_code
        == 201
    )


def test_an_address_over_8_kib_gets_414(as_rita, bearer):
    page = as_rita.get("/queue/", {"q": "x" * 9000})
    assert page.status_code == 414 and "Address too long (414)" in page.text
    api = Client().get("/api/tasks", {"q": "x" * 9000}, **bearer)
    assert api.status_code == 414 and "at most 8,192" in api.json()["detail"]
    assert as_rita.get("/queue/", {"q": "x" * 8000}).status_code == 200


@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    HITL_TRUSTED_PROXIES=[ipaddress.ip_network("10.0.0.0/8")],
)
def test_the_scheme_is_believed_only_from_a_trusted_proxy(transactional_db):
    https = {"HTTP_X_FORWARDED_PROTO": "https"}
    from_proxy = Client().get("/accounts/login/", REMOTE_ADDR="10.0.0.5", **https)
    assert from_proxy.status_code == 200
    forged = Client().get("/accounts/login/", REMOTE_ADDR="198.51.100.4", **https)
    assert forged.status_code == 301
    assert forged.headers["Location"] == "https://testserver/accounts/login/"
