from django.http import HttpRequest

from reviews.access import visible_tasks
from reviews.models import ReviewTask


def queue(request: HttpRequest) -> dict:
    """The pending count in the navigation bar (kept live over the websocket)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"pending_count": visible_tasks(request.user, ReviewTask.objects.pending()).count()}
