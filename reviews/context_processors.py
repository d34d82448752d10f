from django.http import HttpRequest

from reviews.models import ReviewTask


def queue(request: HttpRequest) -> dict:
    """The pending count in the navigation bar (kept live over the websocket)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"pending_count": ReviewTask.objects.pending().count()}
