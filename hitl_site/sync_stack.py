"""The innermost middleware: the whole stack runs in the request's thread.

Django runs each middleware in the mode of the one inside it, and crosses
between the event loop and the request's thread wherever two neighbours
differ. WhiteNoise and the site's own middleware are sync only and Django's
are both, so with Django's innermost the stack ran on the loop from
SessionMiddleware in, and each of their process_request and process_response
was a round trip to the thread: a dozen per request, each waiting its turn
for the interpreter under load. Sync only itself, this puts every middleware
outside it in sync mode: one pass in the thread, one crossing to the view.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def sync_stack(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    return get_response
