"""Sign-in throttling, django-axes' way, for sign-ins that come with a request."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes refuses every authenticate() without a request. Only a sign-in
    over HTTP can be hammered, and every one of those (the login page, the
    admin's) passes its request; a shell or a test's `client.login()` has
    none and is let through to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs: Any):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str | None:
    """The address axes counts failures for: REMOTE_ADDR, as
    hitl_site.middleware.trusted_proxies leaves it, never a forwarded header
    of the client's own making (axes would read those through django-ipware
    if that were ever installed)."""
    return request.META.get("REMOTE_ADDR") or None
