"""The middleware stack runs in one mode: one pass in the request's thread."""

from __future__ import annotations

import logging

from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings


@override_settings(DEBUG=True)  # Django names each adaptation only in debug mode
def test_the_stack_crosses_to_the_event_loop_once_at_its_innermost(caplog):
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()
    crossings = [
        r.getMessage() for r in caplog.records if "adapted for middleware" in r.getMessage()
    ]
    # Every middleware outside the innermost runs sync, in the request's
    # thread; the view's handler is reached from there.
    assert crossings == [
        "Asynchronous handler adapted for middleware hitl_site.sync_stack.sync_stack."
    ]
