"""Request middleware of the site itself: who the client is, and input refused
before any view reads it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string

from reviews import json_input

Middleware = Callable[[HttpRequest], HttpResponse]

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Path and query together; no page or API route needs more (nginx's default
# request-line buffer is the same 8 KiB).
MAX_URL_LENGTH = 8192
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# A `\u0000` escape that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def trusted_proxies(get_response: Middleware) -> Middleware:
    """REMOTE_ADDR becomes the client's address when a trusted proxy says who
    that is. Every view and the audit trail read REMOTE_ADDR; X-Forwarded-For
    is believed only from HITL_TRUSTED_PROXIES, since anyone can send one."""

    def middleware(request: HttpRequest) -> HttpResponse:
        networks = settings.HITL_TRUSTED_PROXIES
        peer = request.META.get("REMOTE_ADDR", "")
        if _within(peer, networks):
            client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""), networks)
            if client:
                request.META["REMOTE_ADDR"] = client
        else:
            # Read as the scheme (SECURE_PROXY_SSL_HEADER) only from a proxy.
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        return get_response(request)

    return middleware


def forwarded_client(header: str, networks) -> str | None:
    """The address just before the nearest hop that is not a trusted proxy,
    walking X-Forwarded-For from the right: hops further left were written by
    the client and may be anything."""
    client = None
    for hop in reversed([h.strip() for h in header.split(",") if h.strip()]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break
        client = str(address)
        if not _within(client, networks):
            break
    return client


def _within(address: str, networks) -> bool:
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def request_guard(get_response: Middleware) -> Middleware:
    """Input that no view could use is answered here with a 4xx, before a view
    or the API framework reads it and fails with a 500 instead:

    - an address over MAX_URL_LENGTH: 414;
    - a body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 (the app takes no uploads);
    - a NUL character in the path, query or form fields (400) or a JSON
      body (422).
      PostgreSQL refuses NUL in text and jsonb, so any such value that
      reached a query or a saved row would fail there; refusing it once, here,
      covers every route, present and future;
    - a JSON body that json_input refuses for what it holds (nested too
      deep, numbers too large): 422, where json.loads would raise
      RecursionError or a database column overflow.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        refusal = _refusal(request)
        return refusal if refusal is not None else get_response(request)

    return middleware


def _refusal(request: HttpRequest) -> HttpResponse | None:
    length = len(request.path) + len(request.META.get("QUERY_STRING", ""))
    if length > MAX_URL_LENGTH:
        return refuse(
            request,
            414,
            f"The address is {length:,} characters long; at most {MAX_URL_LENGTH:,} are accepted.",
        )
    if "\x00" in request.path:
        return refuse(request, 400, "The address holds a NUL character.")
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
        return refuse(request, 400, "The query holds a NUL character.")
    if request.method not in BODY_METHODS:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return refuse(request, 400, "The Content-Length header is not a number.")
    if length > limit:
        return too_large(request, length)
    content_type = request.content_type or ""
    try:
        if content_type in FORM_TYPES:
            if _form_has_nul(request):
                return refuse(request, 400, "A form field holds a NUL character.")
            return None
        body = request.body
    except RequestDataTooBig:
        return too_large(request, length)
    except (SuspiciousOperation, UnreadablePostError, MultiPartParserError) as exc:
        return refuse(request, 400, f"The request body could not be read: {exc}")
    if len(body) > limit:  # sent without a Content-Length
        return too_large(request, len(body))
    if body and (_is_json(content_type) or request.path.startswith("/api/")):
        # 422, as the API answers any body it cannot use, on every route.
        if b"\x00" in body or _NUL_ESCAPE.search(body):
            return refuse(request, 422, "The JSON body holds a NUL character.")
        try:
            json_input.parse_json(body, max_chars=limit)
        except json_input.JSONSyntaxError:
            pass  # not JSON at all: each route says so in its own words
        except ValueError as exc:
            return refuse(request, 422, f"The JSON body was refused: {exc}")
    elif b"\x00" in body:
        return refuse(request, 400, "The request body holds a NUL character.")
    return None


def _form_has_nul(request: HttpRequest) -> bool:
    for key, values in request.POST.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return True
    return any(
        "\x00" in key or "\x00" in (upload.name or "")
        for key, uploads in request.FILES.lists()
        for upload in uploads
    )


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def too_large(request: HttpRequest, size: int) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return refuse(
        request, 413, f"The request body is {size:,} bytes; at most {limit:,} are accepted."
    )


def refuse(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    """JSON under /api/, a page elsewhere. The page is rendered without the
    request: nothing about the user (not even who they are) is known yet."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status)
    return HttpResponse(render_to_string(f"{status}.html", {"detail": detail}), status=status)
