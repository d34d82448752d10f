"""Who is calling /langgraph/, and the error shape every route of it answers with.

LangGraph's clients send the key of `manage.py create_api_token` as
`x-api-key`; scripts written for /api/ send it as `Authorization: Bearer`.
Both are accepted, and wrong keys count towards the same per-address limit as
/api/'s. Errors are `{"detail": "..."}` with the status LangGraph's server
gives, so the SDK raises the same exceptions against either server.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from reviews import api_auth
from reviews.actions import ActionRefused
from reviews.models import ApiToken


class ApiError(Exception):
    """An answer other than success, with the status and detail to send."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class KeyRefused(Exception):
    """Raised by `authenticate_or_refuse`: the refusal to send instead."""

    def __init__(self, response: HttpResponse):
        super().__init__(response.status_code)
        self.response = response


def respond(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    """JSON as LangGraph's server writes it (orjson: datetimes as ISO 8601,
    UUIDs as strings, non-str dict keys allowed)."""
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=_default)
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> HttpResponse:
    return respond({"detail": detail}, status=status, headers=headers)


def payload(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 422 otherwise."""
    if not request.body:
        return {}
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, f"Invalid JSON body: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ApiError(422, "The request body must be a JSON object.")
    return data


def presented_key(request: HttpRequest) -> str | None:
    if key := request.headers.get("x-api-key", "").strip():
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(request: HttpRequest) -> HttpResponse | None:
    """Set request.user from the key, or the refusal to send instead.

    A right key costs one lookup and no look at the failure count (on
    PostgreSQL + Redis a round trip to Redis on every request): the count is
    asked first only for an address this process has seen give a wrong key
    within the window, so such an address waits, right key or not, as on
    /api/. A wrong key is counted, and answered 429 once past the limit."""
    address = request.META.get("REMOTE_ADDR") or ""
    suspect = _suspected(address)
    if suspect and api_auth.failures(request) >= settings.HITL_TOKEN_FAILURE_LIMIT:
        return _too_many(request)
    key = presented_key(request)
    if key is None:
        return error(401, "Missing API key: send it as the x-api-key header.")
    user = ApiToken.user_for(key)
    if user is None:
        _suspect(address)
        if not suspect and api_auth.failures(request) >= settings.HITL_TOKEN_FAILURE_LIMIT:
            return _too_many(request)
        api_auth.count_failure(request)
        return error(401, "Invalid API key.")
    request.user = user
    return None


def _too_many(request: HttpRequest) -> HttpResponse:
    return error(
        429,
        f"Too many wrong API keys from {request.META.get('REMOTE_ADDR') or 'your address'}: "
        f"wait up to {settings.HITL_TOKEN_FAILURE_WINDOW} seconds before trying again.",
    )


# Addresses that gave this process a wrong key, until the failure window
# that key counted in is surely over (monotonic seconds). Another
# process's count is heard once the address gives this one a wrong key too.
_suspects: dict[str, float] = {}
_suspects_lock = threading.Lock()
_SUSPECTS_KEPT = 10_000


def _suspected(address: str) -> bool:
    until = _suspects.get(address)
    return until is not None and until > time.monotonic()


def _suspect(address: str) -> None:
    now = time.monotonic()
    with _suspects_lock:
        _suspects.pop(address, None)  # to the end: the oldest go first when full
        if len(_suspects) >= _SUSPECTS_KEPT:
            for gone in [a for a, until in _suspects.items() if until <= now]:
                del _suspects[gone]
            while len(_suspects) >= _SUSPECTS_KEPT:
                del _suspects[next(iter(_suspects))]
        _suspects[address] = now + settings.HITL_TOKEN_FAILURE_WINDOW


def _refusal(exc: Exception) -> HttpResponse:
    if isinstance(exc, KeyRefused):
        return exc.response
    if isinstance(exc, ApiError):
        return error(exc.status, exc.detail, exc.headers)
    if isinstance(exc, Http404):
        return error(404, str(exc) or "Not found")
    if isinstance(exc, ActionRefused):  # a run has the thread, or it moved on
        return error(exc.status, str(exc))
    assert isinstance(exc, PermissionDenied)
    return error(403, str(exc) or "Forbidden")


_REFUSED = (ApiError, Http404, PermissionDenied, ActionRefused, KeyRefused)


def endpoint(view: Callable[..., Any]) -> Callable[..., Any]:
    """A /langgraph/ view: called with request.user set from the key; raises
    ApiError, Http404, PermissionDenied or ActionRefused (409) to answer
    {"detail": ...}. Sync or
    async views alike (streams are async)."""
    if inspect.iscoroutinefunction(view):
        checks_key = getattr(view, "checks_key", False)

        @functools.wraps(view)
        async def async_wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not checks_key:
                refused = await sync_to_async(authenticate)(request)
                if refused is not None:
                    return refused
            else:
                # Nobody until the view checks the key: never the browser
                # session's user, on a route that takes no CSRF token.
                request.user = AnonymousUser()
            try:
                return await view(request, *args, **kwargs)
            except _REFUSED as exc:
                return _refusal(exc)

        return csrf_exempt(async_wrapped)

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = authenticate(request)
        if refused is not None:
            return refused
        try:
            return view(request, *args, **kwargs)
        except _REFUSED as exc:
            return _refusal(exc)

    return csrf_exempt(wrapped)


def authenticate_or_refuse(request: HttpRequest) -> None:
    """`authenticate` for a view marked `checks_key`, in its own first call
    to a request thread: a hop there and back costs as much as the check."""
    refused = authenticate(request)
    if refused is not None:
        raise KeyRefused(refused)


def checks_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Marks an async view that calls `authenticate_or_refuse` before
    anything else it does (`endpoint` then leaves the key to it)."""
    view.checks_key = True  # type: ignore[attr-defined]
    return view


def methods(**views: Callable[..., Any]) -> Callable[..., Any]:
    """One path, a view per HTTP method (GET/POST/PATCH/DELETE as LangGraph
    routes them), each already wrapped with `endpoint`; 405 for the rest."""
    allowed = {name.upper(): view for name, view in views.items()}

    def refuse() -> HttpResponse:
        return error(405, "Method Not Allowed", {"Allow": ", ".join(sorted(allowed))})

    if not any(inspect.iscoroutinefunction(view) for view in allowed.values()):

        @csrf_exempt
        def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            view = allowed.get(request.method or "")
            return refuse() if view is None else view(request, *args, **kwargs)

        return dispatch

    @csrf_exempt
    async def async_dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        view = allowed.get(request.method or "")
        if view is None:
            return refuse()
        if inspect.iscoroutinefunction(view):
            return await view(request, *args, **kwargs)
        return await sync_to_async(view)(request, *args, **kwargs)

    return async_dispatch
