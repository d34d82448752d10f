"""Keys from `create_api_token` open /langgraph/ as x-api-key or as a bearer
token; anything else is refused as LangGraph's server refuses it."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import AuthenticationError


def test_without_a_key_the_api_answers_401_with_a_detail(served):
    response = httpx.post(f"{served.api_url}/threads/search", json={})
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing API key: send it as the x-api-key header."}


def test_a_wrong_key_is_refused_through_the_sdk(served):
    client = get_sync_client(url=served.api_url, api_key="not-a-key")
    with pytest.raises(AuthenticationError):
        client.threads.search()


def test_a_bearer_token_is_accepted_like_x_api_key(served, api_key):
    response = httpx.post(
        f"{served.api_url}/threads/search",
        json={},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 200, response.text


def test_info_and_ok_answer_a_client_that_connects(served, api_key):
    headers = {"x-api-key": api_key}
    info = httpx.get(f"{served.api_url}/info", headers=headers).json()
    assert info["flags"]["assistants"] is True
    assert info["flags"]["crons"] is False
    assert httpx.get(f"{served.api_url}/ok", headers=headers).json() == {
        "ok": True,
        "services": {},
    }
    missing = httpx.get(f"{served.api_url}/no/such/route", headers=headers)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
