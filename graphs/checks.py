"""System checks: `manage.py serve`, `runworker` and every other command that
runs Django's checks refuse to start on a graphs config that names no graph.

A graph that fails to import is not an error here: the home page reports it
and the other graphs keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error


def graphs_config(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Imported here: commands that never touch a graph need not load LangGraph.
    from graphs.registry import Registry

    # Read afresh: the registry the site then uses is cached per path.
    registry = Registry(Path(settings.HITL_GRAPHS_CONFIG))
    if not registry.config_error:
        return []
    return [
        Error(
            registry.config_error,
            hint=(
                "HITL_GRAPHS_CONFIG must name a langgraph.json in LangGraph CLI format: "
                '{"graphs": {"name": "./file.py:graph"}}'
            ),
            id="graphs.E001",
        )
    ]
