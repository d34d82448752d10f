"""LangGraph's Agent Server API, mounted at /langgraph/ by hitl_site/urls.py.

Paths carry no trailing slash, as langgraph-sdk sends them. Thread ids may
hold slashes (the SDK sends them as %2F), so a thread's own routes come
before the bare thread route that would take the rest as part of its id.
"""

from django.urls import include, path, re_path

from agent_server import assistants, meta, threads
from agent_server.auth import endpoint, error

# Its own namespace: the gate tests find every /langgraph/ route by it.
app_name = "langgraph"


@endpoint
def not_found(request, rest: str = ""):
    return error(404, "Not Found")


urlpatterns = [
    path("", include("agent_server.run_urls")),
    path("ok", meta.ok),
    path("info", meta.info),
    path("assistants", assistants.create),
    path("assistants/search", assistants.search),
    path("assistants/count", assistants.count),
    path("assistants/<str:assistant_id>/latest", assistants.set_latest),
    path("assistants/<str:assistant_id>/versions", assistants.versions),
    path("assistants/<str:assistant_id>/graph", assistants.graph),
    path("assistants/<str:assistant_id>/schemas", assistants.schemas),
    path("assistants/<str:assistant_id>/subgraphs", assistants.subgraphs),
    path("assistants/<str:assistant_id>/subgraphs/<path:namespace>", assistants.subgraphs),
    path("assistants/<str:assistant_id>", assistants.one),
    path("threads", threads.create),
    path("threads/search", threads.search),
    path("threads/count", threads.count),
    path("threads/prune", threads.prune),
    path("threads/<path:thread_id>/state/checkpoint", threads.get_state_at),
    path("threads/<path:thread_id>/state/<str:checkpoint_id>", threads.get_state),
    path("threads/<path:thread_id>/state", threads.state),
    path("threads/<path:thread_id>/history", threads.history),
    path("threads/<path:thread_id>/copy", threads.copy),
    path("threads/<path:thread_id>", threads.one),
    re_path(r"^(?P<rest>.*)$", not_found),
]
