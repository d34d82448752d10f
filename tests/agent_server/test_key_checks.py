"""Wrong keys to /langgraph/ are throttled per address as on /api/, and a
right key is let in without a look at the failure count."""

from __future__ import annotations

import orjson
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from redis.exceptions import ConnectionError as RedisUnreachable

from graphs.models import Run, Thread
from reviews.models import ApiToken
from tests.servers import free_port


@pytest.fixture
def key(transactional_db) -> str:
    user = get_user_model().objects.create_superuser("kim", "", None)
    return ApiToken.issue(user, "tests")[1]


def search(key: str | None, address: str = "127.0.0.1"):
    headers = {"HTTP_X_API_KEY": key} if key else {}
    return Client().post(
        "/langgraph/threads/search",
        b"{}",
        content_type="application/json",
        REMOTE_ADDR=address,
        **headers,
    )


@override_settings(HITL_TOKEN_FAILURE_LIMIT=3)
def test_wrong_keys_are_answered_429_per_address_and_the_right_key_waits_too(key):
    address = "198.51.100.40"
    assert search(key, address).status_code == 200
    for _ in range(3):
        assert search("wrong-key", address).status_code == 401
    refused = search("wrong-key", address)
    assert refused.status_code == 429
    assert f"Too many wrong API keys from {address}" in refused.json()["detail"]
    assert search(key, address).status_code == 429
    assert search(None, address).status_code == 429
    assert search(key, "198.51.100.41").status_code == 200


def test_a_right_key_is_let_in_without_asking_the_failure_count(key):
    """The count lives in a cache that can't be reached here (a Redis server
    nobody listens for): only a wrong key needs it."""
    unreachable = {
        **settings.CACHES,  # the sessions' cache stays as it is
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        },
    }
    with override_settings(CACHES=unreachable):
        assert search(key, "198.51.100.42").status_code == 200
        with pytest.raises(RedisUnreachable):
            search("wrong-key", "198.51.100.42")


@pytest.mark.parametrize("route", ["runs/wait", "runs/stream", "threads/t-1/runs/wait"])
@pytest.mark.parametrize("given", [None, "wrong-key"])
def test_waits_and_streams_check_the_key_before_making_anything(key, route, given):
    """These check the key in the same call that makes the run."""
    headers = {"HTTP_X_API_KEY": given} if given else {}
    response = Client().post(
        f"/langgraph/{route}",
        orjson.dumps({"assistant_id": "drafting", "input": {}, "if_not_exists": "create"}),
        content_type="application/json",
        REMOTE_ADDR="198.51.100.43",
        **headers,
    )
    assert response.status_code == 401
    detail = "Invalid API key." if given else "Missing API key: send it as the x-api-key header."
    assert orjson.loads(response.content) == {"detail": detail}
    assert not Run.objects.exists() and not Thread.objects.exists()
    # Bad JSON from a caller without a key is refused for the key, as before.
    garbled = Client().post(
        f"/langgraph/{route}", b"{", content_type="application/json", REMOTE_ADDR="198.51.100.43"
    )
    assert garbled.status_code == 401


def test_a_view_that_checks_its_own_key_never_runs_as_the_browser_session(key):
    """CSRF is off under /langgraph/: a signed-in browser's session must not
    stand in for a key, even in a view that forgets to check one."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth.models import AnonymousUser
    from django.http import JsonResponse
    from django.test import RequestFactory

    from agent_server.auth import checks_key, endpoint

    seen = []

    @endpoint
    @checks_key
    async def forgetful(request):
        seen.append(request.user)
        return JsonResponse({})

    request = RequestFactory().post("/langgraph/runs/wait")
    request.user = get_user_model().objects.get(username="kim")  # as the session sets it
    async_to_sync(forgetful)(request)
    assert isinstance(seen[0], AnonymousUser)
