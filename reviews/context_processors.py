from functools import cache

from django.http import HttpRequest

from reviews.access import pending_count as count_pending


def queue(request: HttpRequest) -> dict:
    """The pending count in the navigation bar (kept live over the websocket).
    A callable: counted only where a template shows it (base.html), not for
    every partial rendered with the request."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}

    @cache
    def pending_count() -> int:
        return count_pending(request.user)

    return {"pending_count": pending_count}
