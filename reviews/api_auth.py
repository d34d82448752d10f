"""How /api/ knows who is calling: a bearer token from `manage.py create_api_token`.

Wrong tokens are counted per client address; past HITL_TOKEN_FAILURE_LIMIT in
HITL_TOKEN_FAILURE_WINDOW_SECONDS that address is answered 429 until the
window ends, right token or not, without a database lookup. The count lives
in the cache: per process by default, shared when REDIS_URL is set.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from reviews.models import ApiToken


class TokenAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> Any:
        if failures(request) >= settings.HITL_TOKEN_FAILURE_LIMIT:
            raise HttpError(
                429,
                f"Too many wrong API tokens from {request.META.get('REMOTE_ADDR') or 'your address'}: "
                f"wait up to {settings.HITL_TOKEN_FAILURE_WINDOW} seconds before trying again.",
            )
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
        else:
            count_failure(request)
        return user


def _key(request: HttpRequest) -> str:
    return f"hitl:api-token-failures:{request.META.get('REMOTE_ADDR') or '-'}"


def failures(request: HttpRequest) -> int:
    return int(cache.get(_key(request), 0))


def count_failure(request: HttpRequest) -> None:
    """A fixed window that opens with the first failure: add() sets the
    expiry once, incr() keeps it."""
    key = _key(request)
    cache.add(key, 0, timeout=settings.HITL_TOKEN_FAILURE_WINDOW)
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=settings.HITL_TOKEN_FAILURE_WINDOW)
