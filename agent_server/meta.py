"""/langgraph/ok and /langgraph/info: what clients ask before anything else
(Agent Chat UI checks /info when it connects)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from django.http import HttpRequest, HttpResponse

from agent_server.auth import endpoint, respond


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@endpoint
def ok(request: HttpRequest) -> HttpResponse:
    return respond({"ok": True, "services": {}})


@endpoint
def info(request: HttpRequest) -> HttpResponse:
    # No crons here, and no LangSmith: clients that read the flags hide those.
    return respond(
        {
            "version": _version("hitl-review"),
            "langgraph_py_version": _version("langgraph"),
            "flags": {"assistants": True, "crons": False, "langsmith": False},
            "host": {"kind": "self-hosted", "project_id": None, "revision_id": None},
        }
    )
