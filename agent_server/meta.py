"""/langgraph/ok and /langgraph/info: what clients ask before anything else
(Agent Chat UI checks /info when it connects; Agent Inbox checks a new
inbox's URL with a plain GET /info). Answered without a key, as LangGraph's
own servers answer them: they say only that the server is there, and which
versions it runs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from django.http import HttpRequest, HttpResponse

from agent_server.auth import methods, respond


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _ok(request: HttpRequest) -> HttpResponse:
    return respond({"ok": True, "services": {}})


def _info(request: HttpRequest) -> HttpResponse:
    # No crons here, and no LangSmith: clients that read the flags hide those.
    return respond(
        {
            "version": _version("hitl-review"),
            "langgraph_py_version": _version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "host": {
                "kind": "self-hosted",
                "project_id": None,
                "revision_id": None,
                "tenant_id": None,
            },
        }
    )


ok = methods(get=_ok)
info = methods(get=_info)
