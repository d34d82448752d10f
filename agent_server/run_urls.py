"""Runs of LangGraph's Agent Server API (agent_server.runs), on a thread or stateless.

Thread ids may hold slashes, so the longer routes come first.
"""

from django.urls import path

from agent_server import runs
from agent_server.auth import endpoint, methods

urlpatterns = [
    path("runs/stream", methods(post=endpoint(runs.stream_view))),
    path("runs/wait", methods(post=endpoint(runs.wait_view))),
    path("runs/batch", methods(post=endpoint(runs.batch_view))),
    path("runs/cancel", methods(post=endpoint(runs.cancel_many_view))),
    path("runs", methods(post=endpoint(runs.create_view))),
    path(
        "threads/<path:thread_id>/runs/stream",
        methods(post=endpoint(runs.stream_view)),
    ),
    path("threads/<path:thread_id>/runs/wait", methods(post=endpoint(runs.wait_view))),
    path(
        "threads/<path:thread_id>/runs/<str:run_id>/join",
        methods(get=endpoint(runs.join_view)),
    ),
    path(
        "threads/<path:thread_id>/runs/<str:run_id>/stream",
        methods(get=endpoint(runs.join_stream_view)),
    ),
    path(
        "threads/<path:thread_id>/runs/<str:run_id>/cancel",
        methods(post=endpoint(runs.cancel_view)),
    ),
    path(
        "threads/<path:thread_id>/runs/<str:run_id>",
        methods(get=endpoint(runs.get_view), delete=endpoint(runs.delete_view)),
    ),
    path(
        "threads/<path:thread_id>/runs",
        methods(get=endpoint(runs.list_view), post=endpoint(runs.create_view)),
    ),
]
