"""The OpenAPI document and the docs: for a signed-in user or an API token."""

from __future__ import annotations

from django.test import Client

from reviews.models import ApiToken


def test_openapi_document_takes_a_bearer_token(rita):
    _, key = ApiToken.issue(rita, name="docs")
    client = Client()
    response = client.get("/api/openapi.json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200 and response.json()["info"]["title"] == "HITL review API"
    wrong = client.get("/api/openapi.json", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401  # never the sign-in page for a script
    page = client.get("/api/openapi.json")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")


def test_docs_are_served_from_our_own_static_files(as_rita):
    html = as_rita.get("/api/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
